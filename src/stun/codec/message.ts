import {crc32} from '../../lib/crc32.js'
import {CodecError, need} from '../../lib/errors.js'
import {formatIPv4, formatIPv6, ipv4Bytes, ipv6Bytes, isIPv4, isIPv6} from '../../lib/net/ip.js'

/** STUN messages (RFC 8489) with the RFC 5780 and classic RFC 3489 attributes. */
export const MAGIC_COOKIE = 0x2112a442
export const HEADER = 20
const FINGERPRINT_XOR = 0x5354554e

export const StunMethod = {BINDING: 0x001} as const
export type Klass = 'request' | 'indication' | 'success' | 'error'
const CLASS_BITS: Record<Klass, number> = {request: 0x000, indication: 0x010, success: 0x100, error: 0x110}

export const Attr = {
  MAPPED_ADDRESS: 0x0001,
  RESPONSE_ADDRESS: 0x0002,
  CHANGE_REQUEST: 0x0003,
  SOURCE_ADDRESS: 0x0004,
  CHANGED_ADDRESS: 0x0005,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  XOR_MAPPED_ADDRESS: 0x0020,
  PADDING: 0x0026,
  RESPONSE_PORT: 0x0027,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  RESPONSE_ORIGIN: 0x802b,
  OTHER_ADDRESS: 0x802c,
} as const

export const ATTR_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Attr).map(([k, v]) => [v, k]))

export interface TransportAddress {
  address: string
  port: number
}

export interface StunMessage {
  method: number
  klass: Klass
  /** 12 bytes. */
  transactionId: Buffer
  /** False for a classic RFC 3489 message (no magic cookie). */
  cookie: boolean
  /** Classic messages only: the first 4 bytes of RFC 3489's 16-byte transaction id. */
  txidHead?: Buffer
  mapped?: TransportAddress
  xorMapped?: TransportAddress
  responseOrigin?: TransportAddress
  otherAddress?: TransportAddress
  sourceAddress?: TransportAddress
  changedAddress?: TransportAddress
  changeRequest?: {ip: boolean; port: boolean}
  responsePort?: number
  padding?: number
  software?: string
  error?: {code: number; reason: string}
  unknown?: number[]
  /** Comprehension-required attributes (0x0000-0x7FFF) this codec does not know. */
  unknownRequired: number[]
  fingerprint?: boolean
}

// ---- type field: M11..M0 interleaved with C1 C0 (RFC 8489 section 5) ----

function encodeType(method: number, klass: Klass): number {
  return ((method & 0xf80) << 2) | ((method & 0x070) << 1) | (method & 0x00f) | CLASS_BITS[klass]
}

function decodeType(t: number): {method: number; klass: Klass} {
  const method = ((t & 0x3e00) >> 2) | ((t & 0x00e0) >> 1) | (t & 0x000f)
  const c = t & 0x110
  const klass = (Object.keys(CLASS_BITS) as Klass[]).find((k) => CLASS_BITS[k] === c)!
  return {method, klass}
}

// ---- addresses ----

function encodeAddress(a: TransportAddress, xor: Buffer | null): Buffer {
  const v6 = isIPv6(a.address)
  if (!v6 && !isIPv4(a.address)) throw new CodecError('BAD_ADDRESS', `not an IP address: ${a.address}`)
  const ip = v6 ? ipv6Bytes(a.address) : ipv4Bytes(a.address)
  const out = Buffer.alloc(4 + ip.length)
  out[1] = v6 ? 2 : 1
  out.writeUInt16BE(xor ? a.port ^ (MAGIC_COOKIE >>> 16) : a.port, 2)
  for (let i = 0; i < ip.length; i++) out[4 + i] = xor ? ip[i] ^ xor[i] : ip[i]
  return out
}

function decodeAddress(v: Buffer, xor: Buffer | null, what: string): TransportAddress {
  need(v, 0, 4, what)
  const family = v[1]
  const len = family === 1 ? 4 : family === 2 ? 16 : 0
  if (!len) throw new CodecError('BAD_FAMILY', `${what}: unknown address family ${family}`)
  need(v, 4, len, what)
  const ip = Buffer.alloc(len)
  for (let i = 0; i < len; i++) ip[i] = xor ? v[4 + i] ^ xor[i] : v[4 + i]
  const port = v.readUInt16BE(2) ^ (xor ? MAGIC_COOKIE >>> 16 : 0)
  return {address: len === 4 ? formatIPv4(ip, 0) : formatIPv6(ip, 0), port}
}

/** The XOR pad for XOR-MAPPED-ADDRESS: the cookie, then the transaction id (for IPv6). */
function xorPad(transactionId: Buffer): Buffer {
  const b = Buffer.alloc(16)
  b.writeUInt32BE(MAGIC_COOKIE, 0)
  transactionId.copy(b, 4)
  return b
}

// ---- encoding ----

export interface EncodeOptions {
  /** Append FINGERPRINT (RFC 8489 section 14.7). */
  fingerprint?: boolean
}

export function encodeStun(m: Omit<StunMessage, 'unknownRequired'> & {unknownRequired?: number[]}, o: EncodeOptions = {}): Buffer {
  if (m.transactionId.length !== 12) throw new CodecError('BAD_TXID', 'transaction id must be 12 bytes')
  const attrs: [number, Buffer][] = []
  const pad = xorPad(m.transactionId)
  const addr = (type: number, a: TransportAddress | undefined, xor = false): void => {
    if (a) attrs.push([type, encodeAddress(a, xor ? pad : null)])
  }
  addr(Attr.XOR_MAPPED_ADDRESS, m.xorMapped, true)
  addr(Attr.MAPPED_ADDRESS, m.mapped)
  addr(Attr.RESPONSE_ORIGIN, m.responseOrigin)
  addr(Attr.OTHER_ADDRESS, m.otherAddress)
  addr(Attr.SOURCE_ADDRESS, m.sourceAddress)
  addr(Attr.CHANGED_ADDRESS, m.changedAddress)
  if (m.changeRequest) {
    const v = Buffer.alloc(4)
    v.writeUInt32BE((m.changeRequest.ip ? 4 : 0) | (m.changeRequest.port ? 2 : 0))
    attrs.push([Attr.CHANGE_REQUEST, v])
  }
  if (m.responsePort !== undefined) {
    const v = Buffer.alloc(4)
    v.writeUInt16BE(m.responsePort)
    attrs.push([Attr.RESPONSE_PORT, v])
  }
  if (m.error) {
    const reason = Buffer.from(m.error.reason, 'utf8')
    const v = Buffer.alloc(4 + reason.length)
    v[2] = Math.floor(m.error.code / 100)
    v[3] = m.error.code % 100
    reason.copy(v, 4)
    attrs.push([Attr.ERROR_CODE, v])
  }
  if (m.unknown?.length) {
    const v = Buffer.alloc(m.unknown.length * 2)
    m.unknown.forEach((t, i) => v.writeUInt16BE(t, i * 2))
    attrs.push([Attr.UNKNOWN_ATTRIBUTES, v])
  }
  if (m.padding) attrs.push([Attr.PADDING, Buffer.alloc(m.padding)])
  if (m.software !== undefined) attrs.push([Attr.SOFTWARE, Buffer.from(m.software, 'utf8')])

  const bodyLen = attrs.reduce((n, [, v]) => n + 4 + ((v.length + 3) & ~3), 0) + (o.fingerprint ? 8 : 0)
  if (bodyLen > 0xffff) throw new CodecError('TOO_LARGE', 'STUN message over 64 KiB')
  const out = Buffer.alloc(HEADER + bodyLen)
  out.writeUInt16BE(encodeType(m.method, m.klass), 0)
  out.writeUInt16BE(bodyLen, 2)
  if (m.cookie) out.writeUInt32BE(MAGIC_COOKIE, 4)
  else if (m.txidHead?.length === 4) m.txidHead.copy(out, 4)
  m.transactionId.copy(out, 8)
  let off = HEADER
  for (const [type, v] of attrs) {
    out.writeUInt16BE(type, off)
    out.writeUInt16BE(v.length, off + 2)
    v.copy(out, off + 4)
    off += 4 + ((v.length + 3) & ~3)
  }
  if (o.fingerprint) {
    out.writeUInt16BE(Attr.FINGERPRINT, off)
    out.writeUInt16BE(4, off + 2)
    out.writeUInt32BE((crc32(out, 0, off) ^ FINGERPRINT_XOR) >>> 0, off + 4)
  }
  return out
}

// ---- decoding ----

/** Cheap test for "is this datagram STUN at all" (RFC 8489 section 6.3), before decoding. */
export function looksLikeStun(b: Buffer): boolean {
  return b.length >= HEADER && (b[0] & 0xc0) === 0 && b.readUInt16BE(2) + HEADER === b.length && (b.readUInt16BE(2) & 3) === 0
}

export function decodeStun(b: Buffer): StunMessage {
  if (b.length < HEADER) throw new CodecError('TRUNCATED', `STUN message of ${b.length} bytes is shorter than its header`)
  if ((b[0] & 0xc0) !== 0) throw new CodecError('NOT_STUN', 'the two top bits of a STUN message must be zero')
  const length = b.readUInt16BE(2)
  if (length & 3) throw new CodecError('BAD_LENGTH', 'STUN message length is not a multiple of 4')
  if (HEADER + length !== b.length) throw new CodecError('BAD_LENGTH', `STUN length field says ${length}, datagram carries ${b.length - HEADER}`)
  const {method, klass} = decodeType(b.readUInt16BE(0))
  const cookie = b.readUInt32BE(4) === MAGIC_COOKIE
  const m: StunMessage = {method, klass, transactionId: Buffer.from(b.subarray(8, 20)), cookie, unknownRequired: []}
  if (!cookie) m.txidHead = Buffer.from(b.subarray(4, 8))
  const pad = xorPad(m.transactionId)
  let off = HEADER
  while (off < b.length) {
    need(b, off, 4, 'STUN attribute header')
    const type = b.readUInt16BE(off)
    const len = b.readUInt16BE(off + 2)
    need(b, off + 4, len, `STUN attribute 0x${type.toString(16)}`)
    const v = b.subarray(off + 4, off + 4 + len)
    const name = ATTR_NAMES[type] ?? `0x${type.toString(16)}`
    if (m.fingerprint !== undefined) throw new CodecError('AFTER_FINGERPRINT', `attribute ${name} after FINGERPRINT`)
    switch (type) {
      case Attr.MAPPED_ADDRESS: m.mapped = decodeAddress(v, null, name); break
      case Attr.XOR_MAPPED_ADDRESS: m.xorMapped = decodeAddress(v, pad, name); break
      case Attr.RESPONSE_ORIGIN: m.responseOrigin = decodeAddress(v, null, name); break
      case Attr.OTHER_ADDRESS: m.otherAddress = decodeAddress(v, null, name); break
      case Attr.SOURCE_ADDRESS: m.sourceAddress = decodeAddress(v, null, name); break
      case Attr.CHANGED_ADDRESS: m.changedAddress = decodeAddress(v, null, name); break
      case Attr.CHANGE_REQUEST: {
        need(v, 0, 4, name)
        const f = v.readUInt32BE(0)
        m.changeRequest = {ip: (f & 4) !== 0, port: (f & 2) !== 0}
        break
      }
      case Attr.RESPONSE_PORT: need(v, 0, 2, name); m.responsePort = v.readUInt16BE(0); break
      case Attr.PADDING: m.padding = len; break
      case Attr.SOFTWARE: m.software = v.toString('utf8'); break
      case Attr.ERROR_CODE: {
        need(v, 0, 4, name)
        m.error = {code: (v[2] & 7) * 100 + v[3], reason: v.toString('utf8', 4)}
        break
      }
      case Attr.UNKNOWN_ATTRIBUTES: {
        if (len & 1) throw new CodecError('BAD_LENGTH', `${name} has odd length`)
        m.unknown = []
        for (let i = 0; i < len; i += 2) m.unknown.push(v.readUInt16BE(i))
        break
      }
      case Attr.FINGERPRINT: {
        if (len !== 4) throw new CodecError('BAD_LENGTH', 'FINGERPRINT must be 4 bytes')
        m.fingerprint = ((crc32(b, 0, off) ^ FINGERPRINT_XOR) >>> 0) === v.readUInt32BE(0)
        if (!m.fingerprint) throw new CodecError('BAD_FINGERPRINT', 'FINGERPRINT does not match the message')
        break
      }
      default:
        if (type < 0x8000) m.unknownRequired.push(type)
    }
    off += 4 + ((len + 3) & ~3)
  }
  if (off !== b.length) throw new CodecError('TRUNCATED', 'last STUN attribute runs past the message')
  return m
}

/** The mapped address a response reports: XOR-MAPPED-ADDRESS, else the classic MAPPED-ADDRESS. */
export function mappedOf(m: StunMessage): TransportAddress | undefined {
  return m.xorMapped ?? m.mapped
}
