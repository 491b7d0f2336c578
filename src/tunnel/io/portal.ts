import {hostname} from 'node:os'
import {isIP, type Socket} from 'node:net'
import {checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket} from 'node:tls'
import {CloseStatus, CLOSE_STATUS_NAMES, encodeTunnel, TunnelType} from '../codec/tunnel.js'
import {readClearFrame} from './relay-frame.js'
import {EXPORTER_LABEL, HandshakeError, parseResponse, requestFrame, type RemoteForward, type TunnelGrant} from '../core/handshake.js'
import type {Logger} from '../../lib/log.js'
import type {DatagramEndpoint, OpenRequest, Session, StreamEndpoint} from '../core/mux.js'
import {TUNNEL_TRACE} from '../trace.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {dialTcp, hostPort} from '../../lib/io/connect.js'
import {CodecError, errorCode, fromSystemError, isRetryable, RefusedError, TlsError, TunkitError} from '../../lib/errors.js'
import {closeError, closeStatusCode, openFailReason} from '../errors.js'
import {Link} from './link.js'
import {hasDescriptor, nativeDataPathUnavailable, openNativeWire, type DataPath} from './native-path.js'
import {SocketEndpoint} from './stream-endpoint.js'
import {CIPHERSUITES, type TlsMaterial} from '../../lib/io/tls-config.js'
import type {PortalVpn} from '../../vpn/io/portal-vpn.js'
import {formatGateTarget, type GateTarget} from '../core/gate-group.js'

export interface Target {
  host: string
  port: number
}

export interface RemoteForwardSpec extends RemoteForward {
  to: Target
}

/** The portal's tunables (times in seconds); the portal command's flags show these. */
export const PORTAL_DEFAULTS = {
  /** 0 = no keepalive pings. */
  keepalive: 15,
  deadAfter: 45,
  connectTimeout: 10,
  backoffMin: 0.5,
  backoffMax: 30,
  /** Local UDP flows (-U, SOCKS5 UDP ASSOCIATE) end after this much silence. */
  udpIdle: 120,
}

/** What a Portal is built with: the tunables may be left to PORTAL_DEFAULTS. */
export type PortalConfig = Omit<PortalOptions, keyof typeof PORTAL_DEFAULTS> & Partial<typeof PORTAL_DEFAULTS>

export interface PortalOptions {
  /** One gate, or a group of gates the last relay picks from. */
  gate: GateTarget
  /** Relays to pass through, in order (seed 000: the RELAY frame's path before the gate). */
  via: Target[]
  upstreamSocks?: Target
  tls: TlsMaterial
  remoteForwards: RemoteForwardSpec[]
  keepalive: number
  deadAfter: number
  connectTimeout: number
  /** Reconnect backoff bounds in seconds. */
  backoffMin: number
  backoffMax: number
  udpIdle: number
  /** The name the gate certificate must carry, when it is not the --gate host (a group: any name). */
  gateName?: string
  /** Give up after this many failed attempts in a row (0 = retry for ever); fatal codes give up at once. */
  retries?: number
  log: Logger
  tracer?: Tracer
  /** VPN mode: the pseudo network adapter (seed 000). */
  vpn?: PortalVpn
  /** native: offer the native data path (io/native-path.ts); not in VPN mode. */
  dataPath?: DataPath
}

/**
 * A tunnel failed with a code that retrying cannot fix (wrong certificate, not authorised, a bad
 * path, not a gate), or --retries attempts failed in a row: `start()` rejects with this before
 * the first tunnel, `failed` resolves with it after; the code and the cause are kept.
 */
export class FatalTunnelError extends TunkitError {
  override name = 'FatalTunnelError'
}

type State = 'idle' | 'tcp-open' | 'send-relay' | 'connect' | 'response-wait' | 'authorized' | 'reconnect' | 'dead'

/**
 * The portal (seed 001) / tunnel initiator (seed 000, Fig. 11): keeps one tunnel to the gate up,
 * reconnecting with backoff, and opens sessions on it for the local listeners.
 */
export class Portal {
  state: State = 'idle'
  private link: Link | null = null
  private stopping = false
  /** Attempts failed since the last tunnel came up (--retries counts these). */
  private failures = 0
  private giveUp!: (e: FatalTunnelError) => void
  /** Resolves when the portal gives up (see FatalTunnelError); it then tries no more. */
  readonly failed = new Promise<FatalTunnelError>((r) => (this.giveUp = r))
  private retryTimer: NodeJS.Timeout | null = null
  /** The connection of a tunnel still being set up: stop() ends it rather than wait out a step. */
  private settingUp: Socket | null = null
  grant: TunnelGrant | null = null

  private readonly o: PortalOptions

  constructor(config: PortalConfig) {
    this.o = {...PORTAL_DEFAULTS, ...config}
    if (this.o.dataPath === 'native') {
      const why = this.o.vpn ? 'VPN mode runs on TLS only' : nativeDataPathUnavailable()
      if (why) {
        // VPN mode is a known limit, not a fault: said, not warned about.
        this.o.log.log(this.o.vpn ? 'info' : 'warn', `--data-path native: ${why}; using tls`)
        this.o.dataPath = 'tls'
      }
    }
  }

  /** Connects and resolves once the first tunnel is authorised; rejects on a fatal error. */
  start(): Promise<void> {
    return new Promise((res, rej) => this.attempt(0, res, rej))
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.settingUp?.destroy()
    this.link?.close(CloseStatus.NORMAL, 'portal shutting down')
    this.o.vpn?.close()
    this.state = 'dead'
  }

  get up(): boolean {
    return this.state === 'authorized' && this.link !== null && !this.link.isClosed
  }

  openStream(req: Target, ep: StreamEndpoint): Session | null {
    return this.openOn({protocol: 'tcp', ...req}, ep)
  }

  openDatagram(req: Target, ep: DatagramEndpoint): Session | null {
    return this.openOn({protocol: 'udp', ...req}, ep)
  }

  private openOn(req: OpenRequest, ep: StreamEndpoint | DatagramEndpoint): Session | null {
    if (!this.up || !this.link?.mux) {
      ep.opened(false, openFailReason(new TunkitError('TK_UNAVAILABLE', 'the tunnel to the gate is down (reconnecting)')))
      return null
    }
    return this.link.mux.open(req, ep)
  }

  private attempt(n: number, res: () => void, rej: (e: Error) => void): void {
    if (this.stopping) return
    this.connectOnce().then(
      () => {
        this.failures = 0
        res()
      },
      (e: Error) => {
        if (this.stopping) return
        this.failures++
        // Retry or give up by code (lib/errors.ts ERROR_CODES), before and after a tunnel was up.
        const retries = this.o.retries ?? 0
        if (!isRetryable(e) || (retries > 0 && this.failures >= retries)) {
          const why = isRetryable(e) ? `${e.message} (${this.failures} attempts failed in a row, --retries ${retries})` : e.message
          const fatal = new FatalTunnelError(errorCode(e), why, {cause: e})
          this.state = 'dead'
          this.giveUp(fatal)
          return rej(fatal)
        }
        const delay = Math.min(this.o.backoffMax, this.o.backoffMin * 2 ** n) * (0.75 + Math.random() * 0.5)
        this.state = 'reconnect'
        const gate = formatGateTarget(this.o.gate)
        this.o.log.log('warn', `tunnel to ${gate} failed: ${e.message}; retrying in ${delay.toFixed(1)} s`)
        this.o.log.event('retry', {gate, attempt: n + 1, delay: Math.round(delay * 1000) / 1000, code: errorCode(e), reason: e.message})
        this.retryTimer = setTimeout(() => {
          this.o.log.log('debug', `tunnel to ${gate}: attempt ${n + 2} after waiting ${delay.toFixed(1)} s`)
          this.attempt(n + 1, res, rej)
        }, delay * 1000)
      },
    )
  }

  /** TCP Open → Send Relay → Connect → Response Wait → Authorized (Fig. 11). */
  private async connectOnce(): Promise<void> {
    const {gate, log} = this.o
    // What the tunnel is to (a gate, or a group a relay picks from), and the address we dial.
    const target = formatGateTarget(gate)
    this.state = 'tcp-open'
    const first = this.o.via[0] ?? (gate.kind === 'host' ? gate : null)
    if (!first) throw new FatalTunnelError('TK_USAGE', `${target}: a gate group needs a relay (--via)`)
    const peer = hostPort(first.host, first.port)
    const limit = this.o.connectTimeout
    // Each step of the set-up is bounded by --connect-timeout and logged: a peer that accepts the
    // connection and then says nothing must not hold the portal forever, silently.
    log.log('debug', `tunnel: connecting to ${peer}${this.o.upstreamSocks ? ' via SOCKS5' : ''}`)
    const raw = this.o.upstreamSocks ? await this.viaSocks(first) : await dialTcp(first.host, first.port, limit * 1000)
    // A reset (a gate that exits, say) is also emitted on this socket under the TLS one; the
    // tunnel learns of it from 'close', and it must never be an unhandled error.
    raw.on('error', () => {})
    if (this.stopping) return void raw.destroy()
    this.settingUp = raw
    raw.once('close', () => {
      if (this.settingUp === raw) this.settingUp = null
    })
    this.state = 'send-relay'
    // HOPS = 0: each relay counts itself in, so a path that loops dies at the hop limit.
    const relay = {kind: 'relay' as const, origin: hostname(), path: [...this.o.via.map((t) => hostPort(t.host, t.port)), target], hops: 0}
    const relayWire = encodeTunnel(relay)
    this.o.tracer?.trace('out', peer, TUNNEL_TRACE, relay, relayWire.length)
    log.log('debug', `tunnel: connected to ${peer}; sent RELAY (path ${relay.path.join(' -> ')}), waiting for its answer`)
    raw.write(relayWire)
    // The first bytes back, to name what answered when it is not tunkit (an SSH or HTTP banner).
    let head = Buffer.alloc(0)
    const peek = (d: Buffer): void => void (head = Buffer.concat([head, d]).subarray(0, 64))
    raw.on('data', peek)
    // The gate echoes the RELAY frame once the whole path is up; a relay that cannot forward
    // answers CLOSE instead (docs/protocol.md). Either arrives before TLS starts.
    let answer
    try {
      answer = await deadline(readClearFrame(raw, [TunnelType.RELAY, TunnelType.CLOSE], 'answer to the RELAY frame'), limit, () => {
        raw.destroy()
        return new TunkitError('TK_TIMEOUT', `no answer to the RELAY frame from ${peer} within ${limit} s (path ${relay.path.join(' -> ')})`)
      })
    } catch (e) {
      raw.destroy()
      if (e instanceof TunkitError) throw e
      // Bytes that are no tunnel frame at all (an SSH banner reads as a 1.4 GB frame): whatever
      // answered is not a tunkit gate or relay, and asking again will not change that.
      if (e instanceof CodecError && e.code !== 'VERSION' && e.code !== 'CLOSED') {
        throw new TunkitError('TK_NOT_A_GATE', `not a tunkit gate at ${peer}${describeBytes(head)}`, {cause: e})
      }
      throw new TunkitError(errorCode(e, 'TK_PROTOCOL_ERROR'), `${(e as Error).message} (path ${relay.path.join(' -> ')})`, {cause: e})
    } finally {
      raw.removeListener('data', peek)
    }
    this.o.tracer?.trace('in', peer, TUNNEL_TRACE, answer.frame, answer.wire.length)
    if (answer.frame.kind === 'close') {
      raw.destroy()
      throw closeError(answer.frame.status, answer.frame.reason, `path ${relay.path.join(' -> ')} refused`)
    }
    this.state = 'connect'
    log.log('debug', `tunnel: ${peer} answered RELAY; TLS handshake`)
    const tls = await this.tlsHandshake(raw)
    log.log('debug', `tunnel: TLS up with ${peer}; sent REQUEST, waiting for RESPONSE`)
    this.state = 'response-wait'
    const offerNative = this.o.dataPath === 'native' && hasDescriptor(tls, raw)
    await new Promise<void>((resolve, reject) => {
      let authorized = false
      let since = 0
      let keyTimer: NodeJS.Timeout | undefined
      const timer = setTimeout(() => {
        link.close(CloseStatus.TIMEOUT, `no RESPONSE from the gate within ${limit} s`)
      }, limit * 1000)
      const link: Link = new Link({
        socket: tls,
        peer,
        log,
        tracer: this.o.tracer,
        keepalive: this.o.keepalive,
        deadAfter: this.o.deadAfter,
        onFrame: (f) => {
          if (f.kind !== 'response' || authorized) return link.close(CloseStatus.PROTOCOL_ERROR, `unexpected ${f.kind.toUpperCase()} frame`)
          clearTimeout(timer)
          authorized = true
          if (f.keyLifetime > 0) {
            // Fig. 11, Reconnect: at key expiry send CLOSE, drop the connection and open a new one
            // at once; the VPN device and its address stay, so traffic pauses only briefly.
            keyTimer = setTimeout(() => {
              log.log('info', `key lifetime of ${f.keyLifetime} s reached: reconnecting`)
              link.close(CloseStatus.KEY_EXPIRED, 'key lifetime reached')
            }, f.keyLifetime * 1000)
            keyTimer.unref()
          }
          try {
            this.grant = parseResponse(f)
          } catch (e) {
            if (!(e instanceof HandshakeError)) throw e
            return link.close(CloseStatus.PROTOCOL_ERROR, e.message)
          }
          if (this.grant.earlyData) link.mux!.early = {half: 'low'}
          if (this.grant.nativeDataPath) {
            if (!offerNative) return link.close(CloseStatus.PROTOCOL_ERROR, 'the gate chose the native data path, which this portal did not offer')
            link.beginSwitch((hold) => {
              const w = openNativeWire(tls, raw, 'portal', hold)
              w.ack()
              return w
            })
          }
          if (this.o.vpn) {
            if (!this.grant.vpn) return link.close(CloseStatus.NOT_AUTHORIZED, 'the gate did not grant VPN mode')
            try {
              this.o.vpn.attach(this.grant.vpn, link, tls, raw.remoteAddress ? [raw.remoteAddress] : [])
            } catch (e) {
              // A configuration the portal refuses is the gate's fault, not a local shortage.
              const status = e instanceof TunkitError && e.code === 'TK_PROTOCOL_ERROR' ? CloseStatus.PROTOCOL_ERROR : CloseStatus.RESOURCE_LIMIT
              return link.close(status, `cannot set up the VPN device: ${(e as Error).message}`)
            }
          }
          this.link = link
          this.settingUp = null
          this.state = 'authorized'
          for (const r of this.grant.remoteForwards) {
            if (r.error) log.log('warn', `gate refused remote forward ${hostPort(r.bind, r.port)}: ${r.error}`)
            else log.log('info', `remote forward: gate listens on ${hostPort(r.bind, r.port)}${r.asked ? ` (asked for ${r.asked}; the gate binds loopback unless its policy allows more)` : ''}`)
          }
          const suite = `${tls.getProtocol()} ${tls.getCipher().standardName}`
          since = Date.now()
          const dataPath = this.grant.nativeDataPath ? 'native' : 'tls'
          log.log('info', `tunnel up to ${target} as ${this.grant.identity} (${suite}${dataPath === 'native' ? ', native data path' : ''})`)
          log.event('tunnel-up', {peer, gate: target, identity: this.grant.identity, tls: suite, dataPath, remoteForwards: this.grant.remoteForwards})
          resolve()
        },
        onClosed: (reason, status, cause) => {
          clearTimeout(timer)
          clearTimeout(keyTimer)
          if (!authorized) {
            // A CLOSE status, or the socket error's code (a TLS alert such as unknown-ca), decides.
            const code = status !== undefined ? closeStatusCode(status) : errorCode(cause, 'TK_CONNECTION_CLOSED')
            return reject(new TunkitError(code, reason, {cause}))
          }
          this.link = null
          log.log(this.stopping || status === CloseStatus.KEY_EXPIRED ? 'info' : 'warn', `tunnel to ${target} down: ${reason}`)
          log.event('tunnel-down', {
            peer, gate: target, identity: this.grant?.identity ?? null, reason,
            code: status !== undefined ? closeStatusCode(status) : errorCode(cause, 'TK_CONNECTION_CLOSED'),
            status: status === undefined ? null : CLOSE_STATUS_NAMES[status] ?? null,
            seconds: (Date.now() - since) / 1000, bytesOut: raw.bytesWritten, bytesBack: raw.bytesRead,
          })
          if (!this.stopping) this.attempt(0, () => {}, () => {}) // a give-up resolves `failed`
        },
      })
      link.startMux({onOpen: (req, s) => this.incoming(req, s)})
      link.send(requestFrame({
        user: this.o.tls.name,
        destination: gate.kind === 'host' ? gate.host : peer,
        binding: tls.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)).toString('hex'),
        remoteForwards: this.o.remoteForwards.map(({bind, port}) => ({bind, port})),
        earlyData: true,
        vpn: !!this.o.vpn,
        vpnOffload: this.o.vpn?.offers,
        dataMacs: ['aes256-gmac'],
        nativeDataPath: offerNative,
      }))
    })
  }

  private tlsHandshake(raw: Socket): Promise<TLSSocket> {
    const {gate, tls: m} = this.o
    return new Promise((resolve, reject) => {
      const tls = tlsConnect({
        socket: raw,
        cert: m.cert,
        key: m.key,
        ca: m.ca,
        minVersion: 'TLSv1.3',
        ciphers: CIPHERSUITES,
        // --gate-name: the certificate is checked against that name (and sent as SNI), not the
        // address dialled. Which gate of a group answers is the relay's choice: any gate our CA
        // signed will do, unless --gate-name says which name they carry.
        ...identity(this.o.gateName ?? (gate.kind === 'host' ? gate.host : undefined)),
      })
      const timer = setTimeout(() => {
        tls.destroy()
        reject(new TlsError('TK_TIMEOUT', `TLS handshake timed out after ${this.o.connectTimeout} s`))
      }, this.o.connectTimeout * 1000)
      tls.once('secureConnect', () => {
        clearTimeout(timer)
        // Until the Link takes the socket over (after an await), an error must not go unhandled.
        tls.removeAllListeners('error')
        tls.on('error', () => {})
        resolve(tls)
      })
      tls.once('error', (err: Error & {code?: string}) => {
        clearTimeout(timer)
        const code = errorCode(err, 'TK_TLS_HANDSHAKE_FAILED')
        const what = code.startsWith('TK_TLS_') && code !== 'TK_TLS_HANDSHAKE_FAILED' ? 'gate certificate rejected' : 'TLS handshake failed'
        reject(new TlsError(code, `${what}: ${err.message}${err.code ? ` (${err.code})` : ''}`, {cause: err}))
      })
      raw.once('close', () => reject(new TunkitError('TK_CONNECTION_CLOSED', 'gate closed the connection during the handshake')))
    })
  }

  private async viaSocks(first: Target): Promise<Socket> {
    const {upstreamSocks: p} = this.o
    const gate = first
    try {
      // Loaded only when used: every module kept in the heap is marked again by each major GC.
      const {SocksClient} = await import('socks')
      const {socket} = await SocksClient.createConnection({
        proxy: {host: p!.host, port: p!.port, type: 5},
        command: 'connect',
        destination: {host: gate.host, port: gate.port},
        timeout: this.o.connectTimeout * 1000,
      })
      socket.setNoDelay(true)
      return socket
    } catch (e) {
      throw fromSystemError(e, `via SOCKS5 proxy ${hostPort(p!.host, p!.port)}`, 'TK_HOST_UNREACHABLE')
    }
  }

  /** The gate opens a session for one of our remote forwards. */
  private incoming(req: OpenRequest, session: Session): void {
    // The gate names the forward by the bind address and port we asked for.
    const fwd = this.o.remoteForwards.find((f) => f.port === req.port && f.bind === req.host)
    if (req.protocol !== 'tcp' || !fwd) return session.reject(openFailReason(new RefusedError('TK_DENIED', `no remote forward for ${hostPort(req.host, req.port)}`)))
    dialTcp(fwd.to.host, fwd.to.port, this.o.connectTimeout * 1000).then(
      (sock) => {
        if (session.state !== 'pending') return void sock.destroy()
        const ep = new SocketEndpoint(sock)
        session.acceptStream(ep)
        ep.bind(session)
        ep.opened(true)
      },
      (e: Error) => session.reject(openFailReason(e)),
    )
  }
}

/** TLS options that make the gate certificate name `name` (any name when undefined). */
function identity(name: string | undefined): {servername?: string; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined} {
  if (name === undefined) return {checkServerIdentity: () => undefined}
  return {servername: isIP(name) ? undefined : name, checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert)}
}

/** `p`, or the error `onTimeout` makes once `seconds` have passed first. */
function deadline<T>(p: Promise<T>, seconds: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), seconds * 1000)
    p.then((v) => {
      clearTimeout(t)
      resolve(v)
    }, (e: unknown) => {
      clearTimeout(t)
      reject(e)
    })
  })
}

/** What a peer that is not tunkit sent, as printable text for the error line (its first line). */
function describeBytes(b: Buffer): string {
  const text = b.toString('latin1').split(/\r?\n/)[0].replace(/[^\x20-\x7e]/g, '.').slice(0, 40)
  return text && /[A-Za-z]{3}/.test(text) ? ` (it answered "${text}")` : ''
}
