import {crc32} from '../../lib/crc32.js'
import {CodecError} from '../../lib/errors.js'
import {decodeStun, encodeStun, HEADER, looksLikeStun, MAGIC_COOKIE, StunMethod, type StunMessage, type TransportAddress} from '../codec/message.js'
import {ipv4ToU32} from '../../lib/net/ip.js'

/**
 * The RFC 5780 server's answer to one datagram, sans-I/O. The server has up to four sockets:
 * [primary|alternate IP] x [primary|alternate port]; `via` names the one to answer from.
 */
export type Via = {altIp: boolean; altPort: boolean}

export interface ServerConfig {
  primary: TransportAddress
  /** The alternate address and port; without it CHANGE-REQUEST is answered with error 420. */
  alternate?: TransportAddress
  /** SOFTWARE for RFC 8489 answers; none when unset (every byte of an answer is amplification). */
  software?: string
}

export interface Answer {
  via: Via
  to: TransportAddress
  data: Buffer
}

export function socketAddress(cfg: ServerConfig, via: Via): TransportAddress {
  const alt = cfg.alternate ?? cfg.primary
  return {address: via.altIp ? alt.address : cfg.primary.address, port: via.altPort ? alt.port : cfg.primary.port}
}

/**
 * Returns null for anything that is not a well-formed STUN request: garbage is never answered.
 * Answers carry only what the request's kind needs (issue 9: a 20-byte request drew 84 bytes); the
 * sizes and ratios are tabled in docs/nat-discover.md.
 */
export function answer(cfg: ServerConfig, datagram: Buffer, from: TransportAddress, on: Via): Answer | null {
  let req: StunMessage
  try {
    req = decodeStun(datagram)
  } catch (e) {
    if (e instanceof CodecError) return null
    throw e
  }
  if (req.klass !== 'request') return null
  const base = {method: req.method, transactionId: req.transactionId, cookie: req.cookie, txidHead: req.txidHead, software: cfg.software}
  // No reason phrase: the code says it, and RFC 8489 section 14.8 allows an empty one.
  const error = (code: number, extra: Partial<StunMessage> = {}): Answer => ({
    via: on, to: from, data: encodeStun({...base, klass: 'error', error: {code, reason: ''}, ...extra}, {fingerprint: req.fingerprint}),
  })
  if (req.method !== StunMethod.BINDING) return error(400)
  if (req.unknownRequired.length) return error(420, {unknown: req.unknownRequired})
  const change = req.changeRequest ?? {ip: false, port: false}
  if ((change.ip || change.port) && !cfg.alternate) return error(420, {unknown: [0x0003]})
  const via: Via = {altIp: on.altIp !== change.ip, altPort: on.altPort !== change.port}
  const origin = socketAddress(cfg, via)
  const other = cfg.alternate ? socketAddress(cfg, {altIp: !via.altIp, altPort: !via.altPort}) : undefined
  // RFC 5780 section 7.5: RESPONSE-PORT moves the port the answer goes to, never the address.
  const to = req.responsePort !== undefined ? {address: from.address, port: req.responsePort} : from
  if (to.port === 0) return null
  const classic = !req.cookie
  // The other address goes in every answer when there is one: a client learns it from its first,
  // plain request (RFC 5780 section 4.2, test I). The answering address is only for requests that
  // use the behaviour-discovery attributes; RFC 5780 section 6.1 would put it, and MAPPED-ADDRESS,
  // in every answer, which an RFC 8489 client never reads and an amplifier always sends.
  const discovery = !!req.changeRequest || req.responsePort !== undefined || req.padding !== undefined
  // RFC 3489 knew 0x8022 as SERVER-NAME with a length that is a multiple of 4; classic clients
  // (Vovida stun 0.97) reject anything else, so they get no SOFTWARE at all.
  const reply: Parameters<typeof encodeStun>[0] = classic
    ? {...base, software: undefined, klass: 'success', mapped: from, sourceAddress: discovery ? origin : undefined, changedAddress: other}
    : {...base, klass: 'success', xorMapped: from, responseOrigin: discovery ? origin : undefined, otherAddress: other}
  let data = encodeStun(reply, {fingerprint: req.fingerprint})
  // PADDING (RFC 5780 section 7.6) is echoed only as far as the answer stays no larger than the
  // request: the server must never amplify.
  if (req.padding && !classic) {
    const room = datagram.length - data.length - 4
    if (room >= 4) data = encodeStun({...reply, padding: room & ~3}, {fingerprint: req.fingerprint})
  }
  return {via, to, data}
}

/**
 * The server's hot path: a plain IPv4 Binding request (no attributes, or FINGERPRINT only) is
 * answered from a per-socket template, patched with the transaction id and the client's address.
 * The bytes are exactly those answer() would produce; anything else goes to answer().
 */
export class Responder {
  private templates = new Map<string, Buffer>()

  constructor(readonly cfg: ServerConfig) {}

  answer(datagram: Buffer, from: TransportAddress, on: Via): Answer | null {
    const n = datagram.length
    const plain = (n === HEADER || (n === HEADER + 8 && datagram.readUInt32BE(HEADER) === 0x80280004))
      && datagram.readUInt16BE(0) === 0x0001 && datagram.readUInt16BE(2) === n - HEADER && datagram.readUInt32BE(4) === MAGIC_COOKIE
    const ip = plain ? ipv4ToU32(from.address) : -1
    if (ip < 0 || (n > HEADER && !fingerprintOk(datagram))) return answer(this.cfg, datagram, from, on)
    const t = this.template(on)
    const out = Buffer.allocUnsafe(t.length + (n > HEADER ? 8 : 0))
    t.copy(out)
    datagram.copy(out, 8, 8, 20)
    // XOR-MAPPED-ADDRESS first, at 20 (as encodeStun orders them).
    out.writeUInt16BE(from.port ^ (MAGIC_COOKIE >>> 16), 26)
    out.writeUInt32BE((ip ^ MAGIC_COOKIE) >>> 0, 28)
    if (n > HEADER) {
      out.writeUInt16BE(out.length - HEADER, 2)
      out.writeUInt32BE(0x80280004, t.length)
      out.writeUInt32BE((crc32(out, 0, t.length) ^ 0x5354554e) >>> 0, t.length + 4)
    }
    return {via: on, to: from, data: out}
  }

  private template(on: Via): Buffer {
    const key = `${+on.altIp}${+on.altPort}`
    let t = this.templates.get(key)
    if (!t) {
      const probe = encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId: Buffer.alloc(12), cookie: true})
      t = answer(this.cfg, probe, {address: '0.0.0.0', port: 0xffff}, on)!.data
      this.templates.set(key, t)
    }
    return t
  }
}

function fingerprintOk(b: Buffer): boolean {
  return ((crc32(b, 0, HEADER) ^ 0x5354554e) >>> 0) === b.readUInt32BE(HEADER + 4)
}

/**
 * One token bucket for all sources together: `rate` answers per second, bursts of `burst`. Per-source
 * buckets do nothing against spoofed sources (issue 9: 100 000 of them); this caps what the server
 * sends in total, and so what it can add to anyone's flood.
 */
export class AnswerBudget {
  private tokens: number
  private at: number | null = null

  constructor(private readonly rate: number, private readonly burst: number) {
    this.tokens = burst
  }

  allow(now: number): boolean {
    if (this.at !== null) this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.at) / 1000) * this.rate)
    this.at = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

export interface AdmissionLimits {
  /** Answers per second per source address, and the burst above it. */
  rate: number
  burst: number
  /** Answers per second from the whole server, and the burst above it. */
  globalRate: number
  globalBurst: number
}

/** Why a datagram got no answer. */
export type Drop = 'not-stun' | 'source-rate' | 'no-answer' | 'over-budget'

/**
 * The server's decision for one datagram, sans-I/O: its answer, or why none. Checks run cheapest
 * first, and the global budgets last, so that only answers actually sent spend them and one source
 * over its own rate cannot use up everyone's.
 *
 * Two global budgets of the same size: one for sources answered for a while (first answered more
 * than a second ago, last within the minute), one for the rest. Spoofed floods use ever new
 * addresses, or repeat one at once, and exhaust the second; a client that used the server before
 * keeps being answered from the first. A source gets into the first only by answers from the
 * second, spread over time, which a flood makes rare. The server sends at most twice the global
 * rate.
 */
export class Admission {
  private readonly perSource: RateLimiter
  private readonly budget: AnswerBudget
  private readonly returningBudget: AnswerBudget
  private readonly recent: RecentSources
  private readonly responder: Responder

  constructor(cfg: ServerConfig, limits: AdmissionLimits) {
    this.perSource = new RateLimiter(limits.rate, limits.burst)
    this.budget = new AnswerBudget(limits.globalRate, limits.globalBurst)
    this.returningBudget = new AnswerBudget(limits.globalRate, limits.globalBurst)
    this.recent = new RecentSources(RECENT_MS, RECENT_MAX)
    this.responder = new Responder(cfg)
  }

  decide(datagram: Buffer, from: TransportAddress, on: Via, now: number): Answer | Drop {
    if (!looksLikeStun(datagram)) return 'not-stun'
    if (!this.perSource.allow(from.address, now)) return 'source-rate'
    const a = this.responder.answer(datagram, from, on)
    if (!a) return 'no-answer'
    if (!(this.recent.has(from.address, now) ? this.returningBudget : this.budget).allow(now)) return 'over-budget'
    this.recent.touch(from.address, now)
    return a
  }
}

/** A source counts as returning from a second after its first answer (a spoofer's burst of
 * repeats does not) until a minute after its last. Entries come in no faster than the global rate,
 * so 16 384 cover the minute at the default 1 000/s; the least recently answered go first. */
const SENIORITY_MS = 1000
const RECENT_MS = 60_000
const RECENT_MAX = 16_384

/** Sources answered lately, least recently answered first (a Map keeps insertion order). */
export class RecentSources {
  private readonly seen = new Map<string, {first: number; last: number}>()

  constructor(private readonly ttlMs: number, private readonly max: number, private readonly seniorityMs = SENIORITY_MS) {}

  has(source: string, now: number): boolean {
    const e = this.seen.get(source)
    return e !== undefined && now - e.last < this.ttlMs && now - e.first >= this.seniorityMs
  }

  touch(source: string, now: number): void {
    const e = this.seen.get(source)
    this.seen.delete(source)
    this.seen.set(source, {first: e && now - e.last < this.ttlMs ? e.first : now, last: now})
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value as string)
  }

  get size(): number {
    return this.seen.size
  }
}

/** Token bucket per source address: `rate` answers per second, bursts of `burst`. */
export class RateLimiter {
  private buckets = new Map<string, {tokens: number; at: number}>()

  constructor(private readonly rate: number, private readonly burst: number, private readonly maxSources = 65536) {}

  allow(source: string, now: number): boolean {
    let b = this.buckets.get(source)
    if (!b) {
      if (this.buckets.size >= this.maxSources) this.prune(now)
      b = {tokens: this.burst, at: now}
      this.buckets.set(source, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Forget full buckets (sources that have been quiet long enough); bounded memory. */
  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k)
    if (this.buckets.size >= this.maxSources) this.buckets.clear()
  }
}
