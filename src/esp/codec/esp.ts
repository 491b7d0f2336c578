import * as crypto from 'node:crypto'
import {CodecError} from '../../lib/errors.js'
import {Encr, Integ} from '../../ike/codec/constants.js'

/**
 * ESP packets (RFC 4303) as tunkit sends them: tunnel mode, 32-bit sequence numbers (no ESN), in
 * UDP (RFC 3948). This is the reference implementation, with node:crypto, that tests hold the
 * native engine (native/esp.c) to, and the reader of the trace; the engine does the per-packet work.
 *
 *   SPI (4) | sequence (4) | IV | ciphertext of [payload | padding 1, 2, 3… | pad length | next header] | ICV
 */

export const NextHeader = {IPV4: 4, DUMMY: 59} as const

/** A CHILD_SA's ESP transforms: the IKEv2 transform IDs (src/ike/codec/constants.ts). */
export interface EspSuite {
  encr: number
  encrKeyBits?: number
  integ?: number
}

export interface EspSuiteInfo {
  aead: boolean
  /** node:crypto's cipher name. */
  cipher: string
  /** Bytes of encryption key material, the AEAD salt (4 bytes, at the end) included. */
  keyLen: number
  ivLen: number
  icvLen: number
  /** What [payload | padding | pad length | next header] must fill: 4-byte words for AEAD (§2.4), the cipher block for CBC. */
  block: number
  hash?: string
  integKeyLen: number
}

const HMAC: Readonly<Record<number, {hash: string; keyLen: number; icvLen: number}>> = {
  [Integ.HMAC_SHA1_96]: {hash: 'sha1', keyLen: 20, icvLen: 12},
  [Integ.HMAC_SHA2_256_128]: {hash: 'sha256', keyLen: 32, icvLen: 16}, // RFC 4868 §2.3: half the hash
  [Integ.HMAC_SHA2_384_192]: {hash: 'sha384', keyLen: 48, icvLen: 24},
  [Integ.HMAC_SHA2_512_256]: {hash: 'sha512', keyLen: 64, icvLen: 32},
}

/** The suites the engine implements; anything else is CodecError UNSUPPORTED. */
export function espSuite(s: EspSuite): EspSuiteInfo {
  const bits = s.encrKeyBits ?? 0
  const integ = s.integ ?? Integ.NONE
  const aead = (cipher: string, keyLen: number): EspSuiteInfo => {
    if (integ !== Integ.NONE) throw new CodecError('UNSUPPORTED', 'an AEAD cipher takes no integrity algorithm')
    return {aead: true, cipher, keyLen, ivLen: 8, icvLen: 16, block: 4, integKeyLen: 0}
  }
  if (s.encr === Encr.AES_GCM_16 && (bits === 128 || bits === 256)) return aead(`aes-${bits}-gcm`, bits / 8 + 4) // RFC 4106 §8.1
  if (s.encr === Encr.CHACHA20_POLY1305 && (bits === 0 || bits === 256)) return aead('chacha20-poly1305', 36) // RFC 7634 §2
  if (s.encr === Encr.AES_CBC && (bits === 128 || bits === 256)) {
    const h = HMAC[integ]
    if (!h) throw new CodecError('UNSUPPORTED', `AES-CBC with integrity algorithm ${integ} is not supported`)
    return {aead: false, cipher: `aes-${bits}-cbc`, keyLen: bits / 8, ivLen: 16, icvLen: h.icvLen, block: 16, hash: h.hash, integKeyLen: h.keyLen}
  }
  throw new CodecError('UNSUPPORTED', `ESP cipher ${s.encr}/${bits} is not supported`)
}

/** One SA direction's keys, as IKE derives them (src/ike/core/crypto.ts ChildKeys: encI/integI or encR/integR). */
export interface EspKeys {
  suite: EspSuite
  encKey: Buffer
  integKey?: Buffer
}

/** The suite of `k`, whose keys must fit it (CodecError UNSUPPORTED or BAD_KEY). */
export function checkKeys(k: EspKeys): EspSuiteInfo {
  const i = espSuite(k.suite)
  if (k.encKey.length !== i.keyLen || (k.integKey?.length ?? 0) !== i.integKeyLen) throw new CodecError('BAD_KEY', 'the keys do not fit the suite')
  return i
}

export interface SealInput {
  spi: number
  seq: number
  /** The inner packet (tunnel mode: a whole IPv4 packet). */
  payload: Buffer
  nextHeader?: number
  /** Fixed IV (tests); otherwise the sequence number as 64-bit counter for AEAD (RFC 4106 §3.1), random for CBC. */
  iv?: Buffer
  /** Padding bytes beyond the least (a multiple of the block), to test a receiver's padding check. */
  extraPad?: number
  /** Padding contents instead of 1, 2, 3…, and a pad length byte that lies (tests of the receiver's checks). */
  padding?: Buffer
  padLength?: number
}

function aeadNonce(i: EspSuiteInfo, k: EspKeys, iv: Buffer): {key: Buffer; nonce: Buffer} {
  return {key: k.encKey.subarray(0, i.keyLen - 4), nonce: Buffer.concat([k.encKey.subarray(i.keyLen - 4), iv])}
}

/** The default padding (§2.4): 1, 2, 3… */
function defaultPadding(n: number): Buffer {
  return Buffer.from(Array.from({length: n}, (_, j) => j + 1))
}

export function espSeal(k: EspKeys, s: SealInput): Buffer {
  const i = checkKeys(k)
  if (!Number.isInteger(s.seq) || s.seq < 0 || s.seq > 0xffffffff || !Number.isInteger(s.spi) || s.spi < 0 || s.spi > 0xffffffff) throw new CodecError('RANGE', 'SPI or sequence number out of range')
  let iv = s.iv
  if (!iv) {
    iv = i.aead ? Buffer.alloc(8) : crypto.randomBytes(16)
    if (i.aead) iv.writeUInt32BE(s.seq, 4)
  }
  if (iv.length !== i.ivLen) throw new CodecError('BAD_IV', `IV of ${iv.length} bytes, expected ${i.ivLen}`)
  const least = (i.block - ((s.payload.length + 2) % i.block)) % i.block
  const padding = s.padding ?? defaultPadding(least + (s.extraPad ?? 0))
  if (padding.length > 255 || (s.payload.length + padding.length + 2) % i.block) throw new CodecError('BAD_PADDING', 'padding does not fill the block')
  const plain = Buffer.concat([s.payload, padding, Buffer.from([s.padLength ?? padding.length, s.nextHeader ?? NextHeader.IPV4])])
  const head = Buffer.alloc(8)
  head.writeUInt32BE(s.spi, 0)
  head.writeUInt32BE(s.seq, 4)
  if (i.aead) {
    const {key, nonce} = aeadNonce(i, k, iv)
    const c = crypto.createCipheriv(i.cipher as crypto.CipherGCMTypes, key, nonce, {authTagLength: 16})
    c.setAAD(head) // RFC 4106 §5: SPI | sequence number
    const ct = Buffer.concat([c.update(plain), c.final()])
    return Buffer.concat([head, iv, ct, c.getAuthTag()])
  }
  const c = crypto.createCipheriv(i.cipher, k.encKey, iv).setAutoPadding(false)
  const body = Buffer.concat([head, iv, c.update(plain), c.final()])
  const icv = crypto.createHmac(i.hash!, k.integKey!).update(body).digest().subarray(0, i.icvLen)
  return Buffer.concat([body, icv])
}

export interface Opened {
  spi: number
  seq: number
  /** The payload data: the inner packet (and any TFC padding after it, §2.4). */
  payload: Buffer
  nextHeader: number
  iv: Buffer
}

/** SPI and sequence number, unauthenticated (the trace, the replay check before the ICV). */
export function espHeader(packet: Buffer): {spi: number; seq: number} {
  if (packet.length < 8) throw new CodecError('TRUNCATED', `ESP: ${packet.length} bytes, shorter than SPI and sequence number`)
  return {spi: packet.readUInt32BE(0), seq: packet.readUInt32BE(4)}
}

/**
 * Verifies and decrypts a packet; every failure is a CodecError: TRUNCATED or BAD_LENGTH (the
 * layout does not fit the suite), INTEGRITY (the ICV), BAD_PADDING (pad length or the 1, 2, 3…
 * contents). The anti-replay check is the caller's (src/esp/core/replay.ts).
 */
export function espOpen(k: EspKeys, packet: Buffer): Opened {
  const i = checkKeys(k)
  const {spi, seq} = espHeader(packet)
  const ctLen = packet.length - 8 - i.ivLen - i.icvLen
  if (ctLen < 2) throw new CodecError('TRUNCATED', `ESP: ${packet.length} bytes leave no room for the trailer`)
  if (ctLen % i.block) throw new CodecError('BAD_LENGTH', `ESP: ciphertext of ${ctLen} bytes is not whole ${i.block}-byte blocks`)
  const iv = packet.subarray(8, 8 + i.ivLen)
  const ct = packet.subarray(8 + i.ivLen, 8 + i.ivLen + ctLen)
  const icv = packet.subarray(packet.length - i.icvLen)
  let plain: Buffer
  if (i.aead) {
    const {key, nonce} = aeadNonce(i, k, iv)
    const d = crypto.createDecipheriv(i.cipher as crypto.CipherGCMTypes, key, nonce, {authTagLength: 16})
    d.setAAD(packet.subarray(0, 8))
    d.setAuthTag(icv)
    const body = d.update(ct)
    try {
      plain = Buffer.concat([body, d.final()])
    } catch {
      throw new CodecError('INTEGRITY', 'ESP: integrity check failed')
    }
  } else {
    const want = crypto.createHmac(i.hash!, k.integKey!).update(packet.subarray(0, packet.length - i.icvLen)).digest().subarray(0, i.icvLen)
    if (!crypto.timingSafeEqual(want, icv)) throw new CodecError('INTEGRITY', 'ESP: integrity check failed')
    const d = crypto.createDecipheriv(i.cipher, k.encKey, iv).setAutoPadding(false)
    plain = Buffer.concat([d.update(ct), d.final()])
  }
  const padLen = plain[plain.length - 2]
  const nextHeader = plain[plain.length - 1]
  if (padLen + 2 > plain.length) throw new CodecError('BAD_PADDING', `ESP: pad length ${padLen} beyond the plaintext`)
  const end = plain.length - 2 - padLen
  for (let j = 0; j < padLen; j++) if (plain[end + j] !== j + 1) throw new CodecError('BAD_PADDING', 'ESP: padding is not 1, 2, 3…')
  return {spi, seq, payload: plain.subarray(0, end), nextHeader, iv: Buffer.from(iv)}
}

/** What one datagram on the UDP-encapsulation port is (RFC 3948 §2). */
export type Encapsulated =
  | {kind: 'ike'; data: Buffer}
  | {kind: 'keepalive'}
  | {kind: 'esp'; spi: number; seq: number}
  | {kind: 'malformed'}

export function classifyUdp(d: Buffer): Encapsulated {
  if (d.length === 1 && d[0] === 0xff) return {kind: 'keepalive'} // §2.3
  if (d.length >= 4 && d.readUInt32BE(0) === 0) return {kind: 'ike', data: d.subarray(4)} // §2.2 non-ESP marker
  if (d.length < 8) return {kind: 'malformed'} // an ESP header does not fit (SPI 0 is the marker)
  return {kind: 'esp', ...espHeader(d)}
}
