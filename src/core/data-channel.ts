import {createHmac, timingSafeEqual} from 'node:crypto'
import {decodeData, encodeData} from '../codec/data-frame.js'

/** HMAC-SHA-256, truncated to 128 bits as in IPsec's HMAC-SHA-256-128 (RFC 4868). */
export const DIGEST_LEN = 16
export const DATA_EXPORTER_LABEL = 'EXPORTER-tunkit-data'

export class IntegrityError extends Error {}

/**
 * One direction's DATA frames (seed 000, Fig. 9): the digest covers the datagram and the count of
 * frames sent so far on this tunnel. The count is never transmitted, so a replayed, dropped,
 * reordered or altered frame fails the check, and the tunnel is closed (CLOSE integrity-failure).
 */
export class DataSender {
  private counter = 0n

  constructor(private readonly key: Buffer) {}

  frame(protocol: number, datagram: Buffer): Buffer {
    return encodeData({protocol, flags: 0, digest: digest(this.key, datagram, this.counter++), datagram, padding: 0})
  }
}

export class DataReceiver {
  private counter = 0n

  constructor(private readonly key: Buffer) {}

  /** Returns the datagram, or throws IntegrityError (or CodecError for a malformed frame). */
  open(body: Buffer): {protocol: number; datagram: Buffer} {
    const f = decodeData(body)
    const want = digest(this.key, f.datagram, this.counter)
    if (f.digest.length !== DIGEST_LEN || !timingSafeEqual(f.digest, want)) {
      throw new IntegrityError(`DATA frame ${this.counter} failed its integrity check (altered, replayed or out of order)`)
    }
    this.counter++
    return {protocol: f.protocol, datagram: f.datagram}
  }
}

function digest(key: Buffer, datagram: Buffer, counter: bigint): Buffer {
  const c = Buffer.alloc(8)
  c.writeBigUInt64BE(counter)
  return createHmac('sha256', key).update(datagram).update(c).digest().subarray(0, DIGEST_LEN)
}

/** Both directions' keys from one TLS exporter value (RFC 8446 section 7.5): 64 bytes, portal's first. */
export function splitKeys(exported: Buffer, role: 'portal' | 'gate'): {send: Buffer; receive: Buffer} {
  if (exported.length !== 64) throw new Error('need 64 exported bytes')
  const portalToGate = exported.subarray(0, 32)
  const gateToPortal = exported.subarray(32, 64)
  return role === 'portal' ? {send: portalToGate, receive: gateToPortal} : {send: gateToPortal, receive: portalToGate}
}
