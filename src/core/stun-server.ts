import {CodecError} from '../codec/errors.js'
import {decodeStun, encodeStun, Method, type StunMessage, type TransportAddress} from '../codec/stun.js'

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
  if (req.method !== Method.BINDING) return error(400, 'Bad Request: only Binding is served')
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
