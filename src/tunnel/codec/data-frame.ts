import {CodecError, need} from '../../lib/errors.js'
import {HEADER_LEN} from './frame.js'
import {TunnelType, TUNNEL_VERSION} from './tunnel.js'

/**
 * DATA frame body (seed 000, Fig. 9), after the 8-byte header:
 *   u16 protocol of the datagram (EtherType: 0x0800 IPv4, 0x86DD IPv6, 0x6558 Ethernet)
 *   u16 flags (offload metadata, inet/codec/offload.ts; 0 for a plain datagram)
 *   u16 datagram length
 *   u8  padding length
 *   u8  digest length
 *   digest, datagram, padding
 * The digest is a keyed hash over the datagram and the sender's count of DATA frames so far,
 * which is not transmitted (tunnel/core/data-channel.ts).
 */
export interface DataFrame {
  protocol: number
  flags: number
  digest: Buffer
  datagram: Buffer
  padding: number
}

export const DATA_FIXED = 8
/** Where the digest starts in an encoded frame (so a sender can write it in place). */
export const DATA_DIGEST_OFFSET = HEADER_LEN + DATA_FIXED

/** The whole frame, header included, in one allocation: this runs once per VPN packet. */
export function encodeData(f: DataFrame): Buffer {
  if (f.digest.length > 255 || f.padding > 255) throw new CodecError('TOO_LARGE', 'digest and padding are at most 255 bytes')
  if (f.datagram.length > 0xffff) throw new CodecError('TOO_LARGE', 'datagram over 64 KiB')
  const b = Buffer.allocUnsafe(DATA_DIGEST_OFFSET + f.digest.length + f.datagram.length + f.padding)
  writeDataHead(b, f.protocol, f.flags, f.digest.length, f.datagram.length, f.padding)
  f.digest.copy(b, DATA_DIGEST_OFFSET)
  f.datagram.copy(b, DATA_DIGEST_OFFSET + f.digest.length)
  if (f.padding) b.fill(0, b.length - f.padding)
  return b
}

/** The header and fixed fields of a DATA frame b (b.length is the whole frame), leaving digest, datagram and padding to the caller. */
export function writeDataHead(b: Buffer, protocol: number, flags: number, digestLen: number, datagramLen: number, padding = 0): void {
  if (datagramLen > 0xffff) throw new CodecError('TOO_LARGE', 'datagram over 64 KiB')
  b.writeUInt32BE(b.length - HEADER_LEN, 0)
  b.writeInt16BE(TunnelType.DATA, 4)
  b.writeUInt16BE(TUNNEL_VERSION, 6)
  b.writeUInt16BE(protocol, 8)
  b.writeUInt16BE(flags, 10)
  b.writeUInt16BE(datagramLen, 12)
  b[14] = padding
  b[15] = digestLen
}

export function decodeData(body: Buffer): DataFrame {
  need(body, 0, DATA_FIXED, 'DATA')
  const len = body.readUInt16BE(4)
  const pad = body[6]
  const dlen = body[7]
  if (DATA_FIXED + dlen + len + pad !== body.length) throw new CodecError('BAD_LENGTH', 'DATA lengths do not add up to the frame')
  return {
    protocol: body.readUInt16BE(0),
    flags: body.readUInt16BE(2),
    digest: body.subarray(DATA_FIXED, DATA_FIXED + dlen),
    datagram: body.subarray(DATA_FIXED + dlen, DATA_FIXED + dlen + len),
    padding: pad,
  }
}
