import * as assert from 'uvu/assert'
import {CodecError} from '../../src/lib/errors.js'

/**
 * The one seeded fuzz harness. Every case draws from its own generator, seeded by
 * (TK_FUZZ_SEED, property name, case index), so a failure names the three and replays alone:
 *   TK_FUZZ_SEED=<seed> TK_FUZZ_CASE=<index> node node_modules/uvu/bin.js dist/test fuzz
 * TK_FUZZ_CASES sets how many cases each property runs (default 20 000).
 */
export const SEED = process.env.TK_FUZZ_SEED !== undefined ? Number(process.env.TK_FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0
export const CASES = Number(process.env.TK_FUZZ_CASES ?? 20000)
/** TK_FUZZ_TIMES=1 prints each property's run time. */
const TIMES = process.env.TK_FUZZ_TIMES === '1'
const ONLY = process.env.TK_FUZZ_CASE !== undefined ? Number(process.env.TK_FUZZ_CASE) : undefined

/** FNV-1a, to fold a property's name into its seed. */
function hash(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** mulberry32: small, fast, and good enough to pick bytes. */
export class Rng {
  private s: number

  constructor(seed: number) {
    this.s = seed | 0
  }

  u32(): number {
    this.s = (this.s + 0x6d2b79f5) | 0
    let t = Math.imul(this.s ^ (this.s >>> 15), 1 | this.s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (t ^ (t >>> 14)) >>> 0
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 2 ** 32) * n)
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1)
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)]
  }

  /** A length biased towards the edges a decoder gets wrong: 0, 1, small, max. */
  length(max: number): number {
    const k = this.below(8)
    return k === 0 ? 0 : k === 1 ? Math.min(1, max) : k === 2 ? max : k < 6 ? this.int(0, Math.min(max, 16)) : this.int(0, max)
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    let i = 0
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(this.u32(), i)
    for (let w = this.u32(); i < n; i++, w >>>= 8) b[i] = w & 255
    return b
  }

  /** Text from `alphabet` (default: ASCII, Latin-1, CJK and an emoji; never NUL). */
  text(maxLen: number, alphabet = TEXT): string {
    let cps = alphabets.get(alphabet)
    if (!cps) alphabets.set(alphabet, (cps = [...alphabet]))
    let s = ''
    for (let n = this.length(maxLen); n > 0; n--) s += this.pick(cps)
    return s
  }

  ipv4(): string {
    return `${this.below(256)}.${this.below(256)}.${this.below(256)}.${this.below(256)}`
  }

  mac(): string {
    return [...this.bytes(6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
  }

  port(): number {
    return this.pick([0, 1, 65535, this.below(65536)])
  }
}

const alphabets = new Map<string, string[]>()
const TEXT = 'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.:/ =\né€日本語😀'

/** Mutations of valid encodings: each one a way real bytes go wrong. */
export function mutate(r: Rng, input: Buffer): Buffer {
  let b: Buffer = Buffer.from(input)
  for (let n = 1 + r.below(3); n > 0; n--) {
    const at = r.below(b.length + 1)
    switch (r.below(7)) {
      case 0: // one bit flipped
        if (b.length) b[at % b.length] ^= 1 << r.below(8)
        break
      case 1: // one byte replaced
        if (b.length) b[at % b.length] = r.below(256)
        break
      case 2: // truncated
        b = b.subarray(0, at)
        break
      case 3: // extended with junk
        b = Buffer.concat([b, r.bytes(r.length(32))])
        break
      case 4: // a run of bytes cut out or inserted
        b = r.chance(0.5) ? Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + r.below(8))]) : Buffer.concat([b.subarray(0, at), r.bytes(1 + r.below(8)), b.subarray(at)])
        break
      case 5: { // a 16- or 32-bit field (a length, an offset, a count) set to a boundary value
        const wide = r.chance(0.5)
        const w = wide ? 4 : 2
        if (b.length < w) break
        const off = r.below(b.length - w + 1)
        const v = r.pick([0, 1, 2, 3, 4, 7, 8, b.length - off, b.length, b.length + 1, 0x7fff, 0x8000, 0xfffe, 0xffff, ...(wide ? [0x7fffffff, 0xffffffff] : [])])
        if (wide) b.writeUInt32BE(v >>> 0, off)
        else b.writeUInt16BE(v & 0xffff, off)
        break
      }
      default: // random bytes of a random length
        b = r.bytes(r.length(64))
    }
  }
  return b
}

/** The input cut into pieces as a socket may deliver it: often one byte, sometimes nothing. */
export function chunks(r: Rng, b: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let off = 0; off < b.length; ) {
    const n = r.chance(0.3) ? 1 : r.chance(0.05) ? 0 : r.int(1, Math.max(1, b.length - off))
    out.push(b.subarray(off, off + n))
    off += n
  }
  return out
}

function failure(property: string, i: number, e: unknown): Error {
  const err = e as Error
  return new assert.Assertion({
    message: `${property}: case ${i} failed (replay: TK_FUZZ_SEED=${SEED} TK_FUZZ_CASE=${i}): ${err?.message ?? e}`,
    details: (err as {details?: string})?.details || err?.stack || '',
    generated: false, operator: 'fuzz', expects: undefined, actual: undefined,
  })
}

function cases(n: number): number[] {
  return ONLY !== undefined ? (ONLY < n ? [ONLY] : []) : [...Array(n).keys()]
}

/**
 * Runs `body` on `n` seeded cases; a failure's message carries the seed and the case index.
 * Cases run without stack traces (building one is most of the cost of a refused input); a
 * failing case is run once more with them, for the report.
 */
export function fuzz(property: string, body: (r: Rng, i: number) => void, n = CASES): void {
  const base = hash(property, SEED)
  const t0 = performance.now()
  const limit = Error.stackTraceLimit
  for (const i of cases(n)) {
    try {
      Error.stackTraceLimit = 0
      body(new Rng(hash(String(i), base)), i)
    } catch (e) {
      Error.stackTraceLimit = limit
      try {
        body(new Rng(hash(String(i), base)), i)
      } catch (again) {
        throw failure(property, i, again)
      }
      throw failure(property, i, e)
    } finally {
      Error.stackTraceLimit = limit
    }
  }
  if (TIMES) console.log(`  ${property}: ${n} cases in ${Math.round(performance.now() - t0)} ms`)
}

export async function fuzzAsync(property: string, body: (r: Rng, i: number) => Promise<void>, n = CASES): Promise<void> {
  const base = hash(property, SEED)
  const t0 = performance.now()
  for (const i of cases(n)) {
    try {
      await body(new Rng(hash(String(i), base)), i)
    } catch (e) {
      throw failure(property, i, e)
    }
  }
  if (TIMES) console.log(`  ${property}: ${n} cases in ${Math.round(performance.now() - t0)} ms`)
}

/**
 * Calls a decoder on hostile input: it may return or throw one of `allowed` (CodecError by
 * default), nothing else. Returns the result, or undefined when it refused the input.
 */
export function refusesOnly<T>(what: string, input: Buffer, fn: () => T, allowed: (abstract new (...a: never[]) => Error)[] = [CodecError]): T | undefined {
  try {
    return fn()
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return undefined
    throw new Error(`${what} threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${input.toString('hex')}`, {cause: e})
  }
}
