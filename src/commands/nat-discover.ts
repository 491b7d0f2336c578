import {Flags} from '@oclif/core'
import {lookup} from 'node:dns/promises'
import {isIP} from 'node:net'
import {TunkitCommand} from '../cli/base.js'
import {UsageError, type HostPort} from '../cli/parse.js'
import * as F from '../cli/flags.js'
import {hostPort} from '../lib/io/connect.js'
import {ListenError} from '../lib/io/listen.js'
import {discover, DISCOVER_DEFAULTS, ServerUnreachable, type Discovery} from '../stun/io/client.js'
import {StunServer, STUN_SERVER_DEFAULTS as S} from '../stun/io/server.js'

/** Exit status for scripts: 0 discovered, 2 bad arguments, 3 UDP blocked, 4 server unreachable. */
export const EXIT = {OK: 0, BAD_ARGS: 2, UDP_BLOCKED: 3, UNREACHABLE: 4} as const

export default class NatDiscover extends TunkitCommand {
  static override summary = 'Discover the NAT in front of this host (STUN, RFC 5780) and which tunnel will get through; or serve STUN.'
  static override description = `Client: tests the NAT between this host and a STUN server (RFC 5780): how it maps addresses and ports, what it lets in, whether it hairpins, and with --lifetime how long an idle mapping lives. Then it recommends a tunnel: "direct" (no NAT: plain IPsec works), "nat-t" (IPsec in UDP, port 4500) or "wrap" (UDP blocked or mappings too short-lived: use a portal and gate over TCP on a reachable port).

Server (--serve): answers STUN requests on the primary and alternate addresses and ports, the RFC 5780 tests included, with a rate limit per source address and one for the whole server. An answer carries no more than its request needs.

Exit status: 0 discovered, 2 bad arguments, 3 UDP blocked, 4 server unreachable.`
  static override examples = [
    '<%= config.bin %> nat-discover --serve --listen 203.0.113.10:3478 --alt 203.0.113.11:3479',
    '<%= config.bin %> nat-discover --server 203.0.113.10',
    '<%= config.bin %> nat-discover --server 203.0.113.10 --json | jq .recommendation',
  ]

  static override flags = {
    server: F.stunServer({char: 's', summary: 'STUN server, host[:port] (port 3478 by default); repeat to try several.', multiple: true}),
    bind: Flags.string({summary: 'Local address to send from.'}),
    timeout: F.duration({summary: 'Time the whole discovery may take, the lifetime test excepted (seconds, or 500ms, 30s, 5m).', default: DISCOVER_DEFAULTS.timeout}),
    lifetime: F.duration({summary: 'Also measure how long an idle binding lives, up to this long (0 = skip).', default: DISCOVER_DEFAULTS.lifetime}),
    serve: Flags.boolean({summary: 'Run a STUN server instead.'}),
    listen: F.hostPort({summary: 'Server: primary address and port.', ...F.hostPortDefault(S.primary.address, S.primary.port)}),
    alt: F.hostPort({summary: 'Server: alternate address and port (needed for RFC 5780 tests).'}),
    rate: Flags.integer({summary: 'Server: answers per second per source address.', default: S.rate, min: 1}),
    burst: Flags.integer({summary: 'Server: burst of answers per source address.', default: S.burst, min: 1}),
    'global-rate': Flags.integer({summary: 'Server: answers per second from the whole server (spoofed sources defeat --rate).', default: S.globalRate, min: 1}),
    'global-burst': Flags.integer({summary: 'Server: burst of answers from the whole server.', default: S.globalBurst, min: 1}),
    software: Flags.boolean({summary: 'Server: name tunkit and its version in answers (off keeps answers smallest).'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(NatDiscover)
    if (f.serve) return this.serve(f)
    if (!f.server?.length) throw new UsageError('missing required flag --server (or --serve to run a server)')
    const {timeout, lifetime} = f
    let last: Error | null = null
    for (const s of f.server) {
      let address = s.host
      try {
        if (!isIP(address)) address = (await lookup(address)).address
      } catch {
        last = new ServerUnreachable(`cannot resolve ${s.host}`)
        continue
      }
      try {
        const d = await discover({server: {address, port: s.port}, bind: f.bind, timeout, lifetime, log: this.logger, tracer: this.tracer})
        this.report(d)
        process.exitCode = d.mappedAddress === null ? EXIT.UDP_BLOCKED : EXIT.OK
        return
      } catch (e) {
        if (e instanceof ListenError) throw new UsageError(`--bind: ${e.message}`)
        if (!(e instanceof ServerUnreachable)) throw e
        last = e
        this.logger.log('warn', `STUN server ${hostPort(s.host, s.port)} unreachable: ${e.message}`)
      }
    }
    if (this.jsonMode()) process.stdout.write(JSON.stringify({schema: 1, error: 'server-unreachable', message: last?.message}) + '\n')
    else this.errorLine(`no STUN server reachable (${last?.message})`, {exit: EXIT.UNREACHABLE})
    process.exitCode = EXIT.UNREACHABLE
  }

  private report(d: Discovery): void {
    if (this.jsonMode()) return void process.stdout.write(JSON.stringify(d) + '\n')
    const lines = [
      `server           ${d.server.address}${d.server.software ? ` (${d.server.software})` : ''}${d.server.rfc5780 ? `, RFC 5780, other address ${d.server.otherAddress}` : ', no RFC 5780 support'}`,
      `local address    ${d.localAddress}`,
      `mapped address   ${d.mappedAddress ?? 'none (no answer)'}`,
      `NAT present      ${d.mappedAddress ? (d.natPresent ? 'yes' : 'no') : 'unknown'}`,
      `mapping          ${d.mapping}`,
      `filtering        ${d.filtering}`,
      `hairpinning      ${d.hairpinning === null ? 'not tested' : d.hairpinning ? 'yes' : 'no'}`,
      `port preserved   ${d.mappedAddress ? (d.portPreserved ? 'yes' : 'no') : 'unknown'}`,
      `binding lifetime ${d.bindingLifetimeSec === null ? 'not tested' : `at least ${d.bindingLifetimeSec} s`}`,
      `recommendation   ${d.recommendation}`,
      ...d.reasons.map((r) => `  - ${r}`),
      `(${d.durationMs} ms)`,
    ]
    process.stdout.write(lines.join('\n') + '\n')
  }

  private async serve(f: {listen: HostPort; alt?: HostPort; rate: number; burst: number; 'global-rate': number; 'global-burst': number; software: boolean}): Promise<void> {
    const {listen: primary, alt} = f
    if (alt && (alt.host === primary.host || alt.port === primary.port)) throw new UsageError('--alt: the alternate address and port must both differ from --listen')
    const server = new StunServer({
      primary: {address: primary.host, port: primary.port},
      alternate: alt && {address: alt.host, port: alt.port},
      software: f.software ? `tunkit ${this.config.version}`.padEnd(12).slice(0, 12) : undefined,
      rate: f.rate,
      burst: f.burst,
      globalRate: f['global-rate'],
      globalBurst: f['global-burst'],
      log: this.logger,
      tracer: this.tracer,
    })
    const bound = await this.listenOn('--listen/--alt', () => server.listen())
    const where = bound.map((b) => hostPort(b.address, b.port))
    this.logger.log('info', `STUN server on ${where.join(', ')}${alt ? '' : ' (no --alt: RFC 5780 tests unavailable)'}`)
    this.logger.event('listening', {addresses: where})
    const sig = await this.waitForSignal()
    server.close()
    this.logger.event('stopped', {signal: sig, answered: server.answered, dropped: server.dropped, overBudget: server.overBudget})
  }
}
