import {CodecError, need} from '../../lib/errors.js'
import {IKE_MAJOR, IKE_MINOR} from './constants.js'

/** The fixed IKE header (RFC 7296 §3.1): 28 bytes. */
export const HEADER_LEN = 28
/** The largest message tunkit decodes: one UDP datagram. */
export const MAX_MESSAGE = 65535

export interface IkeHeader {
  /** 8 bytes each; the responder's is all zero in the first IKE_SA_INIT request. */
  spiI: Buffer
  spiR: Buffer
  /** Type of the first payload. */
  next: number
  major: number
  minor: number
  exchange: number
  /** Flag bits (Flag.INITIATOR, VERSION, RESPONSE); the other bits are kept as read. */
  flags: number
  messageId: number
  /** The whole message's length in bytes, header included. */
  length: number
}

/**
 * Decodes the header only (no version check), so that a responder can still answer a message of
 * another major version with INVALID_MAJOR_VERSION (§2.5).
 */
export function decodeHeader(buf: Buffer): IkeHeader {
  need(buf, 0, HEADER_LEN, 'IKE header')
  const length = buf.readUInt32BE(24)
  if (length < HEADER_LEN || length > MAX_MESSAGE) throw new CodecError('LENGTH', `IKE header: length ${length} out of range`)
  return {
    spiI: Buffer.from(buf.subarray(0, 8)),
    spiR: Buffer.from(buf.subarray(8, 16)),
    next: buf[16],
    major: buf[17] >> 4,
    minor: buf[17] & 15,
    exchange: buf[18],
    flags: buf[19],
    messageId: buf.readUInt32BE(20),
    length,
  }
}

export function encodeHeader(h: Omit<IkeHeader, 'major' | 'minor'> & {major?: number; minor?: number}): Buffer {
  if (h.spiI.length !== 8 || h.spiR.length !== 8) throw new CodecError('BAD_SPI', 'IKE SPIs are 8 bytes')
  const b = Buffer.alloc(HEADER_LEN)
  h.spiI.copy(b, 0)
  h.spiR.copy(b, 8)
  b[16] = h.next
  b[17] = ((h.major ?? IKE_MAJOR) << 4) | (h.minor ?? IKE_MINOR)
  b[18] = h.exchange
  b[19] = h.flags
  b.writeUInt32BE(h.messageId >>> 0, 20)
  b.writeUInt32BE(h.length, 24)
  return b
}
