import {CodecError} from '../../lib/errors.js'
import {Flag, IKE_MAJOR, PayloadType} from './constants.js'
import {decodeHeader, encodeHeader, HEADER_LEN, MAX_MESSAGE, type IkeHeader} from './header.js'
import {decodeChain, encodeChain, type Payload} from './payload.js'

/**
 * A whole IKEv2 message: header and payload chain. An SK/SKF payload stays opaque here;
 * core/crypto.ts opens it and decodes the inner chain with decodeInner().
 */
export interface IkeMessage {
  spiI: Buffer
  spiR: Buffer
  exchange: number
  /** Flag bits as sent (Flag.INITIATOR, Flag.RESPONSE…). */
  flags: number
  messageId: number
  /** Minor version as received (0 when sending). */
  minor?: number
  payloads: Payload[]
}

export const isResponse = (m: Pick<IkeMessage, 'flags'>): boolean => (m.flags & Flag.RESPONSE) !== 0
export const fromInitiator = (m: Pick<IkeMessage, 'flags'>): boolean => (m.flags & Flag.INITIATOR) !== 0

/** Decodes one message (a UDP payload without the non-ESP marker). Throws CodecError only. */
export function decodeMessage(buf: Buffer): IkeMessage {
  const h = decodeHeader(buf)
  if (h.major !== IKE_MAJOR) throw new CodecError('VERSION', `IKE major version ${h.major}`)
  if (h.length !== buf.length) throw new CodecError('LENGTH', `IKE header says ${h.length} bytes, the datagram has ${buf.length}`)
  const m: IkeMessage = {spiI: h.spiI, spiR: h.spiR, exchange: h.exchange, flags: h.flags, messageId: h.messageId, payloads: decodeChain(buf, HEADER_LEN, buf.length, h.next)}
  if (h.minor) m.minor = h.minor
  return m
}

export function encodeMessage(m: IkeMessage): Buffer {
  const {first, bytes} = encodeChain(m.payloads)
  const length = HEADER_LEN + bytes.length
  if (length > MAX_MESSAGE) throw new CodecError('LENGTH', `message of ${length} bytes`)
  const h: Omit<IkeHeader, 'major'> = {spiI: m.spiI, spiR: m.spiR, next: first, minor: m.minor ?? 0, exchange: m.exchange, flags: m.flags, messageId: m.messageId, length}
  return Buffer.concat([encodeHeader(h), bytes])
}

/** The inner payload chain of a decrypted SK (without padding): no SK/SKF may nest inside. */
export function decodeInner(plain: Buffer, first: number): Payload[] {
  return decodeChain(plain, 0, plain.length, first, {inner: true})
}

export function encodeInner(ps: readonly Payload[]): {first: number; bytes: Buffer} {
  if (ps.some((p) => p.type === PayloadType.SK || p.type === PayloadType.SKF)) throw new CodecError('NESTED', 'an encrypted payload inside an encrypted payload')
  return encodeChain(ps)
}
