import {Flags} from '@oclif/core'
import {TunkitCommand} from '../cli/base.js'
import {parseHostPort, UsageError} from '../cli/parse.js'
import * as F from '../cli/flags.js'
import {HopRuleError, parseHopRule, type HopRule} from '../tunnel/core/next-hop.js'
import {hostPort} from '../lib/io/connect.js'
import {Relay, RELAY_DEFAULTS as D} from '../tunnel/io/relay.js'
import {serveMetrics} from '../lib/io/metrics.js'

export default class RelayCommand extends TunkitCommand {
  static override summary = 'Forward tunnels hop by hop without seeing their contents (a bastion between portals and gates).'
  static override description = `A relay between portals and gates. Each tunnel names its path (portal --via); the relay finds its own --name in it, connects the next hop and then passes bytes both ways. TLS runs end to end between portal and gate, so the relay never sees the traffic.

It is not an open proxy: it forwards only to next hops that --allow-next rules allow (or to a --group of gates), and tells the portal why when it refuses.

SIGHUP re-reads --allow-next from the --config file for the tunnels that come next; tunnels already forwarded stay up (docs/deploy.md).`
  // --name is required (asked for on a terminal, so not an oclif `required` flag): the usage says so.
  static override usage = '<%= command.id %> --name NAME [-l HOST:PORT] [--allow-next RULE...] [--group NAME=HOST:PORT,...] [FLAGS]'
  static override examples = [
    '<%= config.bin %> relay --listen 0.0.0.0:4500 --name relay-b.example --allow-next relay-c.example:4500',
    '<%= config.bin %> relay --listen 127.0.0.1:4500 --name 127.0.0.1:4500 --allow-next 198.18.0.0/15',
    '<%= config.bin %> relay --listen 0.0.0.0:4500 --name relay-c.example --group gates=gate1.example:4433,gate2.example:4433',
  ]

  static override flags = {
    listen: F.hostPort({char: 'l', summary: 'Address and port to accept tunnels on.', ...F.hostPortDefault(D.host, D.port)}),
    name: Flags.string({
      summary: 'Required: this relay\'s name, as portals name it in --via (a host name, or host:port); asked for on a terminal.',
      description: 'A --via hop names this relay when it is this text, or an address the name or --listen resolves to, with the port the relay listens on (127.0.0.1:4500 for --name localhost). Names in a path are never looked up.',
    }),
    'allow-next': Flags.string({summary: 'Next hop we may forward to: CIDR, address or host name, optionally :port.', multiple: true}),
    group: Flags.string({summary: 'A group of gates, NAME=host:port,host:port; portals ask for "group:NAME".', multiple: true}),
    balance: Flags.option({options: ['least-connections', 'round-robin'] as const, default: D.balance, summary: 'How a group member is chosen.'})(),
    'health-interval': F.duration({summary: 'Time between health checks of group members (seconds, or 500ms, 30s, 5m; 0 = off).', default: D.healthInterval}),
    'max-hops': Flags.integer({summary: 'Longest path (number of relays) accepted.', default: D.maxHops, min: 1, max: 8}),
    'handshake-timeout': F.duration({summary: 'Time for a client to send its path and for the next hop to connect.', default: D.handshakeTimeout}),
    'connect-timeout': F.duration({summary: 'Time to wait for the next hop.', default: D.connectTimeout}),
    metrics: F.localHostPort({summary: 'Serve Prometheus metrics on http://[HOST:]PORT/metrics (host 127.0.0.1 when left out).'}),
  }

  async run(): Promise<void> {
    const {flags: f} = await this.parse(RelayCommand)
    const name = f.name ?? (await this.ask('name', 'This relay\'s name (as portals name it in --via):', (v) => { if (!v) throw new Error('a name is required') }))
    const rules = hopRules(f['allow-next'])
    const groups = (f.group ?? []).map((spec) => {
      const eq = spec.indexOf('=')
      if (eq <= 0) throw new UsageError(`--group: "${spec}" is not NAME=host:port,host:port`)
      const members = spec.slice(eq + 1).split(',').filter(Boolean).map((m) => parseHostPort(m.trim(), '--group'))
      if (!members.length) throw new UsageError(`--group: group "${spec.slice(0, eq)}" has no members`)
      return {name: spec.slice(0, eq), members}
    })
    if (!rules.length && !groups.length) this.logger.log('warn', 'no --allow-next rules and no --group: every tunnel will be refused (a relay is not an open proxy)')
    const relay = new Relay({
      host: f.listen.host, port: f.listen.port, name, allowNext: rules, maxHops: f['max-hops'], groups, balance: f.balance,
      healthInterval: f['health-interval'],
      handshakeTimeout: f['handshake-timeout'],
      connectTimeout: f['connect-timeout'],
      log: this.logger, tracer: this.tracer,
    })
    const bound = await this.listenOn('--listen', () => relay.listen())
    const where = hostPort(bound.address, bound.port)
    const metrics = f.metrics && await this.listenOn('--metrics', () => serveMetrics(relay, 'relay', f.metrics!.host, f.metrics!.port, this.logger))
    this.logger.log('info', `relay "${name}" listening on ${where}; next hops: ${rules.map((r) => r.text).join(', ') || 'none'}`)
    if (metrics) this.logger.log('info', `metrics on http://${hostPort(metrics.address, metrics.port)}/metrics`)
    this.logger.event('listening', {address: where, port: bound.port, name, ...(metrics ? {metrics: hostPort(metrics.address, metrics.port)} : {})})
    const noHangup = this.onHangup(RelayCommand, f, ['allow-next', 'config'], (g) => relay.reload(hopRules(g['allow-next'])))
    const sig = await this.waitForSignal()
    noHangup()
    await metrics?.close()
    await relay.close()
    this.logger.event('stopped', {signal: sig, spliced: relay.spliced})
  }
}

function hopRules(texts: string[] = []): HopRule[] {
  try {
    return texts.map(parseHopRule)
  } catch (e) {
    if (e instanceof HopRuleError) throw new UsageError(`--allow-next: ${e.message}`)
    throw e
  }
}
