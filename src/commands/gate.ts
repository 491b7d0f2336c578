import {Flags, Interfaces} from '@oclif/core'
import {TunkitCommand} from '../cli/base.js'
import {UsageError} from '../cli/parse.js'
import * as F from '../cli/flags.js'
import {crlFlag, tlsFlags, tlsFromFlags} from '../cli/tls-flags.js'
import {parseListenRule, parseRule, Policy, PolicyError, type Rule} from '../tunnel/core/policy.js'
import {parseStartups} from '../tunnel/core/startups.js'
import {hostPort} from '../lib/io/connect.js'
import {filesRead, readConfigFile} from '../lib/io/config-files.js'
import {Gate, GATE_DEFAULTS as D} from '../tunnel/io/gate.js'
import type {DataPath} from '../tunnel/io/native-path.js'
import {GateVpn} from '../vpn/io/gate-vpn.js'
import {serveMetrics} from '../lib/io/metrics.js'
import {autoWorkers, GatePrimary, MAX_WORKERS, receiveFiles, WORKER_ENV, WorkerChannel} from '../tunnel/io/gate-workers.js'
import type {Logger} from '../lib/log.js'

const MiB = 1024 * 1024

export default class GateCommand extends TunkitCommand {
  static override summary = 'Accept authenticated tunnels from portals and open connections behind this host.'
  // One line per paragraph: help and man pages wrap them to the reader's width.
  static override description = `The server end of a tunnel. Portals connect over TCP and both sides authenticate with TLS 1.3 certificates; a client's identity is the common name (CN) of its certificate.

With no --allow rules, every authenticated client may open connections to anything this host can reach; with rules, only to what they allow. A refused open is logged, and the portal is told why.

Remote forwards (portal -R) listen where --allow-listen rules allow. Without any, they listen on loopback only, on ports 1024-65535, and a request for 0.0.0.0 or [::] binds 127.0.0.1 or [::1] instead. In a --policy file, lines "listen IDENTITY=ADDRESS[:PORTS]" are listen rules.

A client that has not authenticated yet holds one of the --max-startups slots (at most --max-startups-per-source from one address) for at most --handshake-timeout; --max-tunnels counts authenticated tunnels only.

With more than one worker (the default on a host with more than one CPU: --workers auto, one per CPU), this process accepts the connections, screens them by source (--max-startups) and hands each to a worker process, which runs its tunnels; the first worker starts at once and the others once a second portal's tunnel is up. Limits per identity and --max-tunnels hold across all workers, --metrics adds up their figures, and a worker that dies is restarted (its tunnels end). --vpn runs in one process: it takes --workers 1, and is the default's exception.

SIGHUP re-reads the --policy file, --allow and --allow-listen from the --config file, and the certificate, key, CA and --crl: established tunnels stay up, except those of a certificate now revoked; a reload that fails keeps the running configuration (docs/deploy.md).`
  static override examples = [
    '<%= config.bin %> gate --listen 127.0.0.1:4433',
    "<%= config.bin %> gate --listen 0.0.0.0:4433 --allow 'alice=198.18.0.0/15:22,443' --allow '*=intranet.example:80'",
    "<%= config.bin %> gate --listen 0.0.0.0:4433 --allow-listen 'alice=0.0.0.0:8000-8099' --allow-listen '*=127.0.0.1:1024-65535'",
  ]

  static override flags = {
    ...tlsFlags,
    ...crlFlag,
    metrics: F.localHostPort({summary: 'Serve Prometheus metrics on http://[HOST:]PORT/metrics (host 127.0.0.1 when left out).'}),
    listen: F.hostPort({char: 'l', summary: 'Address and port to accept tunnels on.', ...F.hostPortDefault(D.host, D.port)}),
    name: Flags.string({summary: 'This gate\'s name: a tunnel addressed to another name is refused (default: accept any).'}),
    allow: Flags.string({summary: "Access rule IDENTITY=TARGET[:PORTS], e.g. 'alice=198.18.0.0/15:22'.", multiple: true}),
    'allow-listen': Flags.string({summary: "Where a portal's -R may listen: IDENTITY=ADDRESS[:PORTS], ADDRESS an address, CIDR or *, e.g. 'alice=0.0.0.0:8080'.", multiple: true}),
    policy: Flags.string({summary: 'File of access rules, one per line (# comments; "listen IDENTITY=…" for listen rules).', helpValue: '<file>'}),
    'max-sessions': Flags.integer({summary: 'Sessions allowed on one tunnel.', default: D.maxSessions, min: 1, max: 32767}),
    'max-tunnels': Flags.integer({summary: 'Authenticated tunnels allowed at once.', default: D.maxTunnels, min: 1}),
    'max-startups': Flags.string({
      summary: 'Unauthenticated connections: START:RATE:FULL, from START on drop RATE% rising to 100% at FULL (as sshd).',
      default: D.maxStartups,
      parse: async (s) => {
        parseStartups(s)
        return s
      },
    }),
    'max-startups-per-source': Flags.integer({summary: 'Unauthenticated connections from one address (an IPv6 /64) at once.', default: D.maxStartupsPerSource, min: 1}),
    'handshake-timeout': F.duration({summary: 'Time a client has to connect, authenticate and ask for its tunnel (seconds, or 500ms, 30s, 5m).', default: D.handshakeTimeout}),
    'idle-timeout': F.duration({summary: 'Close a tunnel with no sessions after this long (0 = never).', default: D.idleTimeout}),
    'connect-timeout': F.duration({summary: 'Time to wait for an outbound connection.', default: D.connectTimeout}),
    'resolve-timeout': F.duration({summary: 'Time to wait for a host name to resolve.', default: D.resolveTimeout}),
    'max-lookups': Flags.integer({summary: 'Name lookups one identity may have running at once.', default: D.maxLookups, min: 1, max: 64}),
    keepalive: F.duration({summary: 'Time between keepalive pings (0 = off).', default: D.keepalive}),
    'dead-after': F.duration({summary: 'Silence after which a tunnel is dropped.', default: D.deadAfter}),
    'udp-idle': F.duration({summary: 'Silence after which a UDP session ends.', default: D.udpIdle}),
    'key-lifetime': F.duration({summary: 'How long a tunnel\'s keys live; portals reconnect before then (0 = forever).', default: D.keyLifetime}),
    'max-tunnels-per-identity': Flags.integer({summary: 'Tunnels one client identity may have at once.', default: D.maxTunnelsPerIdentity, min: 1, helpGroup: 'LIMITS'}),
    'max-sessions-per-identity': Flags.integer({summary: 'Sessions one identity may have over all its tunnels.', default: D.maxSessionsPerIdentity, min: 1, helpGroup: 'LIMITS'}),
    'max-pending-per-tunnel': Flags.integer({summary: 'Opens of one tunnel still resolving or connecting.', default: D.maxPendingPerTunnel, min: 1, helpGroup: 'LIMITS'}),
    'max-pending-per-identity': Flags.integer({summary: 'Opens of one identity still resolving or connecting.', default: D.maxPendingPerIdentity, min: 1, helpGroup: 'LIMITS'}),
    'early-data-per-tunnel': Flags.integer({summary: 'MiB of early data held for one tunnel\'s pending opens.', default: D.earlyDataPerTunnel / MiB, min: 1, helpGroup: 'LIMITS'}),
    'early-data-per-identity': Flags.integer({summary: 'MiB of early data held for one identity\'s pending opens.', default: D.earlyDataPerIdentity / MiB, min: 1, helpGroup: 'LIMITS'}),
    'fd-reserve': Flags.integer({summary: 'Descriptors kept for new tunnels: opens never take them (at most a quarter of the limit).', default: D.fdReserve, min: 0, helpGroup: 'LIMITS'}),
    'fd-share': Flags.integer({summary: 'Percent of the descriptors the other identities leave that one identity may hold.', default: D.fdShare, min: 1, max: 100, helpGroup: 'LIMITS'}),
    'open-rate': Flags.integer({summary: 'Opens per second allowed on one tunnel (0 = no limit); more are refused.', default: D.openRate, min: 0, helpGroup: 'LIMITS'}),
    'open-burst': Flags.integer({summary: 'Opens one tunnel may make at once before --open-rate applies.', default: D.openBurst, min: 1, helpGroup: 'LIMITS'}),
    workers: F.workers(MAX_WORKERS)({helpValue: '<n|auto>', summary: `Worker processes that run the tunnels, 1 to ${MAX_WORKERS}, or auto (one per CPU); with more than one, this process accepts and hands connections over.`, defaultHelp: async () => 'auto (1 with --vpn)'}),
    'data-path': Flags.string({
      summary: 'Transport of the established tunnel: tls (Node\'s TLS) or native (AES-256-GCM records in the addon, if the peer agrees; a prototype).',
      options: ['tls', 'native'], default: 'tls',
      description: 'native is used only when both portal and gate say --data-path native; without the native addon it falls back to tls with a warning. See docs/protocol.md, "Native data path", and BENCHMARKS.md.',
    }),
    vpn: Flags.boolean({summary: 'Offer VPN mode: IP packets between portals\' pseudo adapters and this host (needs root).', helpGroup: 'VPN'}),
    pool: F.ipv4Cidr({summary: 'Address pool for VPN clients (IPv4 CIDR); the first address is the gate\'s own.', helpGroup: 'VPN'}),
    route: F.cidr({summary: 'Network the portals should route through the gate.', multiple: true, helpGroup: 'VPN'}),
    dns: Flags.string({summary: 'DNS server to hand to portals.', multiple: true, helpGroup: 'VPN'}),
    dev: Flags.string({summary: 'Name of the gate\'s TUN device.', default: 'tunkit-gate', helpGroup: 'VPN'}),
    offload: Flags.boolean({summary: 'With --vpn: the TUN device hands over and takes TCP super-packets of up to 64 KiB and leaves checksums to finish; --no-offload: one packet at a time.', default: true, allowNo: true, helpGroup: 'VPN'}),
  }

  async run(): Promise<void> {
    const worker = process.env[WORKER_ENV]
    // A worker loads the files its primary loaded, whatever they hold on disk by now.
    if (worker !== undefined) await receiveFiles()
    const {flags: f} = await this.parse(GateCommand)
    const policy = this.policy(f.allow ?? [], f['allow-listen'] ?? [], f.policy)
    // One TUN device and one address pool cannot be split between processes.
    if (f.vpn && (f.workers ?? 1) > 1) throw new UsageError(`--vpn: VPN mode runs in a single process; use --workers 1 (not ${f.workers})`)
    const workers = f.workers ?? (f.vpn ? 1 : autoWorkers())
    if (worker === undefined && workers > 1) return this.primary(f, workers, f.workers === undefined, policy)
    const channel = worker === undefined ? undefined : new WorkerChannel(this.logger)
    if (channel) {
      if (f.vpn) throw new UsageError('--vpn: VPN mode runs in a single process; use --workers 1')
      this.logger = workerLogger(this.logger, Number(worker))
      // The primary says "stopped" for the whole gate.
      this.stopLevel = 'debug'
    }
    let vpn: GateVpn | undefined
    if (f.vpn) {
      if (!f.pool) throw new UsageError('--pool: VPN mode needs an address pool (CIDR)')
      try {
        vpn = GateVpn.open(f.pool, f.route ?? [], f.dns ?? [], f.dev, this.logger, f.offload)
      } catch (e) {
        throw new Error(`cannot set up the VPN device: ${(e as Error).message}`)
      }
    }
    const gate = new Gate({
      vpn,
      host: f.listen.host,
      port: f.listen.port,
      tls: tlsFromFlags('gate', f, this.logger),
      name: f.name,
      policy,
      maxSessions: f['max-sessions'],
      maxTunnels: f['max-tunnels'],
      maxStartups: f['max-startups'],
      maxStartupsPerSource: f['max-startups-per-source'],
      resolveTimeout: f['resolve-timeout'],
      maxLookups: f['max-lookups'],
      handshakeTimeout: f['handshake-timeout'],
      idleTimeout: f['idle-timeout'],
      connectTimeout: f['connect-timeout'],
      keepalive: f.keepalive,
      dataPath: f['data-path'] as DataPath,
      deadAfter: f['dead-after'],
      udpIdle: f['udp-idle'],
      keyLifetime: f['key-lifetime'],
      maxTunnelsPerIdentity: f['max-tunnels-per-identity'],
      maxSessionsPerIdentity: f['max-sessions-per-identity'],
      maxPendingPerTunnel: f['max-pending-per-tunnel'],
      maxPendingPerIdentity: f['max-pending-per-identity'],
      earlyDataPerTunnel: f['early-data-per-tunnel'] * MiB,
      earlyDataPerIdentity: f['early-data-per-identity'] * MiB,
      fdReserve: f['fd-reserve'],
      fdShare: f['fd-share'],
      openRate: f['open-rate'],
      openBurst: f['open-burst'],
      log: this.logger,
      tracer: this.tracer,
      quota: channel,
    })
    if (channel) return this.serveWorker(GateCommand, gate, channel)
    const bound = await this.listenOn('--listen', () => gate.listen())
    const where = hostPort(bound.address, bound.port)
    const metrics = f.metrics && await this.listenOn('--metrics', () => serveMetrics(gate, 'gate', f.metrics!.host, f.metrics!.port, this.logger))
    this.logger.log('info', `gate listening on ${where}${policy.open ? ' (no access rules: every authenticated client may open anything)' : ` with ${policy.rules.length} access rule(s)`}` +
      (policy.listenRules.length ? `, ${policy.listenRules.length} listen rule(s)` : '; remote forwards on loopback only'))
    if (metrics) this.logger.log('info', `metrics on http://${hostPort(metrics.address, metrics.port)}/metrics`)
    this.logger.event('listening', {address: where, port: bound.port, ...(metrics ? {metrics: hostPort(metrics.address, metrics.port)} : {})})
    const reloadable = ['allow', 'allow-listen', 'policy', 'cert', 'key', 'ca', 'crl', 'pki-dir', 'config']
    const noHangup = this.onHangup(GateCommand, f, reloadable, (g) => gate.reload({policy: this.policy(g.allow ?? [], g['allow-listen'] ?? [], g.policy), tls: tlsFromFlags('gate', g)}))
    const sig = await this.waitForSignal()
    noHangup()
    await metrics?.close()
    this.logger.log('info', `${sig}: closing ${gate.tunnels} tunnel(s)`)
    await gate.close()
    vpn?.close()
    this.logger.event('stopped', {signal: sig})
  }

  /**
   * gate --workers N: this process listens and hands connections to N workers (io/gate-workers.ts),
   * each this command again with the same arguments and WORKER_ENV set.
   */
  private async primary(f: GateFlags, workers: number, lazy: boolean, policy: Policy): Promise<void> {
    // Certificates and keys that cannot work fail here, once, before any worker starts.
    tlsFromFlags('gate', f, this.logger)
    const primary = new GatePrimary({
      host: f.listen.host, port: f.listen.port, workers, lazy, log: this.logger, files: filesRead(),
      startups: {...parseStartups(f['max-startups']), perSource: f['max-startups-per-source']},
      caps: {tunnels: f['max-tunnels-per-identity'], sessions: f['max-sessions-per-identity'], gate: f['max-tunnels']},
      script: process.argv[1], args: process.argv.slice(2),
    })
    const bound = await this.listenOn('--listen', () => primary.start())
    const where = hostPort(bound.address, bound.port)
    let metrics
    try {
      metrics = f.metrics && await this.listenOn('--metrics', () => serveMetrics(primary, 'gate', f.metrics!.host, f.metrics!.port, this.logger))
    } catch (e) {
      // The workers are running already: they must not outlive a failed start.
      await primary.close()
      throw e
    }
    this.logger.log('info', `gate listening on ${where} with ${workers} workers${lazy ? ' (one now, the others once a second tunnel is up)' : ''} (pids ${primary.pids.join(', ')})${policy.open ? ' (no access rules: every authenticated client may open anything)' : ` with ${policy.rules.length} access rule(s)`}` +
      (policy.listenRules.length ? `, ${policy.listenRules.length} listen rule(s)` : '; remote forwards on loopback only'))
    if (metrics) this.logger.log('info', `metrics on http://${hostPort(metrics.address, metrics.port)}/metrics`)
    this.logger.event('listening', {address: where, port: bound.port, workers: primary.pids, ...(metrics ? {metrics: hostPort(metrics.address, metrics.port)} : {})})
    const reloadable = ['allow', 'allow-listen', 'policy', 'cert', 'key', 'ca', 'crl', 'pki-dir', 'config']
    // Checked here first: a configuration that cannot load is not sent to the workers.
    const noHangup = this.onHangup(GateCommand, f, reloadable, (g) => {
      this.policy(g.allow ?? [], g['allow-listen'] ?? [], g.policy)
      tlsFromFlags('gate', g)
      return primary.reload(filesRead())
    })
    const sig = await this.waitForSignal()
    noHangup()
    await metrics?.close()
    this.logger.log('info', `${sig}: stopping ${primary.pids.length} workers and their ${primary.tunnels} tunnel(s)`)
    await primary.close()
    this.logger.event('stopped', {signal: sig})
  }

  /** A worker: connections come from the primary; it ends on a signal or when the primary is gone. */
  private async serveWorker(cmd: typeof GateCommand, gate: Gate, channel: WorkerChannel): Promise<void> {
    gate.serve()
    // The primary gone (even killed outright): stop as on SIGTERM, through the one signal path.
    const orphaned = (): void => void process.kill(process.pid, 'SIGTERM')
    process.once('disconnect', orphaned)
    // Reloads come from the primary, which logs the one `reloaded` line for the whole gate; a
    // SIGHUP sent to a worker itself must not end it (the signal's default).
    const hangup = (): void => this.logger.log('warn', 'SIGHUP ignored: a gate worker reloads when its primary does (send SIGHUP to the primary)')
    process.on('SIGHUP', hangup)
    channel.onReload = async () => {
      const g = await this.reparse(cmd)
      return gate.reload({policy: this.policy(g.allow ?? [], g['allow-listen'] ?? [], g.policy), tls: tlsFromFlags('gate', g)})
    }
    channel.attach(gate)
    await this.waitForSignal()
    process.off('SIGHUP', hangup)
    // Without listeners the IPC channel no longer holds the process: it exits once the gate is
    // closed, well within the primary's grace (its exit handlers, such as the log's, run).
    process.off('disconnect', orphaned)
    channel.detach()
    await gate.close()
  }

  /** --allow and --allow-listen rules, then those of the --policy file. */
  private policy(allow: string[], allowListen: string[], file?: string): Policy {
    const lines = [...allow]
    const listenLines = [...allowListen]
    if (file) {
      let text: string
      try {
        text = readConfigFile(file)
      } catch (e) {
        throw new UsageError(`--policy: cannot read ${file}: ${(e as Error).message}`)
      }
      for (const l of text.split('\n').map((x) => x.replace(/#.*/, '').trim()).filter(Boolean)) {
        const m = l.match(/^listen\s+(.*)$/)
        if (m) listenLines.push(m[1])
        else lines.push(l)
      }
    }
    const parse = (flag: string, texts: string[], fn: (t: string) => Rule): Rule[] => {
      try {
        return texts.map(fn)
      } catch (e) {
        if (e instanceof PolicyError) throw new UsageError(`${flag}: ${e.message}`)
        throw e
      }
    }
    return new Policy(parse('--allow', lines, parseRule), parse('--allow-listen', listenLines, parseListenRule))
  }
}

type GateFlags = Interfaces.InferredFlags<typeof GateCommand.flags & typeof GateCommand.baseFlags>

/**
 * A worker's log lines and events carry its index (JSON lines and --json events). Text lines stay
 * as a one-process gate's: audit lines are parsed.
 */
function workerLogger(base: Logger, worker: number): Logger {
  return {
    log: (level, msg, fields) => base.log(level, msg, {...fields, worker}),
    event: (name, fields) => base.event(name, {...fields, worker}),
  }
}
