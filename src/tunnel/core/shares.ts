/**
 * Quota shared by gate workers (`gate --workers N`, issue 12 item 5). Each worker process runs its
 * own gate engine, but a per-identity limit (tunnels, sessions) and the gate's tunnel limit hold
 * for the whole gate. The primary keeps a ShareLedger: a worker leases units of a pool for a key
 * (an identity, or '' for a gate-wide pool) before using them and gives them back after. A worker
 * keeps a ShareWallet: what it leased, what it uses, and what to give back.
 *
 * Sans-I/O: the caller carries the asks, grants and give-backs over IPC. Every input of the ledger
 * comes from another process and is treated as hostile: malformed asks throw ShareError (the
 * caller drops and logs them), over-asks are clamped, over-returns are clamped, and a worker that
 * dies has its leases reclaimed (drop).
 */

/** A lease is asked for at most this many units at once, whatever the worker says. */
export const MAX_ASK = 64
/** Identities are certificate CNs (at most 64 characters by X.520); longer is not a key. */
export const MAX_KEY_LENGTH = 256
/** Distinct keys with leases out, all pools together: bounds the primary's memory. */
export const MAX_KEYS = 65536
/** What a worker asks for when it has no spare unit (one used now, the rest kept for the next). */
export const BLOCK = 16

export class ShareError extends Error {
  override name = 'ShareError'
}

export interface Grant {
  /** Units granted, 0..asked. */
  granted: number
  /** Fewer than asked, or the pool is near its cap: the worker should keep no spare units. */
  tight: boolean
}

/** pool → cap (units of one key at most, all workers together). */
export type Caps = Readonly<Record<string, number>>

export class ShareLedger {
  /** `${pool}\n${key}` → worker → units held. */
  private readonly held = new Map<string, Map<number, number>>()
  private readonly totals = new Map<string, number>()

  /** workers: how many share the pools (a fair share near the cap is left / workers). */
  constructor(readonly caps: Caps, private workers: number) {
    for (const [pool, cap] of Object.entries(caps)) if (!(Number.isInteger(cap) && cap >= 0)) throw new RangeError(`cap of ${pool}: ${cap}`)
    if (!(Number.isInteger(workers) && workers >= 1)) throw new RangeError(`workers: ${workers}`)
  }

  /**
   * A worker asks for n units of pool for key: it gets up to what is left, and near the cap no
   * more than its fair share of what is left (at least 1), so one worker's prefetch cannot starve
   * another of the last units. n above MAX_ASK is read as MAX_ASK.
   */
  ask(worker: number, pool: string, key: string, n: number): Grant {
    const k = this.slot(worker, pool, key)
    if (!Number.isInteger(n) || n < 1) throw new ShareError(`ask for ${String(n)} units: not a positive integer`)
    const asked = Math.min(n, MAX_ASK)
    const used = this.totals.get(k) ?? 0
    const left = this.caps[pool] - used
    if (left <= 0) return {granted: 0, tight: true}
    if (!this.held.has(k) && this.held.size >= MAX_KEYS) return {granted: 0, tight: true}
    const granted = Math.min(asked, left, Math.max(1, Math.floor(left / this.workers)))
    let by = this.held.get(k)
    if (!by) this.held.set(k, (by = new Map()))
    by.set(worker, (by.get(worker) ?? 0) + granted)
    this.totals.set(k, used + granted)
    // Tight: short of the ask, or less than a block per worker left after it.
    return {granted, tight: granted < n || left - granted < this.workers * BLOCK}
  }

  /** A worker gives n units back; more than it holds is clamped. Returns what it really gave back. */
  giveBack(worker: number, pool: string, key: string, n: number): number {
    const k = this.slot(worker, pool, key)
    if (!Number.isInteger(n) || n < 1) throw new ShareError(`give back ${String(n)} units: not a positive integer`)
    const by = this.held.get(k)
    const had = by?.get(worker) ?? 0
    const back = Math.min(n, had)
    if (back === 0) return 0
    this.take(k, by!, worker, had, back)
    return back
  }

  /** A worker is gone: every unit it held is free again. Returns how many. */
  drop(worker: number): number {
    let n = 0
    for (const [k, by] of [...this.held]) {
      const had = by.get(worker)
      if (!had) continue
      this.take(k, by, worker, had, had)
      n += had
    }
    return n
  }

  /** Units of pool for key leased out, all workers together. */
  used(pool: string, key: string): number {
    return this.totals.get(`${pool}\n${key}`) ?? 0
  }

  /** Units one worker holds of pool for key. */
  heldBy(worker: number, pool: string, key: string): number {
    return this.held.get(`${pool}\n${key}`)?.get(worker) ?? 0
  }

  /** Workers holding units of pool for key, other than `but` (a recall goes to them). */
  holders(pool: string, key: string, but: number): number[] {
    return [...(this.held.get(`${pool}\n${key}`)?.keys() ?? [])].filter((w) => w !== but)
  }

  /** Keys with leases out (for tests and the bound). */
  get keys(): number {
    return this.held.size
  }

  private take(k: string, by: Map<number, number>, worker: number, had: number, n: number): void {
    if (had === n) by.delete(worker)
    else by.set(worker, had - n)
    if (by.size === 0) this.held.delete(k)
    const t = (this.totals.get(k) ?? 0) - n
    if (t > 0) this.totals.set(k, t)
    else this.totals.delete(k)
  }

  private slot(worker: number, pool: string, key: string): string {
    if (!Number.isInteger(worker) || worker < 0) throw new ShareError(`worker ${String(worker)}`)
    if (typeof pool !== 'string' || !Object.hasOwn(this.caps, pool)) throw new ShareError(`unknown pool ${JSON.stringify(String(pool)).slice(0, 40)}`)
    if (typeof key !== 'string' || key.length > MAX_KEY_LENGTH) throw new ShareError(`key is not a string of at most ${MAX_KEY_LENGTH} characters`)
    return `${pool}\n${key}`
  }
}

/** One key's account in a worker: units leased from the primary, and units in use. */
interface Purse {
  held: number
  used: number
  /** The last grant was short: keep no spare units (others may need them). */
  tight: boolean
}

/**
 * A worker's side: take() uses a spare leased unit when there is one (no round trip); otherwise
 * the caller asks the primary for want() units and adds the grant. release() says how many units
 * to give back: all spare ones when the pool is tight, those beyond one BLOCK otherwise, and all
 * once the key is idle (a quiet worker holds nothing).
 */
export class ShareWallet {
  private readonly purses = new Map<string, Purse>()

  constructor(readonly block = BLOCK) {}

  /** One unit from the spare ones, or false: ask for want() units first. */
  take(pool: string, key: string): boolean {
    const p = this.purses.get(`${pool}\n${key}`)
    if (!p || p.used >= p.held) return false
    p.used++
    return true
  }

  /** How many to ask for: one block, or a single unit while the pool is tight. */
  want(pool: string, key: string): number {
    return this.purses.get(`${pool}\n${key}`)?.tight ? 1 : this.block
  }

  /** A grant arrived: its units are held (and taken by take()). */
  add(pool: string, key: string, g: Grant): void {
    if (g.granted <= 0 && !this.purses.has(`${pool}\n${key}`)) return
    const k = `${pool}\n${key}`
    let p = this.purses.get(k)
    if (!p) this.purses.set(k, (p = {held: 0, used: 0, tight: false}))
    p.held += g.granted
    p.tight = g.tight
  }

  /** Units beyond what is kept (a grant that came too late for its open): give them back. */
  spare(pool: string, key: string): number {
    const k = `${pool}\n${key}`
    const p = this.purses.get(k)
    return p ? this.trim(k, p) : 0
  }

  /** One unit no longer used. Returns how many units to give back to the primary now. */
  release(pool: string, key: string): number {
    const k = `${pool}\n${key}`
    const p = this.purses.get(k)
    if (!p || p.used === 0) return 0
    p.used--
    return this.trim(k, p)
  }

  /** The primary asks for spare units back (another worker ran short). Returns how many to give. */
  recall(pool: string, key: string): number {
    const k = `${pool}\n${key}`
    const p = this.purses.get(k)
    if (!p) return 0
    p.tight = true
    return this.trim(k, p)
  }

  held(pool: string, key: string): number {
    return this.purses.get(`${pool}\n${key}`)?.held ?? 0
  }

  used(pool: string, key: string): number {
    return this.purses.get(`${pool}\n${key}`)?.used ?? 0
  }

  private trim(k: string, p: Purse): number {
    const keep = p.used === 0 || p.tight ? 0 : this.block
    const spare = p.held - p.used
    const back = Math.max(0, spare - keep)
    p.held -= back
    if (p.held === 0) this.purses.delete(k)
    return back
  }
}
