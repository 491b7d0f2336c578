/**
 * What gate and relay count for `--metrics` (docs/deploy.md). The engines keep plain numbers here
 * and know nothing of Prometheus; lib/io/metrics.ts reads a snapshot at each scrape. Labels come
 * from small fixed sets (error codes, limit names), never from a peer's address or identity, so
 * a client cannot grow the endpoint's output.
 */
export class Tally {
  private readonly counts = new Map<string, number>()

  add(label: string, n = 1): void {
    this.counts.set(label, (this.counts.get(label) ?? 0) + n)
  }

  get(label: string): number {
    return this.counts.get(label) ?? 0
  }

  entries(): IterableIterator<[string, number]> {
    return this.counts.entries()
  }
}

/** One engine's figures at one moment. Counters only ever grow; a relay has no sessions or opens. */
export interface EngineCounts {
  /** Authenticated tunnels (gate), or tunnels being forwarded (relay). */
  tunnels: number
  /** Connections still in their handshake (RELAY, TLS, REQUEST). */
  preauth: number
  sessions?: number
  /** Tunnel bytes (TLS records included) portal → gate and gate → portal; as docs/events.md's bytesOut/bytesBack. */
  bytes: {out: number; back: number}
  /** Opens refused or failed, by error code (TK_DENIED, TK_RESOURCE_LIMIT, TK_CONNECT_REFUSED…). */
  opensRefused?: Tally
  /** Connections that did not become a tunnel, by error code (TK_TLS_CERT_EXPIRED, TK_TIMEOUT…). */
  handshakeFailures: Tally
  /** Refusals by the limit that made them (max-startups, max-tunnels-per-identity, open-rate…). */
  limitHits: Tally
  /** gate --workers: each worker (labels are indexes, at most --workers of them). */
  workers?: WorkerCounts[]
}

export interface WorkerCounts {
  worker: string
  tunnels: number
  /** Connections the primary handed to it (all its lives). */
  connections: number
  restarts: number
  up: boolean
}

export interface Counted {
  counts(): EngineCounts
  /** Fetch fresh figures before counts() (gate --workers: from the worker processes). */
  refresh?(): Promise<void>
}
