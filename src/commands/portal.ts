import {Flags} from '@oclif/core'
import type {Server} from 'node:net'
import type {Socket as UdpSocket} from 'node:dgram'
import {TunkitCommand} from '../cli/base.js'
import {TunkitError} from '../lib/errors.js'
import {parseHostPort, UsageError} from '../cli/parse.js'
import * as F from '../cli/flags.js'
import {tlsFlags, tlsFromFlags} from '../cli/tls-flags.js'
import {hostPort} from '../lib/io/connect.js'
import {tcpForward, udpForward} from '../tunnel/io/forwards.js'
import {boundPort} from '../lib/io/listen.js'
import {FatalTunnelError, Portal, PORTAL_DEFAULTS as D} from '../tunnel/io/portal.js'
import {formatGateTarget, type GateTarget} from '../tunnel/core/gate-group.js'
import {socksServer} from '../socks5/io/server.js'
import type {DataPath} from '../tunnel/io/native-path.js'
import {PortalVpn} from '../vpn/io/portal-vpn.js'
import {parseCidr4} from '../vpn/core/pushed.js'

export default class PortalCommand extends TunkitCommand {
  static override summary = 'Connect to a gate and offer a SOCKS5 proxy, port forwards and UDP forwards through it.'
  static override description = `The client end of a tunnel: one TCP connection to the gate, TLS 1.3 with certificates on both sides, and every local connection carried over it. Host names are resolved by the gate, so names only known behind the gate work.

When the tunnel drops, the portal reconnects with backoff; its listeners stay open meanwhile.`
  static override examples = [
    '<%= config.bin %> portal --gate 127.0.0.1:4433 --socks 127.0.0.1:1080',
    '<%= config.bin %> portal --gate gate.example:4433 -L 127.0.0.1:8022:intranet.example:22 --trace',
    '<%= config.bin %> portal --gate gate.example:4433 -U 127.0.0.1:5353:198.18.0.53:53 -R 8080:127.0.0.1:80',
  ]

  static override flags = {
    ...tlsFlags,
    gate: F.gateTarget({char: 'g', summary: 'Gate address, host:port, or group:NAME (a gate group of the last --via relay).'}),
    via: F.hostPortList({summary: 'Relays to pass through, comma-separated host:port list (first hop first).'}),
    socks: F.localHostPort({char: 'D', summary: 'Run a SOCKS5 server on [host:]port.'}),
    'socks-user': Flags.string({summary: 'Require this SOCKS5 user name (RFC 1929); the password comes from TUNKIT_SOCKS_PASSWORD.'}),
    local: F.forward({char: 'L', summary: 'Forward [bind:]port to host:port behind the gate.', multiple: true}),
    udp: F.forward({char: 'U', summary: 'Forward UDP [bind:]port to host:port behind the gate.', multiple: true}),
    remote: F.forward({char: 'R', summary: 'Ask the gate to listen on [bind:]port and forward to host:port on our side.', multiple: true}),
    'upstream-socks': F.hostPort({summary: 'Reach the gate through this SOCKS5 proxy, host:port.'}),
    keepalive: F.duration({summary: 'Time between keepalive pings (seconds, or 500ms, 30s, 5m; 0 = off).', default: D.keepalive}),
    'dead-after': F.duration({summary: 'Silence after which the tunnel is reconnected.', default: D.deadAfter}),
    'connect-timeout': F.duration({summary: 'Time for TCP, TLS and the gate to answer.', default: D.connectTimeout}),
    'backoff-max': F.duration({summary: 'Longest wait between reconnect attempts.', default: D.backoffMax}),
    retries: Flags.integer({
      summary: 'Exit 1 after this many failed attempts in a row (default: retry for ever).', min: 1,
      description: 'Only refused, unreachable, timed-out and dropped connections are retried at all: a certificate, authorisation or path error, or a peer that is not a gate, exits 1 at once.',
    }),
    'gate-name': Flags.string({summary: 'Verify the gate certificate against this name instead of the --gate host (e.g. a DNS SAN when dialling an address).'}),
    'data-path': Flags.string({
      summary: 'Transport of the established tunnel: tls (Node\'s TLS) or native (AES-256-GCM records in the addon, if the peer agrees; a prototype).',
      options: ['tls', 'native'], default: 'tls',
      description: 'native is used only when both portal and gate say --data-path native; without the native addon it falls back to tls with a warning. See docs/protocol.md, "Native data path", and BENCHMARKS.md.',
    }),
    'udp-idle': F.duration({summary: 'Silence after which a UDP flow ends.', default: D.udpIdle}),
    vpn: Flags.boolean({summary: 'VPN mode: a pseudo network adapter (TUN) carrying IP through the tunnel (needs root).', helpGroup: 'VPN'}),
    tap: Flags.boolean({summary: 'With --vpn: an Ethernet (TAP) adapter with DHCP and ARP server emulators instead of TUN.', helpGroup: 'VPN'}),
    dev: Flags.string({summary: 'Name of the TUN/TAP device.', default: 'tunkit0', helpGroup: 'VPN'}),
    offload: Flags.boolean({summary: 'With --vpn (TUN): the device hands over and takes TCP super-packets of up to 64 KiB and leaves checksums to finish; --no-offload: one packet at a time.', default: true, allowNo: true, helpGroup: 'VPN'}),
    'no-routes': Flags.boolean({summary: 'Do not install the routes the gate announces.', helpGroup: 'VPN'}),
    'accept-routes': F.ipv4Cidr({
      summary: 'Install only pushed routes inside these networks (default: any but a default route or a /1).', multiple: true, helpGroup: 'VPN',
      description: 'Whatever this allows, a route that covers the first hop (the gate, or the first --via relay) is never installed.',
    }),
    'skip-unbindable': Flags.boolean({summary: 'Skip, with a warning, a --socks, -L, -U or -R listener that cannot be bound instead of exiting.'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(PortalCommand)
    if (f.tap && !f.vpn) throw new UsageError('--tap: only with --vpn')
    const gate: GateTarget = f.gate ?? {kind: 'host', ...parseHostPort(await this.ask('gate', 'Gate address (host:port):', (v) => parseHostPort(v, '--gate')), '--gate')}
    const via = f.via ?? []
    if (gate.kind === 'group' && !via.length) throw new UsageError('--gate: group:NAME needs at least one --via relay that knows the group')
    let auth: {user: string; pass: string} | undefined
    if (f['socks-user']) {
      const pass = process.env.TUNKIT_SOCKS_PASSWORD
      if (!pass) throw new UsageError('--socks-user: set the password in TUNKIT_SOCKS_PASSWORD')
      auth = {user: f['socks-user'], pass}
    }
    const udpIdle = f['udp-idle']
    const acceptRoutes = f['accept-routes']?.map((c) => parseCidr4(c) ?? badCidr(c)) ?? null
    const portal = new Portal({
      gate,
      via,
      upstreamSocks: f['upstream-socks'],
      tls: tlsFromFlags('client', f, this.logger),
      remoteForwards: f.remote ?? [],
      keepalive: f.keepalive,
      deadAfter: f['dead-after'],
      connectTimeout: f['connect-timeout'],
      backoffMax: f['backoff-max'],
      retries: f.retries,
      gateName: f['gate-name'],
      dataPath: f['data-path'] as DataPath,
      log: this.logger,
      tracer: this.tracer,
      vpn: f.vpn ? new PortalVpn(f.dev, !f['no-routes'], this.logger, f.tap ? 'tap' : 'tun', this.tracer, acceptRoutes, f.offload) : undefined,
    })
    // Watched from the start: a signal while the first tunnel is still being retried ends it too.
    const signal = this.waitForSignal()
    const gaveUp = (e: unknown): never => {
      if (e instanceof FatalTunnelError) throw new TunkitError(e.code, `cannot open a tunnel to ${formatGateTarget(gate)}: ${e.message}`, {cause: e})
      throw e
    }
    const early = await Promise.race([portal.start().then(() => null), signal]).catch(gaveUp)
    if (early) {
      this.logger.log('info', `${early}: giving up on the tunnel`)
      await portal.stop()
      this.logger.event('stopped', {signal: early})
      return
    }
    const servers: (Server | UdpSocket)[] = []
    // Ends every connection the SOCKS5 server accepted (UDP associations too) at shutdown.
    const stopAll = new AbortController()
    const closeAll = async (): Promise<void> => {
      stopAll.abort()
      for (const s of servers) s.close()
      await portal.stop()
    }
    const announce = (kind: string, bind: string, s: Server | UdpSocket, to?: {host: string; port: number}): void => {
      const where = hostPort(bind, boundPort(s))
      this.logger.log('info', `${kind} listening on ${where}${to ? ` → ${hostPort(to.host, to.port)}` : ''}`)
      this.logger.event('listening', {kind, address: where, port: boundPort(s), ...(to ? {to: hostPort(to.host, to.port)} : {})})
      servers.push(s)
    }
    // A listener that cannot bind ends the portal (exit 2), closing what is already open: a portal
    // with its tunnel dropped but a listener left answering would be alive and useless.
    const open = async (kind: string, flag: string, bind: string, listen: () => Promise<Server | UdpSocket>, to?: {host: string; port: number}): Promise<void> => {
      try {
        announce(kind, bind, await this.listenOn(flag, listen), to)
      } catch (e) {
        if (!(e instanceof UsageError) || !f['skip-unbindable']) throw e
        this.logger.log('warn', `${e.message}; skipped (--skip-unbindable)`)
        this.logger.event('listen-skipped', {kind, reason: e.message})
      }
    }
    try {
      const socks = f.socks
      if (socks) await open('socks', '--socks', socks.host, () => socksServer(portal, {...socks, auth, udpIdle, log: this.logger, signal: stopAll.signal}))
      for (const l of f.local ?? []) await open('local', '-L', l.bind, () => tcpForward(portal, l, this.logger), l.to)
      for (const u of f.udp ?? []) await open('udp', '-U', u.bind, () => udpForward(portal, u, udpIdle, this.logger), u.to)
      // The gate's answer to -R on the first tunnel: a forward it could not bind is ours to report.
      for (const r of portal.grant?.remoteForwards ?? []) {
        if (!r.error) continue
        const msg = `-R ${hostPort(r.bind, r.port)}: the gate cannot listen there: ${r.error}`
        if (!f['skip-unbindable']) throw new UsageError(msg)
        this.logger.log('warn', `${msg}; skipped (--skip-unbindable)`)
        this.logger.event('listen-skipped', {kind: 'remote', reason: msg})
      }
    } catch (e) {
      await closeAll()
      throw e
    }
    // Until a signal, or until a later tunnel fails in a way retrying cannot fix (or --retries).
    const end = await Promise.race([signal, portal.failed])
    await closeAll()
    if (end instanceof FatalTunnelError) gaveUp(end)
    const sig = end as NodeJS.Signals
    this.logger.log('info', `${sig}: closing the tunnel`)
    this.logger.event('stopped', {signal: sig})
  }
}

function badCidr(c: string): never {
  throw new UsageError(`--accept-routes: "${c}" is not an IPv4 CIDR (a.b.c.d/n)`)
}
