import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {Counter, Gauge, Registry} from 'prom-client'
import type {Logger} from '../log.js'
import type {Counted, EngineCounts, Tally, WorkerCounts} from '../metrics.js'
import {startListener, type Bound} from './listen.js'

/**
 * `--metrics`: the engine's counts (lib/metrics.ts) in Prometheus text format, on a small HTTP
 * server that is no new way in: GET /metrics only, a few connections at once, short timeouts,
 * small headers, one request per connection.
 */
const MAX_CONNECTIONS = 8
const TIMEOUT_MS = 5000
const MAX_HEADER_BYTES = 4096

/** One registry per engine (never prom-client's global one), read from a snapshot at each scrape. */
function engineRegistry(engine: Counted, role: 'gate' | 'relay'): {registry: Registry; scrape(): Promise<string>} {
  const registry = new Registry()
  registry.setDefaultLabels({role})
  let now: EngineCounts = engine.counts()
  const registers = [registry]
  const gauge = (name: string, help: string, read: (c: EngineCounts) => number | undefined): void => {
    if (read(now) === undefined) return
    new Gauge({name, help, registers, collect() { this.set(read(now) ?? 0) }})
  }
  const counter = (name: string, help: string, label: string, read: (c: EngineCounts) => Tally | undefined): void => {
    if (!read(now)) return
    new Counter({name, help, labelNames: [label], registers, collect() {
      // A snapshot holds running totals: set, not add.
      this.reset()
      for (const [value, n] of read(now)!.entries()) this.inc({[label]: value}, n)
    }})
  }
  gauge('tunkit_tunnels', 'Tunnels up (gate: authenticated; relay: being forwarded).', (c) => c.tunnels)
  gauge('tunkit_sessions', 'Sessions (connections and UDP flows) over all tunnels.', (c) => c.sessions)
  gauge('tunkit_preauth_connections', 'Connections still in their handshake (RELAY, TLS, REQUEST).', (c) => c.preauth)
  new Counter({name: 'tunkit_bytes_total', help: 'Tunnel bytes, TLS records included: out = portal to gate, back = gate to portal.', labelNames: ['direction'], registers, collect() {
    this.reset()
    this.inc({direction: 'out'}, now.bytes.out)
    this.inc({direction: 'back'}, now.bytes.back)
  }})
  counter('tunkit_opens_refused_total', 'Opens refused or failed, by error code.', 'reason', (c) => c.opensRefused)
  counter('tunkit_handshake_failures_total', 'Connections that did not become a tunnel, by error code.', 'reason', (c) => c.handshakeFailures)
  counter('tunkit_limit_hits_total', 'Refusals by a resource limit, by the flag that sets it.', 'limit', (c) => c.limitHits)
  if (now.workers) {
    const perWorker = (name: string, help: string, read: (w: WorkerCounts) => number, Kind: typeof Gauge | typeof Counter): void => {
      new Kind({name, help, labelNames: ['worker'], registers, collect() {
        this.reset()
        for (const w of now.workers ?? []) (this as Gauge).inc({worker: w.worker}, read(w))
      }})
    }
    perWorker('tunkit_worker_up', 'gate --workers: 1 while the worker runs.', (w) => (w.up ? 1 : 0), Gauge)
    perWorker('tunkit_worker_tunnels', 'gate --workers: tunnels up on each worker.', (w) => w.tunnels, Gauge)
    perWorker('tunkit_worker_connections_total', 'gate --workers: connections handed to each worker.', (w) => w.connections, Counter)
    perWorker('tunkit_worker_restarts_total', 'gate --workers: restarts of each worker.', (w) => w.restarts, Counter)
  }
  return {
    registry,
    scrape: async () => {
      await engine.refresh?.()
      now = engine.counts()
      return registry.metrics()
    },
  }
}

export interface MetricsServer extends Bound {
  close(): Promise<void>
}

export async function serveMetrics(engine: Counted, role: 'gate' | 'relay', host: string, port: number, log: Logger): Promise<MetricsServer> {
  const {registry, scrape} = engineRegistry(engine, role)
  const answer = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, {'Content-Type': 'text/plain; charset=utf-8', Connection: 'close', ...headers}).end(body)
  }
  const server: Server = createServer({requestTimeout: TIMEOUT_MS, headersTimeout: TIMEOUT_MS, maxHeaderSize: MAX_HEADER_BYTES, keepAliveTimeout: 0}, (req: IncomingMessage, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'only GET /metrics\n', {Allow: 'GET, HEAD'})
    if (path !== '/metrics') return answer(res, 404, 'only GET /metrics\n')
    scrape().then((text) => answer(res, 200, req.method === 'HEAD' ? '' : text, {'Content-Type': registry.contentType}), (e: Error) => {
      log.log('error', `metrics: ${e.message}`)
      answer(res, 500, 'error\n')
    })
  })
  server.maxConnections = MAX_CONNECTIONS
  server.maxRequestsPerSocket = 1
  // An idle or slow client is dropped: a scrape takes milliseconds.
  server.setTimeout(TIMEOUT_MS, (s) => s.destroy())
  const bound = await startListener(server, host, port, log)
  return {
    ...bound,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    }),
  }
}
