import {CodecError} from '../../lib/errors.js'

/**
 * Encrypted (SK, §3.14) and Encrypted Fragment (SKF, RFC 7383 §2.5) payloads, as the codec sees
 * them: opaque IV || ciphertext || ICV. core/crypto.ts opens and seals them; the SK payload's
 * "next payload" field names the first payload inside.
 */

export interface SkBody {
  /** Type of the first inner payload (for SKF: of the reassembled message, 0 after fragment 1). */
  inner: number
  data: Buffer
}

export interface SkfBody extends SkBody {
  /** 1-based. */
  fragment: number
  total: number
}

/** RFC 7383 leaves the count open; tunkit's own messages need at most a few. */
export const MAX_FRAGMENTS = 64

export function decodeSkf(b: Buffer, inner: number): SkfBody {
  if (b.length < 4) throw new CodecError('TRUNCATED', 'SKF: truncated')
  const fragment = b.readUInt16BE(0)
  const total = b.readUInt16BE(2)
  if (fragment < 1 || fragment > total || total > MAX_FRAGMENTS) throw new CodecError('BAD_SKF', `SKF: fragment ${fragment} of ${total}`)
  if (fragment > 1 && inner !== 0) throw new CodecError('BAD_SKF', 'SKF: only the first fragment names a payload')
  return {inner, fragment, total, data: Buffer.from(b.subarray(4))}
}

export function encodeSkf(f: SkfBody): Buffer {
  const h = Buffer.alloc(4)
  h.writeUInt16BE(f.fragment, 0)
  h.writeUInt16BE(f.total, 2)
  return Buffer.concat([h, f.data])
}
