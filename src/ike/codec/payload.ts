import {CodecError, need} from '../../lib/errors.js'
import {decodeCert, encodeCert, type CertBody} from './cert.js'
import {PAYLOAD_NAMES, PayloadType as P} from './constants.js'
import {decodeCp, encodeCp, type CpBody} from './cp.js'
import {decodeSkf, encodeSkf, type SkBody, type SkfBody} from './encrypted.js'
import {decodeAuth, decodeId, encodeAuth, encodeId, type AuthBody, type IdBody} from './id.js'
import {decodeKe, decodeNonce, encodeKe, encodeNonce, type KeBody, type NonceBody} from './ke.js'
import {decodeDelete, decodeNotify, encodeDelete, encodeNotify, type DeleteBody, type NotifyBody, type VendorBody} from './notify.js'
import {decodeSa, encodeSa, type SaBody} from './sa.js'
import {decodeTs, encodeTs, type TsBody} from './ts.js'

/** The generic payload header (§3.2) and the payload chain, dispatching to each family's module. */

interface Head<T extends number> {
  type: T
  /** The critical bit as received (senders set it only on payloads the peer may not know). */
  critical?: boolean
}

export type Payload =
  | (Head<typeof P.SA> & SaBody)
  | (Head<typeof P.KE> & KeBody)
  | (Head<typeof P.IDi | typeof P.IDr> & IdBody)
  | (Head<typeof P.CERT | typeof P.CERTREQ> & CertBody)
  | (Head<typeof P.AUTH> & AuthBody)
  | (Head<typeof P.NONCE> & NonceBody)
  | (Head<typeof P.N> & NotifyBody)
  | (Head<typeof P.D> & DeleteBody)
  | (Head<typeof P.V> & VendorBody)
  | (Head<typeof P.TSi | typeof P.TSr> & TsBody)
  | (Head<typeof P.CP> & CpBody)
  | (Head<typeof P.SK> & SkBody)
  | (Head<typeof P.SKF> & SkfBody)
  | UnknownPayload

/** A payload type this codec does not know (or EAP, not used): kept as bytes. */
export interface UnknownPayload extends Head<number> {
  unknown: true
  data: Buffer
}

/** Payloads of one type, typed: `payloadsOf(m.payloads, PayloadType.N)`. */
export type PayloadOf<T extends number> = Exclude<Payload, UnknownPayload> extends infer U ? (U extends {type: infer K} ? (T extends K ? U & {type: T} : never) : never) : never

export function payloadsOf<T extends Payload['type']>(ps: readonly Payload[], type: T): PayloadOf<T>[] {
  return ps.filter((p) => p.type === type && !('unknown' in p)) as PayloadOf<T>[]
}

export function payloadOf<T extends Payload['type']>(ps: readonly Payload[], type: T): PayloadOf<T> | undefined {
  return payloadsOf(ps, type)[0]
}

/** §2.5: an unknown payload with the critical bit set rejects the message; the type goes into N(UNSUPPORTED_CRITICAL_PAYLOAD). */
export class CriticalPayloadError extends CodecError {
  constructor(readonly payloadType: number) {
    super('UNSUPPORTED_CRITICAL_PAYLOAD', `unknown critical payload type ${payloadType}`)
  }
}

/** No real message carries more (strongSwan's IKE_AUTH with CP, TS and notifies has ~15). */
export const MAX_PAYLOADS = 64

function decodeBody(type: number, critical: boolean, body: Buffer, inner: number): Payload {
  const c = critical ? {critical} : {}
  switch (type) {
    case P.SA: return {type, ...c, ...decodeSa(body)}
    case P.KE: return {type, ...c, ...decodeKe(body)}
    case P.IDi:
    case P.IDr: return {type, ...c, ...decodeId(body)}
    case P.CERT:
    case P.CERTREQ: return {type, ...c, ...decodeCert(body, type === P.CERT ? 'CERT' : 'CERTREQ')}
    case P.AUTH: return {type, ...c, ...decodeAuth(body)}
    case P.NONCE: return {type, ...c, ...decodeNonce(body)}
    case P.N: return {type, ...c, ...decodeNotify(body)}
    case P.D: return {type, ...c, ...decodeDelete(body)}
    case P.V: return {type, ...c, data: Buffer.from(body)}
    case P.TSi:
    case P.TSr: return {type, ...c, ...decodeTs(body)}
    case P.CP: return {type, ...c, ...decodeCp(body)}
    case P.SK: return {type, ...c, inner, data: Buffer.from(body)}
    case P.SKF: return {type, ...c, ...decodeSkf(body, inner)}
    default:
      if (critical) throw new CriticalPayloadError(type)
      return {type, unknown: true, data: Buffer.from(body)}
  }
}

function encodeBody(p: Payload): Buffer {
  if ('unknown' in p) return p.data
  switch (p.type) {
    case P.SA: return encodeSa(p)
    case P.KE: return encodeKe(p)
    case P.IDi:
    case P.IDr: return encodeId(p)
    case P.CERT:
    case P.CERTREQ: return encodeCert(p)
    case P.AUTH: return encodeAuth(p)
    case P.NONCE: return encodeNonce(p)
    case P.N: return encodeNotify(p)
    case P.D: return encodeDelete(p)
    case P.V: return p.data
    case P.TSi:
    case P.TSr: return encodeTs(p)
    case P.CP: return encodeCp(p)
    case P.SK: return p.data
    case P.SKF: return encodeSkf(p)
  }
}

export interface DecodeChainOptions {
  /** Decoding the inside of an SK: no SK/SKF may appear (no nesting). */
  inner?: boolean
}

/**
 * Decodes the payload chain in buf[off, end) starting with type `first`. SK and SKF end the chain
 * (§3.14: the Encrypted payload is the last one); their next-payload field names the first inner
 * payload. Bytes after the last payload are an error.
 */
export function decodeChain(buf: Buffer, off: number, end: number, first: number, opts: DecodeChainOptions = {}): Payload[] {
  const out: Payload[] = []
  let type = first
  while (type !== P.NONE) {
    if (out.length >= MAX_PAYLOADS) throw new CodecError('LIMIT', `more than ${MAX_PAYLOADS} payloads`)
    need(buf, off, 4, `${PAYLOAD_NAMES[type] ?? type} payload`)
    const next = buf[off]
    const critical = (buf[off + 1] & 0x80) !== 0
    const len = buf.readUInt16BE(off + 2)
    if (len < 4 || off + len > end) throw new CodecError('LENGTH', `${PAYLOAD_NAMES[type] ?? type} payload: length ${len}, ${end - off} bytes left`)
    const encrypted = type === P.SK || type === P.SKF
    if (encrypted && opts.inner) throw new CodecError('NESTED', 'an encrypted payload inside an encrypted payload')
    out.push(decodeBody(type, critical, buf.subarray(off + 4, off + len), next))
    off += len
    if (encrypted) {
      if (off !== end) throw new CodecError('BAD_SK', 'payloads after the encrypted payload')
      return out
    }
    type = next
  }
  if (off !== end) throw new CodecError('LENGTH', `${end - off} bytes after the last payload`)
  return out
}

/** Encodes a payload chain; returns the bytes and the type of the first payload (for the header or SK). */
export function encodeChain(ps: readonly Payload[]): {first: number; bytes: Buffer} {
  if (ps.length > MAX_PAYLOADS) throw new CodecError('LIMIT', `more than ${MAX_PAYLOADS} payloads`)
  const parts: Buffer[] = []
  ps.forEach((p, i) => {
    const encrypted = p.type === P.SK || p.type === P.SKF
    if (encrypted && i !== ps.length - 1) throw new CodecError('BAD_SK', 'the encrypted payload must be the last one')
    const body = encodeBody(p)
    if (body.length + 4 > 0xffff) throw new CodecError('LENGTH', `${PAYLOAD_NAMES[p.type] ?? p.type} payload too long`)
    const h = Buffer.alloc(4)
    h[0] = encrypted ? (p as SkBody).inner : i + 1 < ps.length ? ps[i + 1].type : P.NONE
    h[1] = p.critical ? 0x80 : 0
    h.writeUInt16BE(body.length + 4, 2)
    parts.push(h, body)
  })
  return {first: ps.length ? ps[0].type : P.NONE, bytes: Buffer.concat(parts)}
}
