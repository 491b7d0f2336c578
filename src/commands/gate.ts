import {Flags} from '@oclif/core'
import {readFileSync} from 'node:fs'
import {TunkitCommand} from '../cli/base.js'
import {parseHostPort, parseSeconds, UsageError} from '../cli/parse.js'
import {tlsFlags, tlsFromFlags} from '../cli/tls-flags.js'
import {parseRule, Policy, PolicyError} from '../tunnel/core/policy.js'
import {hostPort} from '../lib/io/connect.js'
import {Gate} from '../tunnel/io/gate.js'
import {GateVpn} from '../vpn/io/vpn.js'
import ipaddr from 'ipaddr.js'

export default class GateCommand extends TunkitCommand {
  static override summary = 'Accept authenticated tunnels from portals and open connections behind this host.'
  static override description = `The server end of a tunkit tunnel (seed 001 "Gate"). Portals connect over TCP, send a RELAY frame, then
TLS 1.3 with mutual certificate authentication; the client's identity is its certificate subject CN.
With no --allow rules every authenticated client may open anything; with rules, only what they allow.`
  static override examples = [
    '<%= config.bin %> gate --listen 127.0.0.1:4433',
    "<%= config.bin %> gate --listen 0.0.0.0:4433 --allow 'alice=198.18.0.0/15:22,443' --allow '*=intranet.example:80'",
  ]

  static override flags = {
    ...tlsFlags,
    listen: Flags.string({char: 'l', summary: 'Address and port to accept tunnels on.', default: '127.0.0.1:4433'}),
    name: Flags.string({summary: 'Our node name: RELAY frames must end with it (default: accept any).'}),
    allow: Flags.string({summary: "Access rule IDENTITY=TARGET[:PORTS] (repeatable), e.g. 'alice=198.18.0.0/15:22'.", multiple: true}),
    policy: Flags.string({summary: 'File of access rules, one per line (# comments).'}),
    'max-sessions': Flags.integer({summary: 'Sessions allowed on one tunnel.', default: 4096, min: 1, max: 32767}),
    'max-tunnels': Flags.integer({summary: 'Tunnels allowed at once.', default: 1024, min: 1}),
    'handshake-timeout': Flags.string({summary: 'Seconds a client has to finish RELAY, TLS and REQUEST.', default: '10'}),
    'idle-timeout': Flags.string({summary: 'Close a tunnel with no sessions after this many seconds (0 = never).', default: '0'}),
    'connect-timeout': Flags.string({summary: 'Seconds to wait for an outbound connection.', default: '10'}),
    keepalive: Flags.string({summary: 'Seconds between keepalive pings (0 = off).', default: '15'}),
    'dead-after': Flags.string({summary: 'Seconds of silence after which a tunnel is dropped.', default: '45'}),
    'udp-idle': Flags.string({summary: 'Seconds after which an idle UDP session ends.', default: '120'}),
    'key-lifetime': Flags.string({summary: 'Seconds a tunnel\'s keys live; portals reconnect before then (0 = forever).', default: '0'}),
    vpn: Flags.boolean({summary: 'Offer VPN mode: IP packets between portals\' pseudo adapters and this host (needs root).', helpGroup: 'VPN'}),
    pool: Flags.string({summary: 'Address pool for VPN clients (CIDR); the first address is the gate\'s own.', helpGroup: 'VPN'}),
    route: Flags.string({summary: 'Network the portals should route through the gate (repeatable).', multiple: true, helpGroup: 'VPN'}),
    dns: Flags.string({summary: 'DNS server to hand to portals (repeatable).', multiple: true, helpGroup: 'VPN'}),
    dev: Flags.string({summary: 'Name of the gate\'s TUN device.', default: 'tunkit-gate', helpGroup: 'VPN'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(GateCommand)
    const listen = parseHostPort(f.listen, '--listen')
    const rules: string[] = [...(f.allow ?? [])]
    if (f.policy) {
      let text: string
      try {
        text = readFileSync(f.policy, 'utf8')
      } catch (e) {
        throw new UsageError(`--policy: cannot read ${f.policy}: ${(e as Error).message}`)
      }
      rules.push(...text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean))
    }
    let policy: Policy
    try {
      policy = new Policy(rules.map(parseRule))
    } catch (e) {
      if (e instanceof PolicyError) throw new UsageError(`--allow: ${e.message}`)
      throw e
    }
    let vpn: GateVpn | undefined
    if (f.vpn) {
      if (!f.pool) throw new UsageError('--pool: VPN mode needs an address pool (CIDR)')
      try {
        ipaddr.IPv4.parseCIDR(f.pool)
      } catch {
        throw new UsageError(`--pool: "${f.pool}" is not an IPv4 CIDR`)
      }
      for (const r of f.route ?? []) if (!ipaddr.isValidCIDR(r)) throw new UsageError(`--route: "${r}" is not a CIDR`)
      try {
        vpn = GateVpn.open(f.pool, f.route ?? [], f.dns ?? [], f.dev, this.logger)
      } catch (e) {
        throw new Error(`cannot set up the VPN device: ${(e as Error).message}`)
      }
    }
    const gate = new Gate({
      vpn,
      host: listen.host,
      port: listen.port,
      tls: tlsFromFlags('gate', f),
      name: f.name,
      policy,
      maxSessions: f['max-sessions'],
      maxTunnels: f['max-tunnels'],
      handshakeTimeout: parseSeconds(f['handshake-timeout'], '--handshake-timeout'),
      idleTimeout: parseSeconds(f['idle-timeout'], '--idle-timeout'),
      connectTimeout: parseSeconds(f['connect-timeout'], '--connect-timeout'),
      keepalive: parseSeconds(f.keepalive, '--keepalive'),
      deadAfter: parseSeconds(f['dead-after'], '--dead-after'),
      udpIdle: parseSeconds(f['udp-idle'], '--udp-idle'),
      keyLifetime: parseSeconds(f['key-lifetime'], '--key-lifetime'),
      log: this.logger,
      tracer: this.tracer,
    })
    const bound = await this.listenOn('--listen', () => gate.listen())
    const where = hostPort(bound.address, bound.port)
    this.logger.log('info', `gate listening on ${where}${policy.open ? ' (no access rules: every authenticated client may open anything)' : ` with ${policy.rules.length} access rule(s)`}`)
    this.logger.event('listening', {address: where, port: bound.port})
    const sig = await this.waitForSignal()
    this.logger.log('info', `${sig}: closing ${gate.tunnels} tunnel(s)`)
    await gate.close()
    vpn?.close()
    this.logger.event('stopped', {signal: sig})
  }
}
