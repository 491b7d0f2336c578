import {Flags} from '@oclif/core'
import {TunkitCommand} from '../cli/base.js'
import {parseHostPort, parseSeconds, UsageError} from '../cli/parse.js'
import {GateGroup} from '../tunnel/core/gate-group.js'
import {HopRuleError, parseHopRule} from '../tunnel/core/next-hop.js'
import {hostPort} from '../lib/io/connect.js'
import {Relay} from '../tunnel/io/relay.js'

export default class RelayCommand extends TunkitCommand {
  static override summary = 'Forward tunnels hop by hop without seeing their contents (a bastion between portals and gates).'
  static override description = `A tunnel relay (seed 000): it reads the RELAY frame a portal sends, finds its own --name in
the path, connects the next node, forwards the frame and then splices bytes both ways. TLS runs end to
end between portal and gate, so the relay never sees plaintext. It is not an open proxy: it forwards
only to next hops allowed by --allow-next, and answers any refusal with a CLOSE frame that says why.`
  static override examples = [
    '<%= config.bin %> relay --listen 0.0.0.0:4500 --name relay-b.example --allow-next relay-c.example:4500',
    '<%= config.bin %> relay --listen 127.0.0.1:4500 --name 127.0.0.1:4500 --allow-next 198.18.0.0/15',
    '<%= config.bin %> relay --listen 0.0.0.0:4500 --name relay-c.example --group gates=gate1.example:4433,gate2.example:4433',
  ]

  static override flags = {
    listen: Flags.string({char: 'l', summary: 'Address and port to accept tunnels on.', default: '127.0.0.1:4500'}),
    name: Flags.string({summary: 'Our node name in RELAY paths (a host name, or host:port).'}),
    'allow-next': Flags.string({summary: 'Next hop we may forward to: CIDR, address or host name, optionally :port (repeatable).', multiple: true}),
    group: Flags.string({summary: 'A group of gates, NAME=host:port,host:port (repeatable); portals ask for "group:NAME".', multiple: true}),
    balance: Flags.option({options: ['least-connections', 'round-robin'] as const, default: 'least-connections' as const, summary: 'How a group member is chosen.'})(),
    'health-interval': Flags.string({summary: 'Seconds between health checks of group members (0 = off).', default: '5'}),
    'max-hops': Flags.integer({summary: 'Longest path (number of relays) accepted.', default: 8, min: 1, max: 8}),
    'handshake-timeout': Flags.string({summary: 'Seconds for a client to send its RELAY frame and for the next hop to connect.', default: '10'}),
    'connect-timeout': Flags.string({summary: 'Seconds to wait for the next hop.', default: '10'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(RelayCommand)
    const listen = parseHostPort(f.listen, '--listen')
    const name = f.name ?? (await this.ask('name', 'This relay\'s name in RELAY paths:', (v) => { if (!v) throw new Error('a name is required') }))
    let rules
    try {
      rules = (f['allow-next'] ?? []).map(parseHopRule)
    } catch (e) {
      if (e instanceof HopRuleError) throw new UsageError(`--allow-next: ${e.message}`)
      throw e
    }
    const groups = (f.group ?? []).map((spec) => {
      const eq = spec.indexOf('=')
      if (eq <= 0) throw new UsageError(`--group: "${spec}" is not NAME=host:port,host:port`)
      const members = spec.slice(eq + 1).split(',').filter(Boolean).map((m) => parseHostPort(m.trim(), '--group'))
      if (!members.length) throw new UsageError(`--group: group "${spec.slice(0, eq)}" has no members`)
      return new GateGroup(spec.slice(0, eq), members, f.balance)
    })
    if (!rules.length && !groups.length) this.logger.log('warn', 'no --allow-next rules and no --group: every tunnel will be refused (a relay is not an open proxy)')
    const relay = new Relay({
      host: listen.host, port: listen.port, name, allowNext: rules, maxHops: f['max-hops'], groups,
      healthInterval: parseSeconds(f['health-interval'], '--health-interval'),
      handshakeTimeout: parseSeconds(f['handshake-timeout'], '--handshake-timeout'),
      connectTimeout: parseSeconds(f['connect-timeout'], '--connect-timeout'),
      log: this.logger, tracer: this.tracer,
    })
    const bound = await this.listenOn('--listen', () => relay.listen())
    const where = hostPort(bound.address, bound.port)
    this.logger.log('info', `relay "${name}" listening on ${where}; next hops: ${rules.map((r) => r.text).join(', ') || 'none'}`)
    this.logger.event('listening', {address: where, port: bound.port, name})
    const sig = await this.waitForSignal()
    await relay.close()
    this.logger.event('stopped', {signal: sig, spliced: relay.spliced})
  }
}
