import {crc32} from '../../lib/crc32.js'
import {CodecError} from '../../lib/errors.js'
import {decodeStun, encodeStun, HEADER, MAGIC_COOKIE, StunMethod, type StunMessage, type TransportAddress} from '../codec/message.js'
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

/** Returns null for anything that is not a well-formed STUN request: garbage is never answered. */
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
  const error = (code: number, reason: string, extra: Partial<StunMessage> = {}): Answer => ({
    via: on, to: from, data: encodeStun({...base, klass: 'error', error: {code, reason}, ...extra}, {fingerprint: req.fingerprint}),
  })
  if (req.method !== StunMethod.BINDING) return error(400, 'Bad Request: only Binding is served')
  if (req.unknownRequired.length) return error(420, 'Unknown Attribute', {unknown: req.unknownRequired})
  const change = req.changeRequest ?? {ip: false, port: false}
  if ((change.ip || change.port) && !cfg.alternate) return error(420, 'Unknown Attribute: no alternate address', {unknown: [0x0003]})
  const via: Via = {altIp: on.altIp !== change.ip, altPort: on.altPort !== change.port}
  const origin = socketAddress(cfg, via)
  const other = cfg.alternate ? socketAddress(cfg, {altIp: !via.altIp, altPort: !via.altPort}) : undefined
  // RFC 5780 section 7.5: RESPONSE-PORT moves the port the answer goes to, never the address.
  const to = req.responsePort !== undefined ? {address: from.address, port: req.responsePort} : from
  if (to.port === 0) return null
  const classic = !req.cookie
  // RFC 3489 knew 0x8022 as SERVER-NAME with a length that is a multiple of 4; classic clients
  // (Vovida stun 0.97) reject anything else, so they get no SOFTWARE at all.
  const reply: Parameters<typeof encodeStun>[0] = classic
    ? {...base, software: undefined, klass: 'success', mapped: from, sourceAddress: origin, changedAddress: other}
    : {...base, klass: 'success', xorMapped: from, mapped: from, responseOrigin: origin, otherAddress: other}
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
    // XOR-MAPPED-ADDRESS at 20, MAPPED-ADDRESS at 32 (as encodeStun orders them).
    out.writeUInt16BE(from.port ^ (MAGIC_COOKIE >>> 16), 26)
    out.writeUInt32BE((ip ^ MAGIC_COOKIE) >>> 0, 28)
    out.writeUInt16BE(from.port, 38)
    out.writeUInt32BE(ip, 40)
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
