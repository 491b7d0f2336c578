import {isIP} from '../../lib/net/ip.js'

/**
 * The gate's budget for connections that have not authenticated yet, as sshd's MaxStartups
 * start:rate:full and PerSourceMaxStartups: below `start` pending connections every one is
 * admitted; from `start` a new one is dropped with probability rate% rising linearly to 100% at
 * `full`, except for a source below an even share of `full`. At `full`, instead of refusing
 * everyone (which hands the gate to whoever reconnects fastest), a newcomer whose source holds
 * less than an even share, and fewer than the biggest holder, takes that holder's oldest slot.
 * One source never holds more than `perSource`.
 */
export interface StartupLimits {
  start: number
  rate: number
  full: number
  perSource: number
}

export class StartupsSyntaxError extends Error {}

/** "start:rate:full" (e.g. 10:30:100), or one number N for N:100:N (no early drop). */
export function parseStartups(s: string): Pick<StartupLimits, 'start' | 'rate' | 'full'> {
  const m = s.match(/^(\d+)(?::(\d+):(\d+))?$/)
  if (!m) throw new StartupsSyntaxError(`"${s}" is not START:RATE:FULL or a number`)
  const start = Number(m[1])
  const [rate, full] = m[2] ? [Number(m[2]), Number(m[3])] : [100, start]
  if (start < 1 || rate > 100 || full < start) throw new StartupsSyntaxError(`"${s}": need 1 <= START <= FULL and RATE <= 100`)
  return {start, rate, full}
}

/** Pending connections from one IPv4 address, or one IPv6 /64 (one host usually has a whole /64). */
export function sourceKey(address: string): string {
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return address.slice(7)
  if (isIP(address) !== 6) return address
  const [head, tail = ''] = address.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':') + '::/64'
}

export type Admission<T> = {ok: true; evict?: T} | {ok: false; why: string}

export class Startups<T> {
  private readonly bySource = new Map<string, T[]>()
  private count = 0

  constructor(readonly limits: StartupLimits, private readonly random: () => number = Math.random) {}

  get size(): number {
    return this.count
  }

  admit(source: string, h: T): Admission<T> {
    const {start, rate, full, perSource} = this.limits
    const mine = this.bySource.get(source)?.length ?? 0
    if (mine >= perSource) return {ok: false, why: `${perSource} unauthenticated connections from this source already`}
    let evict: T | undefined
    // A source holding less than an even share of `full` is never early-dropped: a flood from some
    // addresses then costs the others nothing but, at `full`, the flooder's oldest slot.
    const fair = mine < Math.max(1, Math.floor(full / (this.bySource.size + (mine ? 0 : 1))))
    if (this.count >= full) {
      // Only a source below its share may evict: otherwise flooding sources at their share evict
      // one another without end, and every admission costs a socket and a TLS start.
      const [biggest, held] = this.biggest()
      if (!fair || held <= mine) return {ok: false, why: `${full} unauthenticated connections already`}
      evict = this.bySource.get(biggest)![0]
      this.remove(biggest, evict)
    } else if (this.count >= start && !fair) {
      const p = (rate + ((100 - rate) * (this.count - start)) / Math.max(1, full - start)) / 100
      if (this.random() < p) return {ok: false, why: `early drop at ${this.count} unauthenticated connections`}
    }
    const list = this.bySource.get(source)
    if (list) list.push(h)
    else this.bySource.set(source, [h])
    this.count++
    return evict === undefined ? {ok: true} : {ok: true, evict}
  }

  /** Forget `h` (authenticated, closed or evicted); unknown handles are ignored. */
  remove(source: string, h: T): void {
    const list = this.bySource.get(source)
    const i = list?.indexOf(h) ?? -1
    if (i < 0) return
    list!.splice(i, 1)
    if (!list!.length) this.bySource.delete(source)
    this.count--
  }

  private biggest(): [string, number] {
    let best: [string, number] = ['', 0]
    for (const [s, l] of this.bySource) if (l.length > best[1]) best = [s, l.length]
    return best
  }
}
