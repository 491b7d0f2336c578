import {createCipheriv, createHmac, timingSafeEqual} from 'node:crypto'
import {TunkitError} from '../../lib/errors.js'
import {DATA_DIGEST_OFFSET, decodeData, encodeData, writeDataHead} from '../codec/data-frame.js'

/** Every DATA digest is 16 bytes. */
export const DIGEST_LEN = 16
/** What a DATA frame puts in front of its datagram: header, fixed fields and digest. */
export const FRAME_ROOM = DATA_DIGEST_OFFSET + DIGEST_LEN
/**
 * The DATA digests (docs/protocol.md): HMAC-SHA-256 truncated to 128 bits as in IPsec's
 * HMAC-SHA-256-128 (RFC 4868), the default; AES-256-GMAC (RFC 4543's construction, the frame
 * counter as nonce), which both ends use when the portal offers it and the gate accepts.
 */
export type DataMacAlgorithm = 'hmac-sha256-128' | 'aes256-gmac'
export const DATA_MACS: readonly DataMacAlgorithm[] = ['aes256-gmac', 'hmac-sha256-128']
export const DATA_EXPORTER_LABEL = 'EXPORTER-tunkit-data'

export class IntegrityError extends TunkitError {
  override name = 'IntegrityError'
  constructor(message: string) {
    super('TK_INTEGRITY_FAILURE', message)
  }
}

/**
 * The digest of (datagram ‖ u64 counter [‖ u16 flags, when not 0]), written to or checked against
 * buf[off, off+16), for one direction's key. The flags are offload metadata (inet/codec/offload.ts):
 * they change what the receiver's kernel makes of the datagram, so they are covered too. The I/O side picks the implementation (tunnel/io/data-mac.ts: the native addon's,
 * or referenceMac without it), so this file never loads the addon.
 */
export interface Mac {
  sign(datagram: Buffer, counter: number, buf: Buffer, off: number, flags: number): void
  check(datagram: Buffer, counter: number, buf: Buffer, off: number, flags: number): boolean
}

/** The reference constructions, and the fallback when the native addon is missing. */
export function referenceDigest(key: Buffer, datagram: Buffer, counter: number, flags = 0, alg: DataMacAlgorithm = 'hmac-sha256-128'): Buffer {
  const c = Buffer.alloc(flags ? 10 : 8)
  c.writeBigUInt64BE(BigInt(counter))
  if (flags) c.writeUInt16BE(flags, 8)
  if (alg === 'aes256-gmac') {
    const g = createCipheriv('aes-256-gcm', key, Buffer.concat([Buffer.alloc(4), c.subarray(0, 8)]))
    g.setAAD(Buffer.concat([datagram, c.subarray(8)]))
    g.final()
    return g.getAuthTag()
  }
  return createHmac('sha256', key).update(datagram).update(c).digest().subarray(0, DIGEST_LEN)
}

export function referenceMac(key: Buffer, alg: DataMacAlgorithm = 'hmac-sha256-128'): Mac {
  return {
    sign: (d, c, b, o, f) => void referenceDigest(key, d, c, f, alg).copy(b, o),
    check: (d, c, b, o, f) => timingSafeEqual(referenceDigest(key, d, c, f, alg), b.subarray(o, o + DIGEST_LEN)),
  }
}

const BLANK_DIGEST = Buffer.alloc(DIGEST_LEN)

/**
 * One direction's DATA frames (seed 000, Fig. 9): the digest covers the datagram and the count of
 * frames sent so far on this tunnel. The count is never transmitted, so a replayed, dropped,
 * reordered or altered frame fails the check, and the tunnel is closed (CLOSE integrity-failure).
 */
export class DataSender {
  private counter = 0

  constructor(private readonly mac: Mac) {}

  frame(protocol: number, datagram: Buffer, flags = 0): Buffer {
    const f = encodeData({protocol, flags, digest: BLANK_DIGEST, datagram, padding: 0})
    this.mac.sign(datagram, this.counter++, f, DATA_DIGEST_OFFSET, flags)
    return f
  }

  /**
   * The same frame, built around the datagram in the FRAME_ROOM bytes in front of it: no copy of a
   * 64 KiB super-packet. The caller vouches that those bytes belong to the datagram's buffer and
   * hold nothing else (the TUN reader leaves them: lib/io/tun.ts).
   */
  frameInPlace(protocol: number, datagram: Buffer, flags = 0): Buffer {
    if (datagram.byteOffset < FRAME_ROOM) throw new RangeError('no room in front of the datagram')
    const f = Buffer.from(datagram.buffer, datagram.byteOffset - FRAME_ROOM, FRAME_ROOM + datagram.length)
    writeDataHead(f, protocol, flags, DIGEST_LEN, datagram.length)
    this.mac.sign(datagram, this.counter++, f, DATA_DIGEST_OFFSET, flags)
    return f
  }
}

export class DataReceiver {
  private counter = 0

  constructor(private readonly mac: Mac) {}

  /** Returns the datagram, or throws IntegrityError (or CodecError for a malformed frame). */
  open(body: Buffer): {protocol: number; flags: number; datagram: Buffer} {
    const f = decodeData(body)
    if (f.digest.length !== DIGEST_LEN || !this.mac.check(f.datagram, this.counter, f.digest, 0, f.flags)) {
      throw new IntegrityError(`DATA frame ${this.counter} failed its integrity check (altered, replayed or out of order)`)
    }
    this.counter++
    return {protocol: f.protocol, flags: f.flags, datagram: f.datagram}
  }
}

/** Both directions' keys from one TLS exporter value (RFC 8446 section 7.5): 64 bytes, portal's first. */
export function splitKeys(exported: Buffer, role: 'portal' | 'gate'): {send: Buffer; receive: Buffer} {
  if (exported.length !== 64) throw new Error('need 64 exported bytes')
  const portalToGate = exported.subarray(0, 32)
  const gateToPortal = exported.subarray(32, 64)
  return role === 'portal' ? {send: portalToGate, receive: gateToPortal} : {send: gateToPortal, receive: portalToGate}
}
