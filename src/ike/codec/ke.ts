import {CodecError} from '../../lib/errors.js'

/** Key Exchange (§3.4) and Nonce (§3.9) payloads. */

export interface KeBody {
  group: number
  data: Buffer
}

export interface NonceBody {
  data: Buffer
}

/** §3.9: "between 16 and 256 octets". */
export const MIN_NONCE = 16
export const MAX_NONCE = 256

export function decodeKe(b: Buffer): KeBody {
  if (b.length < 4) throw new CodecError('TRUNCATED', 'KE: truncated')
  if (b.length === 4) throw new CodecError('BAD_KE', 'KE: no key exchange data')
  return {group: b.readUInt16BE(0), data: Buffer.from(b.subarray(4))}
}

export function encodeKe(k: KeBody): Buffer {
  const h = Buffer.alloc(4)
  h.writeUInt16BE(k.group, 0)
  return Buffer.concat([h, k.data])
}

export function decodeNonce(b: Buffer): NonceBody {
  if (b.length < MIN_NONCE || b.length > MAX_NONCE) throw new CodecError('BAD_NONCE', `nonce: ${b.length} bytes (16 to 256)`)
  return {data: Buffer.from(b)}
}

export function encodeNonce(n: NonceBody): Buffer {
  if (n.data.length < MIN_NONCE || n.data.length > MAX_NONCE) throw new CodecError('BAD_NONCE', 'nonce: 16 to 256 bytes')
  return n.data
}
