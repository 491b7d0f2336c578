/**
 * The gate's resource accounting (issue 9): what each identity and each tunnel holds (tunnels,
 * sessions, opens still connecting, early data, descriptors) and whether one more is allowed.
 * Sans-I/O: the gate reports what it opens and closes, and passes the time in.
 * A refusal is a sentence (the gate sends it as "limit: <sentence>"); null means allowed. Each
 * refusal is also counted in `hits` under the flag that sets the limit (for --metrics).
 */
import {Tally} from '../../lib/metrics.js'

export interface LimitConfig {
  maxTunnelsPerIdentity: number
  maxSessionsPerIdentity: number
  /** Opens still resolving or connecting; each holds a descriptor and a timer. */
  maxPendingPerTunnel: number
  maxPendingPerIdentity: number
  /** Early data held for pending sessions, in bytes (each session also stays within one window). */
  maxEarlyPerTunnel: number
  maxEarlyPerIdentity: number
  /** The process's descriptor soft limit, and the descriptors in use before any tunnel. */
  fdLimit: number
  fdBase: number
  /** Descriptors opens may never take: they keep accept() and new tunnels working. */
  fdReserve: number
  /** The fraction (0..1] of the descriptors not held by others that one identity may hold. */
  fdShare: number
}

class IdentityUse {
  tunnels = 0
  sessions = 0
  pending = 0
  early = 0

  get idle(): boolean {
    return this.tunnels === 0 && this.sessions === 0 && this.pending === 0 && this.early === 0
  }
}

export class GateLimits {
  private readonly ids = new Map<string, IdentityUse>()
  /** Descriptors held for connections (authenticated or not) and sessions. */
  private held = 0

  constructor(readonly c: LimitConfig, readonly hits = new Tally()) {}

  private hit(limit: string, why: string): string {
    this.hits.add(limit)
    return why
  }

  get descriptors(): number {
    return this.held
  }

  /** Descriptors left for tunnels and sessions once the process's own are counted. */
  get capacity(): number {
    return Math.max(0, this.c.fdLimit - this.c.fdBase)
  }

  /** The reserve, at most a quarter of the capacity so a low limit still leaves room for opens. */
  get reserve(): number {
    return Math.min(this.c.fdReserve, Math.floor(this.capacity / 4))
  }

  /** What one identity holds (tunnels, sessions, pending opens, early bytes), for logs and tests. */
  usage(identity: string): {tunnels: number; sessions: number; pending: number; early: number} {
    const u = this.ids.get(identity)
    return {tunnels: u?.tunnels ?? 0, sessions: u?.sessions ?? 0, pending: u?.pending ?? 0, early: u?.early ?? 0}
  }

  /** A connection arrives, its identity not yet known: it may use the reserve. */
  admitConnection(): string | null {
    if (this.held >= this.capacity) return this.hit('fd', `the gate holds ${this.held} descriptors, all it may (limit ${this.c.fdLimit})`)
    this.held++
    return null
  }

  connectionClosed(): void {
    this.held--
  }

  /** An admitted connection, now authenticated, becomes a tunnel of `identity`. */
  tunnel(identity: string): TunnelUse | string {
    const u = this.use(identity)
    if (u.tunnels >= this.c.maxTunnelsPerIdentity) {
      this.forget(identity, u)
      return this.hit('max-tunnels-per-identity', `${identity} already has ${u.tunnels} tunnels, the most one identity may have`)
    }
    u.tunnels++
    return new TunnelUse(this, this.c, identity, u)
  }

  /** @internal (TunnelUse) one more session holding a descriptor, or why not. */
  admitSession(t: TunnelUse, u: IdentityUse): string | null {
    const c = this.c
    if (t.pending >= c.maxPendingPerTunnel) return this.hit('max-pending-per-tunnel', `${t.pending} opens of this tunnel are still connecting, the most allowed`)
    if (u.pending >= c.maxPendingPerIdentity) return this.hit('max-pending-per-identity', `${u.pending} opens of ${t.identity} are still connecting, the most allowed`)
    if (u.sessions >= c.maxSessionsPerIdentity) return this.hit('max-sessions-per-identity', `${t.identity} has ${u.sessions} sessions, the most one identity may have`)
    const forOpens = this.capacity - this.reserve
    if (this.held >= forOpens) return this.hit('fd-reserve', `the gate's descriptors are in use (${this.held}; ${this.reserve} kept for new tunnels)`)
    // Never more than a share of what the others leave: every other identity keeps room to open.
    const mine = u.tunnels + u.sessions
    const allowed = Math.floor(c.fdShare * (forOpens - (this.held - mine)))
    if (mine >= allowed) return this.hit('fd-share', `${t.identity} holds ${mine} descriptors, its share of the gate's ${forOpens}`)
    this.held++
    u.sessions++
    u.pending++
    t.pending++
    return null
  }

  /** @internal */
  release(identity: string, u: IdentityUse, what: 'session' | 'tunnel'): void {
    if (what === 'session') {
      u.sessions--
      this.held--
    } else u.tunnels--
    this.forget(identity, u)
  }

  /** @internal */
  forget(identity: string, u: IdentityUse): void {
    if (u.idle) this.ids.delete(identity)
  }

  private use(identity: string): IdentityUse {
    let u = this.ids.get(identity)
    if (!u) this.ids.set(identity, (u = new IdentityUse()))
    return u
  }
}

/**
 * One tunnel's account. Each admitted open holds one descriptor from admitOpen() until
 * sessionClosed(), and counts as pending until dialed().
 */
export class TunnelUse {
  pending = 0
  early = 0
  private closed = false

  constructor(
    private readonly limits: GateLimits,
    private readonly c: LimitConfig,
    readonly identity: string,
    private readonly u: IdentityUse,
  ) {}

  admitOpen(): string | null {
    return this.limits.admitSession(this, this.u)
  }

  /** The open's resolve and connect are over (either way). */
  dialed(): void {
    this.pending--
    this.u.pending--
    this.limits.forget(this.identity, this.u)
  }

  sessionClosed(): void {
    this.limits.release(this.identity, this.u, 'session')
  }

  /** Hold n more bytes of early data, or false when this tunnel or identity holds its most. */
  takeEarly(n: number): boolean {
    if (this.early + n > this.c.maxEarlyPerTunnel || this.u.early + n > this.c.maxEarlyPerIdentity) {
      this.limits.hits.add('early-data')
      return false
    }
    this.early += n
    this.u.early += n
    return true
  }

  giveEarly(n: number): void {
    this.early -= n
    this.u.early -= n
    this.limits.forget(this.identity, this.u)
  }

  /** The tunnel is down (its sessions and dials report their own end). */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.limits.release(this.identity, this.u, 'tunnel')
  }
}

/** A token bucket: `rate` per second on average, `burst` at once; rate 0 means no limit. */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(private readonly rate: number, private readonly burst: number, now: number) {
    this.tokens = burst
    this.last = now
  }

  /** now: milliseconds on a monotonic clock. */
  take(now: number): boolean {
    if (this.rate <= 0) return true
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }
}
