import {createSocket, type Socket as UdpSocket} from 'node:dgram'
import {createServer, type Server, type Socket} from 'node:net'
import {TLSSocket, createSecureContext, type PeerCertificate} from 'node:tls'
import {CodecError, errorCode, fromSystemError, RefusedError, TlsError, TunkitError, type ErrorCode} from '../../lib/errors.js'
import {closeStatusCode, openFailReason} from '../errors.js'
import {nodeMatches, readClearFrame} from './relay-frame.js'
import {CloseStatus, CLOSE_STATUS_NAMES, encodeTunnel, TunnelType, type TunnelFrame} from '../codec/tunnel.js'
import {EXPORTER_LABEL, HandshakeError, parseTunnelRequest, responseFrame, type TunnelGrant, type VpnConfig} from '../core/handshake.js'
import type {GateVpn} from '../../vpn/io/gate-vpn.js'
import type {Logger} from '../../lib/log.js'
import type {DatagramEndpoint, OpenRequest, Session} from '../core/mux.js'
import {Policy} from '../core/policy.js'
import {parseStartups, sourceKey, Startups} from '../core/startups.js'
import {Limiter} from '../../lib/limit.js'
import {parseGateTarget} from '../core/gate-group.js'
import {TUNNEL_TRACE} from '../trace.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {dialTcp, hostPort, resolve} from '../../lib/io/connect.js'
import {hasDescriptor, nativeDataPathUnavailable, openNativeWire, type DataPath} from './native-path.js'
import {Link} from './link.js'
import {SocketEndpoint} from './stream-endpoint.js'
import {descriptors, tuneServerProcess} from '../../lib/io/native.js'
import {GateLimits, TokenBucket, type TunnelUse} from '../core/limits.js'
import {ListenError, listenScreened, startListener, type ScreenedListener} from '../../lib/io/listen.js'
import {CIPHERSUITES, type TlsMaterial} from '../../lib/io/tls-config.js'
import {Tally, type Counted, type EngineCounts} from '../../lib/metrics.js'
import {normalSerial, revokedSerials} from '../../pki/crl.js'

/** The gate's tunables (times in seconds); the gate command's flags show these. */
export const GATE_DEFAULTS = {
  host: '127.0.0.1',
  port: 4433,
  maxSessions: 4096,
  /** Authenticated tunnels only: connections still in their handshake have maxStartups. */
  maxTunnels: 1024,
  /** sshd's MaxStartups default: a handshake takes a few round trips, so 100 at once is plenty. */
  maxStartups: '10:30:100',
  maxStartupsPerSource: 10,
  /** RELAY, TLS and REQUEST are three round trips: 5 s is generous even through relays. */
  handshakeTimeout: 5,
  /** A name that does not resolve within this is answered as not found. */
  resolveTimeout: 5,
  /** Name lookups one identity may have running at once (more wait, up to 64). */
  maxLookups: 4,
  /** 0 = never close an idle tunnel. */
  idleTimeout: 0,
  connectTimeout: 10,
  /** 0 = no keepalive pings. */
  keepalive: 15,
  deadAfter: 45,
  udpIdle: 120,
  /** 0 = keys live as long as the tunnel. */
  keyLifetime: 0,
  // Resource limits (docs/security.md, "Gate: resource limits"): one client may not take the gate.
  maxTunnelsPerIdentity: 16,
  maxSessionsPerIdentity: 8192,
  maxPendingPerTunnel: 256,
  maxPendingPerIdentity: 1024,
  earlyDataPerTunnel: 8 * 1024 * 1024,
  earlyDataPerIdentity: 32 * 1024 * 1024,
  fdReserve: 256,
  /** Percent of the descriptors the others leave that one identity may hold. */
  fdShare: 50,
  /** UsherOpen per second and tunnel (0 = no limit), and how many may come at once. */
  openRate: 200,
  openBurst: 400,
}

/** What a Gate is built with: the tunables may be left to GATE_DEFAULTS. */
export type GateConfig = Omit<GateOptions, keyof typeof GATE_DEFAULTS> & Partial<typeof GATE_DEFAULTS>

export interface GateOptions {
  host: string
  port: number
  tls: TlsMaterial
  /** Our node name in RELAY paths; when set, a RELAY frame must end with it. */
  name?: string
  policy: Policy
  maxSessions: number
  maxTunnels: number
  /** START:RATE:FULL for connections not yet authenticated (core/startups.ts). */
  maxStartups: string
  maxStartupsPerSource: number
  handshakeTimeout: number
  resolveTimeout: number
  maxLookups: number
  idleTimeout: number
  connectTimeout: number
  keepalive: number
  deadAfter: number
  udpIdle: number
  log: Logger
  tracer?: Tracer
  /** VPN mode (seed 000): the pseudo network adapter on the gate's side. */
  vpn?: GateVpn
  /** native: agree to the native data path when a portal offers it (io/native-path.ts). */
  dataPath?: DataPath
  /** Seconds a tunnel's keys live; the portal must reconnect before then (0 = forever). */
  keyLifetime: number
  maxTunnelsPerIdentity: number
  maxSessionsPerIdentity: number
  maxPendingPerTunnel: number
  maxPendingPerIdentity: number
  earlyDataPerTunnel: number
  earlyDataPerIdentity: number
  fdReserve: number
  fdShare: number
  openRate: number
  openBurst: number
  /**
   * Quota shared with the other workers of a `gate --workers N` (io/gate-workers.ts): tunnels per
   * identity, sessions per identity and the gate's tunnels are leased from the primary before use.
   */
  quota?: SharedQuota
}

/** What a worker's gate leases from the primary (core/shares.ts), by pool: see GateOptions.quota. */
export type SharePool = 'tunnels' | 'sessions' | 'gate'

export interface SharedQuota {
  /** One unit of pool for key (an identity; '' for the gate-wide pool), or false: the cap is reached. */
  take(pool: SharePool, key: string): boolean | Promise<boolean>
  give(pool: SharePool, key: string): void
}


/** A connection before authentication: its source, and its socket once one exists. */
interface Pending {
  source: string
  socket?: Socket
  /** A worker's connection: tells the primary, which holds its --max-startups slot. */
  settled?: (authenticated: boolean) => void
}

/** How long a tunnel over its open rate goes unread (a quarter second: a few refusals, not 300 000 a second). */
const OPEN_FLOOD_HOLD_MS = 250

/** What the gate keeps of an authenticated tunnel beyond its Link. */
interface TunnelInfo {
  identity: string
  peer: string
  /** The client certificate's serial: a reload closes the tunnel once it is revoked. */
  serial: string
  /** The TCP socket under TLS: its byte counts are the tunnel's (docs/events.md). */
  raw: Socket
}

/**
 * A connection's --max-startups decision by its source, logged and counted alike in a gate and in
 * a workers' primary: undefined refuses it; `evicted` is an older connection to close for it.
 */
export function admitStartup<T extends {source: string}>(startups: Startups<T>, h: T, from: string, log: Logger, hits: Tally): {evicted?: T} | undefined {
  const admitted = startups.admit(h.source, h)
  if (!admitted.ok) {
    hits.add('max-startups')
    log.log('warn', `refused ${from}: ${admitted.why} (--max-startups)`, {key: 'startups refused'})
    return undefined
  }
  if (admitted.evict) log.log('warn', `dropped an unauthenticated connection from ${admitted.evict.source} to make room for ${from} (--max-startups)`, {key: 'startups evicted'})
  return {evicted: admitted.evict}
}

/** The gate (seed 001) / tunnel server (seed 000, Fig. 12). */
export class Gate implements Counted {
  private server: Server
  private links = new Map<Link, TunnelInfo>()
  /** Connections in their handshake (core/startups.ts). */
  private pending = new Map<Socket, Pending>()
  private startups: Startups<Pending>
  /** The addon's listener (screens sources before a socket exists), or null: `server` listens. */
  private screened: ScreenedListener | null = null
  private lookups = new Map<string, Limiter>()
  private ctx: ReturnType<typeof createSecureContext>
  private limits!: GateLimits
  /** Forwarded connections still open, for the audit line when each closes. */
  private conns = new Map<Session, Conn>()
  private readonly stats = {opensRefused: new Tally(), handshakeFailures: new Tally(), limitHits: new Tally()}
  /** Bytes of tunnels already closed (bytesOut, bytesBack). */
  private bytesClosed = {out: 0, back: 0}

  private readonly o: GateOptions

  constructor(config: GateConfig) {
    const o = (this.o = {...GATE_DEFAULTS, ...config})
    const noNative = o.dataPath === 'native' ? nativeDataPathUnavailable() : null
    if (noNative) {
      o.log.log('warn', `--data-path native: ${noNative}; using tls`)
      o.dataPath = 'tls'
    }
    this.ctx = secureContext(o.tls)
    this.startups = new Startups({...parseStartups(o.maxStartups), perSource: o.maxStartupsPerSource})
    this.server = createServer({noDelay: true}, (s) => {
      const p = this.admit(s.remoteAddress ?? '?', s.remotePort ?? 0)
      if (p) this.accept(s, p)
      else s.on('error', () => {}).resetAndDestroy()
    })
  }

  async listen(): Promise<{address: string; port: number}> {
    this.prepare()
    const o = this.o
    this.screened = await listenScreened(o.host, o.port, (address, port) => {
      const p = this.admit(address, port)
      return p && ((s) => this.accept(s, p))
    })
    return this.screened ?? startListener(this.server, o.host, o.port, o.log)
  }

  /**
   * A gate worker's start: no listener of its own, connections come from the primary (adopt).
   * The limits count this process's descriptors, as each worker has its own.
   */
  serve(): void {
    this.prepare()
  }

  /**
   * A connection accepted by the primary and handed over: the same path as one accepted here, but
   * the primary admitted it (its --max-startups budget spans the workers) and hears `settled` once
   * the connection authenticates or closes.
   */
  adopt(s: Socket, settled: (authenticated: boolean) => void): void {
    this.accept(s, {source: sourceKey(s.remoteAddress ?? '?'), settled})
  }

  private prepare(): void {
    tuneServerProcess()
    const o = this.o
    const fd = descriptors()
    this.limits = new GateLimits({
      maxTunnelsPerIdentity: o.maxTunnelsPerIdentity, maxSessionsPerIdentity: o.maxSessionsPerIdentity,
      maxPendingPerTunnel: o.maxPendingPerTunnel, maxPendingPerIdentity: o.maxPendingPerIdentity,
      maxEarlyPerTunnel: o.earlyDataPerTunnel, maxEarlyPerIdentity: o.earlyDataPerIdentity,
      // The listener, stdio, the event loop's own and the VPN device are in `open` already.
      fdLimit: fd.limit, fdBase: fd.open + 1, fdReserve: o.fdReserve, fdShare: o.fdShare / 100,
    }, this.stats.limitHits)
  }

  get tunnels(): number {
    return this.links.size
  }

  counts(): EngineCounts {
    const bytes = {...this.bytesClosed}
    let sessions = 0
    for (const [link, t] of this.links) {
      sessions += link.mux?.size ?? 0
      bytes.out += t.raw.bytesRead
      bytes.back += t.raw.bytesWritten
    }
    return {tunnels: this.links.size, preauth: this.pending.size, sessions, bytes, ...this.stats}
  }

  /**
   * SIGHUP: a new policy, certificate, key, CA and revocation list for what comes next. The TLS
   * context is built first, so a bad key or certificate throws and nothing changes. Established
   * tunnels stay up under the new policy (it decides their next opens; remote forwards already
   * listening stay), except those whose client certificate the new list revokes: they are closed.
   * Returns what changed, for the one log line.
   */
  reload(next: {policy: Policy; tls: TlsMaterial}): string[] {
    const ctx = secureContext(next.tls)
    const revoked = next.tls.crl ? revokedSerials(next.tls.crl) : new Set<string>()
    const was = {policy: this.o.policy, tls: this.o.tls}
    this.ctx = ctx
    this.o.policy = next.policy
    this.o.tls = next.tls
    const changed: string[] = []
    const rules = (p: Policy): string => `${p.rules.length} access and ${p.listenRules.length} listen rule(s)`
    const texts = (p: Policy): string => [...p.rules, ...p.listenRules.map((r) => ({text: `listen ${r.text}`}))].map((r) => r.text).join('\n')
    if (texts(was.policy) !== texts(next.policy)) changed.push(`policy: ${rules(next.policy)} (was ${rules(was.policy)})`)
    if (was.tls.cert !== next.tls.cert || was.tls.key !== next.tls.key) changed.push('certificate and key')
    if (was.tls.ca !== next.tls.ca) changed.push('CA')
    if (was.tls.crl !== next.tls.crl) changed.push(`revocation list: ${revoked.size} revoked`)
    let closed = 0
    for (const [link, t] of this.links) {
      if (!revoked.has(t.serial)) continue
      this.o.log.log('warn', `closing the tunnel of ${t.identity} from ${t.peer}: its certificate (serial ${t.serial}) is revoked`)
      link.close(CloseStatus.NOT_AUTHORIZED, 'client certificate revoked')
      closed++
    }
    if (closed) changed.push(`closed ${closed} tunnel(s) of revoked certificates`)
    return changed
  }

  async close(): Promise<void> {
    for (const s of this.pending.keys()) s.destroy()
    for (const l of this.links.keys()) l.close(CloseStatus.SHUTDOWN, 'gate shutting down')
    if (this.screened) this.screened.close()
    else await new Promise<void>((r) => this.server.close(() => r()))
  }

  /**
   * Before authentication the source address is all a gate knows of a client: its share of the
   * handshake slots (--max-startups) is decided first, before any socket exists on the addon's
   * listener. Only a source at or above its share is refused (core/startups.ts), so a refusal is
   * a flood: the listener resets it, which costs less than a CLOSE frame and a FIN exchange.
   */
  private admit(address: string, port: number): Pending | undefined {
    const p: Pending = {source: sourceKey(address)}
    const admitted = admitStartup(this.startups, p, hostPort(address, port), this.o.log, this.stats.limitHits)
    if (!admitted) return undefined
    admitted.evicted?.socket?.destroy()
    return p
  }

  /** Accept Wait → Receive Relay (Fig. 12). */
  private accept(raw: Socket, p: Pending): void {
    const peer = hostPort(raw.remoteAddress ?? '?', raw.remotePort ?? 0)
    const log = this.o.log
    raw.on('error', () => {})
    p.socket = raw
    this.pending.set(raw, p)
    raw.once('close', () => this.leavePending(raw))
    if (this.links.size >= this.o.maxTunnels) {
      this.stats.limitHits.add('max-tunnels')
      log.log('warn', `refused ${peer}: tunnel limit of ${this.o.maxTunnels} reached`)
      return refuse(raw, 'gate is at its tunnel limit')
    }
    const full = this.limits.admitConnection()
    if (full) {
      this.limitWarn('connections', `refused ${peer}: ${full}`)
      return void raw.destroy()
    }
    raw.once('close', () => this.limits.connectionClosed())
    const timer = setTimeout(() => {
      this.stats.handshakeFailures.add('TK_TIMEOUT')
      log.log('warn', `dropped ${peer}: handshake not finished within ${this.o.handshakeTimeout} s`)
      raw.destroy()
    }, this.o.handshakeTimeout * 1000)
    raw.once('close', () => clearTimeout(timer))
    readClearFrame(raw, [TunnelType.RELAY], 'RELAY frame').then(({frame, wire, rest}) => {
      this.o.tracer?.trace('in', peer, TUNNEL_TRACE, frame, wire.length)
      const relay = frame as Extract<TunnelFrame, {kind: 'relay'}>
      const last = relay.path[relay.path.length - 1]
      log.log('debug', `${peer}: RELAY from ${relay.origin}, path ${relay.path.join(' -> ')}; TLS handshake`)
      // A group name was resolved by the last relay, which picked us.
      if (this.o.name && parseGateTarget(last)?.kind !== 'group' && !nodeMatches(last, this.o.name)) {
        this.stats.handshakeFailures.add('TK_BAD_RELAY_FRAME')
        log.log('warn', `refused ${peer}: RELAY path ends at "${last}", not at this gate ("${this.o.name}")`)
        raw.end(encodeTunnel({kind: 'close', status: CloseStatus.BAD_RELAY_FRAME, reason: `this is ${this.o.name}, not ${last}`}))
        return
      }
      // The echo tells the portal that the whole path is up (docs/protocol.md); TLS follows.
      raw.write(wire)
      this.o.tracer?.trace('out', peer, TUNNEL_TRACE, frame, wire.length)
      // Bytes after the RELAY frame are the start of the TLS handshake; TLSSocket reads them back.
      if (rest.length) raw.unshift(rest)
      this.startTls(raw, peer, relay.origin, timer)
    }, (e: Error) => {
      if (!(e instanceof CodecError)) {
        log.log('error', `reading the RELAY frame from ${peer}: ${e.message}`)
        return void raw.destroy()
      }
      if (e.code === 'CLOSED') return
      this.stats.handshakeFailures.add('TK_BAD_RELAY_FRAME')
      log.log('warn', `refused ${peer}: ${e.message}`)
      raw.end(encodeTunnel({kind: 'close', status: CloseStatus.BAD_RELAY_FRAME, reason: e.message}))
    })
  }

  private leavePending(raw: Socket, authenticated = false): void {
    const p = this.pending.get(raw)
    if (p === undefined) return
    this.pending.delete(raw)
    this.startups.remove(p.source, p)
    p.settled?.(authenticated)
  }

  private startTls(raw: Socket, peer: string, origin: string, timer: NodeJS.Timeout): void {
    const log = this.o.log
    const tls = new TLSSocket(raw, {isServer: true, secureContext: this.ctx, requestCert: true, rejectUnauthorized: true})
    tls.on('error', (err) => {
      const e = clientTlsError(err)
      this.stats.handshakeFailures.add(e.code)
      log.log('warn', `TLS handshake with ${peer} (${origin}) failed: ${e.message}`)
      tls.destroy()
    })
    tls.once('secure', () => {
      // A server TLSSocket built by hand does not enforce rejectUnauthorized: check here.
      const cert = tls.getPeerCertificate() as PeerCertificate
      const verifyError = (tls as unknown as {ssl?: {verifyError(): (Error & {code?: string}) | null}}).ssl?.verifyError()
      let why: string | undefined
      let code: ErrorCode = 'TK_TLS_CERT_REQUIRED'
      if (!cert || Object.keys(cert).length === 0) why = 'client sent no certificate'
      else if (verifyError) ({message: why, code} = clientTlsError(verifyError))
      const cn = cert?.subject?.CN
      const identity = Array.isArray(cn) ? cn[0] : cn
      if (!why && !identity) [why, code] = ['client certificate has no subject CN', 'TK_NOT_AUTHORIZED']
      if (why) {
        this.stats.handshakeFailures.add(code)
        log.log('warn', `refused ${peer} (${origin}): ${why}`)
        tls.end(encodeTunnel({kind: 'close', status: CloseStatus.NOT_AUTHORIZED, reason: why}))
        setTimeout(() => tls.destroy(), 1000).unref()
        return
      }
      tls.removeAllListeners('error')
      log.log('debug', `${peer} (${origin}): TLS up (${tls.getProtocol()} ${tls.getCipher().standardName}), client certificate "${identity}"; waiting for REQUEST`)
      this.authorize(tls, raw, peer, identity!, timer)
    })
  }

  /** Connect Wait → Authorized or Close (Fig. 12). */
  private authorize(tls: TLSSocket, raw: Socket, peer: string, identity: string, timer: NodeJS.Timeout): void {
    const log = this.o.log
    const forwards: Server[] = []
    let authorized = false
    let requested = false
    let since = 0
    let vpn: VpnConfig | null = null
    let use: TunnelUse | null = null
    let request: ReturnType<typeof parseTunnelRequest> | null = null
    /** Shared quota this tunnel holds (workers only): given back when it closes. */
    let leased = false
    const link: Link = new Link({
      socket: tls,
      peer,
      identity,
      log,
      tracer: this.o.tracer,
      keepalive: this.o.keepalive,
      deadAfter: this.o.deadAfter,
      onFrame: (f) => {
        // One REQUEST: with workers the tunnel's lease is asked for before it is authorized.
        if (f.kind !== 'request' || requested) {
          link.close(CloseStatus.PROTOCOL_ERROR, `unexpected ${f.kind.toUpperCase()} frame`)
          return
        }
        requested = true
        try {
          const req = (request = parseTunnelRequest(f))
          log.log('debug', `${peer}: REQUEST from ${identity}: ${req.remoteForwards.length} remote forward(s)${req.vpn ? ', VPN mode' : ''}${req.earlyData ? ', early data' : ''}`)
          if (req.user !== identity) throw new HandshakeError(`REQUEST names user "${req.user}" but the certificate is "${identity}"`)
          const expected = tls.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)).toString('hex')
          if (req.binding !== expected) throw new HandshakeError('REQUEST is not bound to this TLS session')
          const admitted = this.limits.tunnel(identity)
          if (typeof admitted === 'string') {
            this.limitWarn(`tunnels ${identity}`, `refused a tunnel for ${identity} from ${peer}: ${admitted}`)
            return link.close(CloseStatus.RESOURCE_LIMIT, admitted)
          }
          use = admitted
          if (this.o.quota) {
            // The other workers' tunnels count too: the lease decides, after this worker's own limits.
            return void this.leaseTunnel(identity).then((refused) => {
              // Closed while the lease was asked for: onClosed has run, so the lease goes back here.
              if (link.isClosed) return void (refused || this.giveTunnel(identity))
              if (refused) {
                this.limitWarn(`tunnels ${identity}`, `refused a tunnel for ${identity} from ${peer}: ${refused}`)
                return link.close(CloseStatus.RESOURCE_LIMIT, refused)
              }
              leased = true
              up()
            })
          }
          up()
        } catch (e) {
          if (!(e instanceof HandshakeError)) throw e
          this.stats.handshakeFailures.add('TK_NOT_AUTHORIZED')
          log.log('warn', `refused ${identity} from ${peer}: ${e.message}`)
          link.close(CloseStatus.NOT_AUTHORIZED, e.message)
        }
      },
      onClosed: (reason, status, cause) => {
        clearTimeout(timer)
        for (const s of forwards) s.close()
        if (vpn) this.o.vpn?.detach(vpn.address, link)
        use?.close()
        if (leased) this.giveTunnel(identity)
        leased = false
        if (this.links.delete(link)) {
          this.bytesClosed.out += raw.bytesRead
          this.bytesClosed.back += raw.bytesWritten
        }
        if (this.lookups.get(identity)?.idle) this.lookups.delete(identity)
        if (authorized) {
          log.log('info', `tunnel down: ${identity} from ${peer}: ${reason}`)
          log.event('tunnel-down', {
            peer, identity, reason, code: status !== undefined ? closeStatusCode(status) : errorCode(cause, 'TK_CONNECTION_CLOSED'),
            status: status === undefined ? null : CLOSE_STATUS_NAMES[status] ?? null,
            seconds: (Date.now() - since) / 1000, bytesOut: raw.bytesRead, bytesBack: raw.bytesWritten,
          })
        }
      },
    })
    /** The REQUEST passed every check: the tunnel is up (VPN lease, sessions, remote forwards). */
    const up = (): void => {
      const req = request!
      const admitted = use!
      try {
        if (req.vpn) {
          if (!this.o.vpn) throw new HandshakeError('this gate offers no VPN mode (start it with --vpn --pool CIDR)')
          vpn = this.o.vpn.lease(identity, req.dataMacs)
          if (!vpn) throw new HandshakeError('the VPN address pool is exhausted')
        }
        if (this.links.size >= this.o.maxTunnels) {
          this.stats.limitHits.add('max-tunnels')
          log.log('warn', `refused ${identity} from ${peer}: tunnel limit of ${this.o.maxTunnels} reached`)
          return link.close(CloseStatus.RESOURCE_LIMIT, 'gate is at its tunnel limit')
        }
        authorized = true
        clearTimeout(timer)
        this.leavePending(raw, true)
        this.links.set(link, {identity, peer, serial: normalSerial(tls.getPeerCertificate().serialNumber), raw})
        this.startSessions(link, identity, peer, req.earlyData, admitted)
        if (vpn) this.o.vpn!.attach(vpn, link, tls, req.vpnOffload === true)
        void this.openRemoteForwards(link, identity, peer, req.remoteForwards, forwards, req.earlyData).then((g) => {
          if (vpn) g.vpn = vpn
          if (link.isClosed) return
          // The portal's SWITCH follows this RESPONSE at once: armed before it goes out.
          if (this.o.dataPath === 'native' && req.nativeDataPath && !req.vpn && hasDescriptor(tls, raw)) {
            g.nativeDataPath = true
            link.armSwitch((hold) => openNativeWire(tls, raw, 'gate', hold))
          }
          link.send(responseFrame(g, this.o.keyLifetime))
          if (this.o.keyLifetime > 0) {
            // The portal reconnects at expiry; one that does not is dropped after a grace period.
            setTimeout(() => link.close(CloseStatus.KEY_EXPIRED, 'key lifetime exceeded'), (this.o.keyLifetime + 5) * 1000).unref()
          }
        })
        since = Date.now()
        log.log('info', `tunnel up: ${identity} from ${peer}`)
        log.event('tunnel-up', {peer, identity})
      } catch (e) {
        if (!(e instanceof HandshakeError)) throw e
        this.stats.handshakeFailures.add('TK_NOT_AUTHORIZED')
        log.log('warn', `refused ${identity} from ${peer}: ${e.message}`)
        link.close(CloseStatus.NOT_AUTHORIZED, e.message)
      }
    }
  }

  /** The gate-wide and the identity's tunnel leases (workers only): a refusal sentence, or null. */
  private async leaseTunnel(identity: string): Promise<string | null> {
    const q = this.o.quota!
    if (!(await q.take('gate', ''))) {
      this.stats.limitHits.add('max-tunnels')
      return `gate is at its tunnel limit of ${this.o.maxTunnels} (all workers)`
    }
    if (!(await q.take('tunnels', identity))) {
      q.give('gate', '')
      this.stats.limitHits.add('max-tunnels-per-identity')
      return `${identity} already has ${this.o.maxTunnelsPerIdentity} tunnels, the most one identity may have (all workers)`
    }
    return null
  }

  private giveTunnel(identity: string): void {
    this.o.quota?.give('tunnels', identity)
    this.o.quota?.give('gate', '')
  }

  private startSessions(link: Link, identity: string, peer: string, earlyData: boolean, use: TunnelUse): void {
    const opens = new TokenBucket(this.o.openRate, this.o.openBurst, performance.now())
    let idleTimer: NodeJS.Timeout | null = null
    const armIdle = (): void => {
      if (this.o.idleTimeout <= 0) return
      if (idleTimer) clearTimeout(idleTimer)
      idleTimer = setTimeout(() => {
        if (link.mux && link.mux.size === 0) link.close(CloseStatus.TIMEOUT, `idle for ${this.o.idleTimeout} s`)
      }, this.o.idleTimeout * 1000)
      idleTimer.unref()
    }
    armIdle()
    link.startMux({
      onOpen: (req, session) => {
        if (idleTimer) clearTimeout(idleTimer)
        // Refused before any work: a flood costs the gate one reply per open, and no descriptor.
        const overRate = !opens.take(performance.now())
        // Over its rate, a tunnel is also not read for a while: the opens already read are refused,
        // and TCP flow control holds back the rest instead of the gate answering each one.
        if (overRate) {
          link.holdReading(OPEN_FLOOD_HOLD_MS)
          this.stats.limitHits.add('open-rate')
        }
        const refused = overRate ? `more than ${this.o.openRate} opens a second on this tunnel` : use.admitOpen()
        if (refused) {
          this.stats.opensRefused.add('TK_RESOURCE_LIMIT')
          this.limitWarn(`opens ${identity}`, `refused opens for ${identity} from ${peer}: ${refused}`)
          return session.reject(`limit: ${refused}`)
        }
        void this.open(identity, peer, req, session, use)
      },
      onSessionEnd: (session, reason) => {
        this.audit(session, reason)
        if (link.mux && link.mux.size === 0) armIdle()
      },
      takeEarly: (n) => use.takeEarly(n),
      giveEarly: (n) => use.giveEarly(n),
    }, this.o.maxSessions)
    if (earlyData) link.mux!.early = {half: 'high'}
  }

  /**
   * The audit line of one forwarded connection: who, from where, to what, bytes each way, how
   * long and why it ended; the same as a `session-closed` event. The summariser counts repeats of
   * one identity and target (numbers aside, so a port or address scan shares one key) beyond its
   * burst instead of printing them; the events are all kept.
   */
  private audit(session: Session, reason: string): void {
    const c = this.conns.get(session)
    if (!c) return
    this.conns.delete(session)
    const seconds = (Date.now() - c.since) / 1000
    // bytesIn: what the portal sent (out, in docs/events.md terms); bytesOut: what went back.
    const fields = {
      peer: c.peer, identity: c.identity, kind: c.kind, protocol: session.req.protocol, target: c.target,
      ...(c.address ? {address: c.address} : {}), ...(c.from ? {from: c.from} : {}),
      reason, seconds, bytesOut: session.bytesIn, bytesBack: session.bytesOut,
    }
    const what = c.kind === 'remote' ? `-R ${c.target} from ${c.from}` : `${fields.protocol} ${c.target}${c.address && c.address !== c.target ? ` (${c.address})` : ''}`
    this.o.log.log('info', `session: ${c.identity} from ${c.peer}: ${what} closed after ${seconds.toFixed(1)} s, ${session.bytesIn} bytes out, ${session.bytesOut} back: ${reason}`,
      {key: `session ${c.identity} ${c.kind} ${c.target.replace(/\d+/g, '#')}`, ...fields})
    this.o.log.event('session-closed', fields)
  }

  /** A refusal for a limit: the logger summarises repeats of one key (kind and identity). */
  private limitWarn(key: string, line: string): void {
    this.o.log.log('warn', line, {key: `limit ${key}`})
  }

  /** An admitted open: it holds one descriptor of `use` until its socket closes. */
  private async open(identity: string, peer: string, req: OpenRequest, session: Session, use: TunnelUse): Promise<void> {
    const target = hostPort(req.host, req.port)
    const denied = (): RefusedError => new RefusedError('TK_DENIED', `${identity} may not open ${req.protocol} ${target} (gate policy)`)
    let held = true
    /** A session leased from the primary (workers only), or refused for want of one. */
    let leased = false
    let overShare = false
    const free = (): void => {
      if (held) use.sessionClosed()
      held = false
      if (leased) this.o.quota!.give('sessions', identity)
      leased = false
    }
    // Once a socket exists for the session, its close frees the descriptor.
    let handedOff = false
    try {
      const policy = this.o.policy
      // Decided before any lookup where the rules allow it: a refused identity learns nothing of
      // which names exist, and cannot make the gate ask its resolver (nor the primary for a lease).
      const verdict = policy.allowsName(identity, req.host, req.port)
      if (verdict === false) throw denied()
      if (this.o.quota) {
        // The identity's sessions on the other workers count too (core/shares.ts).
        leased = await this.o.quota.take('sessions', identity)
        overShare = !leased
        if (overShare) throw new RefusedError('TK_RESOURCE_LIMIT', `${identity} has ${this.o.maxSessionsPerIdentity} sessions, the most one identity may have (all workers)`)
      }
      let address: string
      try {
        ({address} = await resolve(req.host, {timeoutMs: this.o.resolveTimeout * 1000, budget: this.lookupBudget(identity)}))
      } catch (e) {
        // Only an address rule could allow it: a name that does not resolve is answered as a denial.
        if (verdict === undefined && errorCode(e) === 'TK_HOST_NOT_FOUND') throw denied()
        throw e
      }
      if (verdict === undefined && !policy.allowsAddress(identity, address, req.port)) throw denied()
      const rule = verdict === undefined ? 'an address rule' : policy.open ? 'an open policy (no --allow rules)' : 'a name rule'
      this.o.log.log('debug', `open ${req.protocol} ${target} for ${identity} from ${peer}: allowed by ${rule}; connecting to ${hostPort(address, req.port)}`)
      const conn: Conn = {identity, peer, kind: 'open', target, address: hostPort(address, req.port), since: Date.now()}
      if (req.protocol === 'tcp') {
        const sock = await dialTcp(address, req.port, this.o.connectTimeout * 1000)
        if (session.state !== 'pending') return void sock.destroy()
        handedOff = true
        sock.once('close', free)
        const ep = new SocketEndpoint(sock)
        this.conns.set(session, conn)
        session.acceptStream(ep)
        ep.bind(session)
        ep.opened(true)
      } else {
        const ep = await this.udpTo(address, req.port, session, free)
        handedOff = true
        if (session.state !== 'pending') return ep.destroy('session ended while opening')
        this.conns.set(session, conn)
        session.acceptDatagram(ep)
      }
    } catch (err) {
      // Anything unexpected fails this one open, never the gate.
      if (!(err instanceof TunkitError)) this.o.log.log('error', `open ${req.protocol} ${target} for ${identity}: ${(err as Error).stack ?? err}`)
      if (overShare) this.limitWarn(`opens ${identity}`, `refused opens for ${identity} from ${peer}: ${(err as Error).message}`)
      else if (errorCode(err) === 'TK_DENIED') this.o.log.log('warn', `denied: ${identity} from ${peer} asked for ${req.protocol} ${target}`, {key: `denied ${identity}`})
      else this.o.log.log('debug', `open ${req.protocol} ${target} for ${identity} failed: ${(err as Error).message}`)
      this.stats.opensRefused.add(errorCode(err))
      // The one limit an admitted open can still meet: its identity's name lookups.
      if (errorCode(err) === 'TK_RESOURCE_LIMIT') this.stats.limitHits.add(overShare ? 'max-sessions-per-identity' : 'max-lookups')
      session.reject(openFailReason(err))
    } finally {
      use.dialed()
      if (!handedOff) free()
    }
  }

  /** One identity's share of the name lookups, however many tunnels it has. */
  private lookupBudget(identity: string): Limiter {
    let l = this.lookups.get(identity)
    if (!l) this.lookups.set(identity, (l = new Limiter(this.o.maxLookups, 64)))
    return l
  }

  /** closed: the socket is gone (its descriptor free). */
  private udpTo(address: string, port: number, session: Session, closed: () => void): Promise<DatagramEndpoint> {
    const sock: UdpSocket = createSocket(address.includes(':') ? 'udp6' : 'udp4')
    let idle: NodeJS.Timeout
    const touch = (): void => {
      clearTimeout(idle)
      idle = setTimeout(() => session.close(`UDP session idle for ${this.o.udpIdle} s`), this.o.udpIdle * 1000)
      idle.unref()
    }
    return new Promise((res, rej) => {
      sock.once('error', (e) => {
        sock.close()
        rej(fromSystemError(e, `UDP to ${hostPort(address, port)}`))
      })
      sock.connect(port, address, () => {
        sock.removeAllListeners('error')
        sock.on('error', () => {}) // ICMP unreachable and the like: UDP is best effort
        sock.on('message', (msg, rinfo) => {
          touch()
          session.sendDatagram(msg, {addr: rinfo.address, port: rinfo.port})
        })
        touch()
        res({
          opened() {},
          deliver: (data) => {
            touch()
            sock.send(data)
          },
          destroy: () => {
            clearTimeout(idle)
            sock.close()
            closed()
          },
        })
      })
    })
  }

  private async openRemoteForwards(link: Link, identity: string, peer: string, wanted: {bind: string; port: number}[], servers: Server[], earlyData: boolean): Promise<TunnelGrant> {
    const grant: TunnelGrant = {identity, remoteForwards: [], earlyData}
    for (const f of wanted) {
      const asked = hostPort(f.bind, f.port)
      const v = this.o.policy.listen(identity, f.bind, f.port)
      if ('denied' in v) {
        this.o.log.log('warn', `refused remote forward ${asked} for ${identity}: ${v.denied}`, {key: `listen denied ${identity}`})
        grant.remoteForwards.push({...f, error: 'denied'})
        continue
      }
      const srv = createServer({noDelay: true, allowHalfOpen: true}, (s) => {
        const mux = link.mux
        if (!mux || link.isClosed) return void s.destroy()
        const from = hostPort(s.remoteAddress ?? '?', s.remotePort ?? 0)
        const since = Date.now()
        const ep = new SocketEndpoint(s, (ok) => {
          if (ok && session) this.conns.set(session, {identity, peer, kind: 'remote', target: hostPort(v.bind, s.localPort ?? f.port), from, since})
        })
        // Named as the portal asked (it finds its forward by that), wherever we listen.
        const session = mux.open({protocol: 'tcp', host: f.bind, port: f.port}, ep)
        if (session) ep.bind(session)
      })
      try {
        const {port} = await startListener(srv, v.bind, f.port, this.o.log)
        servers.push(srv)
        grant.remoteForwards.push({bind: v.bind, port: f.port === 0 ? port : f.port, ...(v.asked ? {asked: v.asked} : {})})
        const note = v.asked ? ` (asked for ${v.asked}: loopback only without an --allow-listen rule for it)` : ''
        this.o.log.log('info', `remote forward for ${identity}: listening on ${hostPort(v.bind, port)}${note}`)
      } catch (e) {
        grant.remoteForwards.push({...f, error: e instanceof ListenError ? e.code : 'failed'})
      }
    }
    return grant
  }
}

/** A forwarded connection, as its audit line names it. */
interface Conn {
  identity: string
  /** The portal's address. */
  peer: string
  /** open: the portal asked the gate to connect; remote: a connection to a -R listener. */
  kind: 'open' | 'remote'
  /** host:port as asked (open), or the -R listener's address (remote). */
  target: string
  /** The address dialled (open). */
  address?: string
  /** Who connected to the -R listener (remote). */
  from?: string
  since: number
}

/** How the gate words a client certificate the TLS layer refused, by code (SYSTEM_CODES). */
const CLIENT_CERT_PROBLEMS: Partial<Record<ErrorCode, string>> = {
  TK_TLS_CERT_REQUIRED: 'client sent no certificate',
  TK_TLS_UNKNOWN_CA: 'client certificate is not signed by our CA',
  TK_TLS_BAD_CERTIFICATE: 'client certificate is not acceptable',
  TK_TLS_CERT_EXPIRED: 'client certificate has expired',
  TK_TLS_CERT_NOT_YET_VALID: 'client certificate is not yet valid',
}

/** A TLS failure on the gate's side of a handshake, as a TlsError with a code and a sentence. */
export function clientTlsError(err: Error & {code?: string}): TlsError {
  const code = errorCode(err, 'TK_TLS_HANDSHAKE_FAILED')
  const problem = CLIENT_CERT_PROBLEMS[code]
  const message = problem ? (code === 'TK_TLS_CERT_REQUIRED' ? problem : `${problem} (${err.code})`) : err.message
  return new TlsError(code, message, {cause: err})
}

function secureContext(tls: TlsMaterial): ReturnType<typeof createSecureContext> {
  return createSecureContext({cert: tls.cert, key: tls.key, ca: tls.ca, ...(tls.crl ? {crl: tls.crl} : {}), minVersion: 'TLSv1.3', ciphers: CIPHERSUITES, honorCipherOrder: true})
}

/** A CLOSE frame that says why, then the socket goes: a flood must not leave half-closed sockets. */
function refuse(raw: Socket, reason: string): void {
  raw.end(encodeTunnel({kind: 'close', status: CloseStatus.RESOURCE_LIMIT, reason}), () => raw.destroy())
}
