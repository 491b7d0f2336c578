import {createHmac, timingSafeEqual} from 'node:crypto'
import {TunkitError} from '../../lib/errors.js'
import {DATA_DIGEST_OFFSET, decodeData, encodeData} from '../codec/data-frame.js'

/** HMAC-SHA-256, truncated to 128 bits as in IPsec's HMAC-SHA-256-128 (RFC 4868). */
export const DIGEST_LEN = 16
export const DATA_EXPORTER_LABEL = 'EXPORTER-tunkit-data'

export class IntegrityError extends TunkitError {
  override name = 'IntegrityError'
  constructor(message: string) {
    super('TK_INTEGRITY_FAILURE', message)
  }
}

/**
 * The digest of (datagram ‖ u64 counter), written to or checked against buf[off, off+16), for one
 * direction's key. The I/O side picks the implementation (tunnel/io/data-mac.ts: the native addon's,
 * or referenceMac without it), so this file never loads the addon.
 */
export interface Mac {
  sign(datagram: Buffer, counter: number, buf: Buffer, off: number): void
  check(datagram: Buffer, counter: number, buf: Buffer, off: number): boolean
}

/** The reference construction, and the fallback when the native addon is missing. */
export function referenceDigest(key: Buffer, datagram: Buffer, counter: number): Buffer {
  const c = Buffer.alloc(8)
  c.writeBigUInt64BE(BigInt(counter))
  return createHmac('sha256', key).update(datagram).update(c).digest().subarray(0, DIGEST_LEN)
}

export function referenceMac(key: Buffer): Mac {
  return {
    sign: (d, c, b, o) => void referenceDigest(key, d, c).copy(b, o),
    check: (d, c, b, o) => timingSafeEqual(referenceDigest(key, d, c), b.subarray(o, o + DIGEST_LEN)),
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

  frame(protocol: number, datagram: Buffer): Buffer {
    const f = encodeData({protocol, flags: 0, digest: BLANK_DIGEST, datagram, padding: 0})
    this.mac.sign(datagram, this.counter++, f, DATA_DIGEST_OFFSET)
    return f
  }
}

export class DataReceiver {
  private counter = 0

  constructor(private readonly mac: Mac) {}

  /** Returns the datagram, or throws IntegrityError (or CodecError for a malformed frame). */
  open(body: Buffer): {protocol: number; datagram: Buffer} {
    const f = decodeData(body)
    if (f.digest.length !== DIGEST_LEN || !this.mac.check(f.datagram, this.counter, f.digest, 0)) {
      throw new IntegrityError(`DATA frame ${this.counter} failed its integrity check (altered, replayed or out of order)`)
    }
    this.counter++
    return {protocol: f.protocol, datagram: f.datagram}
  }
}

/** Both directions' keys from one TLS exporter value (RFC 8446 section 7.5): 64 bytes, portal's first. */
export function splitKeys(exported: Buffer, role: 'portal' | 'gate'): {send: Buffer; receive: Buffer} {
  if (exported.length !== 64) throw new Error('need 64 exported bytes')
  const portalToGate = exported.subarray(0, 32)
  const gateToPortal = exported.subarray(32, 64)
  return role === 'portal' ? {send: portalToGate, receive: gateToPortal} : {send: gateToPortal, receive: portalToGate}
}
