import * as crypto from 'node:crypto'
import {CodecError} from '../../lib/errors.js'
import {AuthMethod, DhGroup, Encr, Integ, PayloadType, Prf} from '../codec/constants.js'
import {encodeId, type IdBody} from '../codec/id.js'
import {decodeMessage, decodeInner, encodeInner, encodeMessage, type IkeMessage} from '../codec/message.js'
import type {Payload} from '../codec/payload.js'

/**
 * IKEv2 cryptography (RFC 7296 §2.13 to §2.18, §3.14): PRFs and prf+, the IKE_SA and CHILD_SA
 * keys, Diffie-Hellman, SK protection and AUTH. Pure: node:crypto only, no I/O.
 *
 * Cipher and HMAC objects are made per message, which is fine at IKE's message rate. ESP must
 * not do this per packet: it keeps one context per SA (issue 11, item 7).
 */

// ---- PRF and prf+ ----

const PRF_HASH: Readonly<Record<number, string>> = {[Prf.HMAC_SHA1]: 'sha1', [Prf.HMAC_SHA2_256]: 'sha256', [Prf.HMAC_SHA2_384]: 'sha384', [Prf.HMAC_SHA2_512]: 'sha512'}
const HASH_LEN: Readonly<Record<string, number>> = {sha1: 20, sha256: 32, sha384: 48, sha512: 64}

function prfHash(id: number): string {
  const h = PRF_HASH[id]
  if (!h) throw new CodecError('UNSUPPORTED', `PRF ${id} is not supported`)
  return h
}

/** The PRF's output length, which is also its key length for SK_d/SK_pi/SK_pr (§2.14). */
export function prfLength(id: number): number {
  return HASH_LEN[prfHash(id)]
}

export function prf(id: number, key: Buffer, data: Buffer): Buffer {
  return crypto.createHmac(prfHash(id), key).update(data).digest()
}

/** prf+ (§2.13): T1 | T2 | …, Tn = prf(K, Tn-1 | S | n); at most 255 rounds. */
export function prfPlus(id: number, key: Buffer, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = []
  let t: Buffer = Buffer.alloc(0)
  let have = 0
  for (let n = 1; have < length; n++) {
    if (n > 255) throw new CodecError('LIMIT', 'prf+: more than 255 rounds requested')
    t = prf(id, key, Buffer.concat([t, seed, Buffer.from([n])]))
    out.push(t)
    have += t.length
  }
  return Buffer.concat(out).subarray(0, length)
}

// ---- algorithms and key lengths ----

/** One negotiated set: what a proposal of single transforms amounts to. */
export interface Suite {
  encr: number
  /** Bits; ChaCha20-Poly1305 has none on the wire (always 256). */
  encrKeyBits?: number
  /** Absent or Integ.NONE for AEAD ciphers. */
  integ?: number
  /** IKE only. */
  prf?: number
  /** Absent or DhGroup.NONE when there is no (PFS) exchange. */
  dh?: number
}

interface CipherInfo {
  aead: boolean
  /** Key bytes taken from the key material, salt included (RFC 5282 §7.1, RFC 7634 §2). */
  keyLen: number
  ivLen: number
  /** What the plaintext + pad length byte must fill: the AEAD ciphers need no alignment in IKE (RFC 5282 §3, RFC 7634 §3). */
  block: number
  name: string
}

export function cipherInfo(s: Pick<Suite, 'encr' | 'encrKeyBits'>): CipherInfo {
  const bits = s.encrKeyBits ?? 0
  switch (s.encr) {
    case Encr.AES_GCM_16:
      if (bits !== 128 && bits !== 256) break
      return {aead: true, keyLen: bits / 8 + 4, ivLen: 8, block: 1, name: `aes-${bits}-gcm`}
    case Encr.CHACHA20_POLY1305:
      if (bits !== 0 && bits !== 256) break
      return {aead: true, keyLen: 36, ivLen: 8, block: 1, name: 'chacha20-poly1305'}
    case Encr.AES_CBC:
      if (bits !== 128 && bits !== 256) break
      return {aead: false, keyLen: bits / 8, ivLen: 16, block: 16, name: `aes-${bits}-cbc`}
  }
  throw new CodecError('UNSUPPORTED', `cipher ${s.encr}/${bits} is not supported`)
}

interface IntegInfo {
  hash: string
  keyLen: number
  /** RFC 4868 truncation (and HMAC-SHA1-96). */
  icvLen: number
}

const INTEG: Readonly<Record<number, IntegInfo>> = {
  [Integ.HMAC_SHA1_96]: {hash: 'sha1', keyLen: 20, icvLen: 12},
  [Integ.HMAC_SHA2_256_128]: {hash: 'sha256', keyLen: 32, icvLen: 16},
  [Integ.HMAC_SHA2_384_192]: {hash: 'sha384', keyLen: 48, icvLen: 24},
  [Integ.HMAC_SHA2_512_256]: {hash: 'sha512', keyLen: 64, icvLen: 32},
}

export function integInfo(id: number | undefined): IntegInfo | undefined {
  if (id === undefined || id === Integ.NONE) return undefined
  const i = INTEG[id]
  if (!i) throw new CodecError('UNSUPPORTED', `integrity algorithm ${id} is not supported`)
  return i
}

// ---- IKE_SA keys (§2.14, §2.18) ----

export interface IkeKeys {
  skD: Buffer
  skAi: Buffer
  skAr: Buffer
  skEi: Buffer
  skEr: Buffer
  skPi: Buffer
  skPr: Buffer
}

/** SKEYSEED = prf(Ni | Nr, g^ir) (§2.14; HMAC PRFs take the whole nonces as key). */
export function skeyseed(prfId: number, ni: Buffer, nr: Buffer, dhSecret: Buffer): Buffer {
  return prf(prfId, Buffer.concat([ni, nr]), dhSecret)
}

/** A rekeyed IKE_SA's SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (§2.18). */
export function rekeySkeyseed(oldPrfId: number, oldSkD: Buffer, dhSecret: Buffer, ni: Buffer, nr: Buffer): Buffer {
  return prf(oldPrfId, oldSkD, Buffer.concat([dhSecret, ni, nr]))
}

/** {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr). */
export function deriveIkeKeys(s: Suite, seed: Buffer, ni: Buffer, nr: Buffer, spiI: Buffer, spiR: Buffer): IkeKeys {
  const p = s.prf ?? 0
  const pl = prfLength(p)
  const el = cipherInfo(s).keyLen
  const il = integInfo(s.integ)?.keyLen ?? 0
  const km = prfPlus(p, seed, Buffer.concat([ni, nr, spiI, spiR]), 3 * pl + 2 * el + 2 * il)
  let off = 0
  const take = (n: number): Buffer => km.subarray(off, (off += n))
  return {skD: take(pl), skAi: take(il), skAr: take(il), skEi: take(el), skEr: take(el), skPi: take(pl), skPr: take(pl)}
}

export interface ChildKeys {
  /** Initiator to responder. */
  encI: Buffer
  integI: Buffer
  /** Responder to initiator. */
  encR: Buffer
  integR: Buffer
}

/**
 * CHILD_SA KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (§2.17): the initiator-to-responder keys
 * first, encryption before integrity in each direction.
 */
export function deriveChildKeys(prfId: number, skD: Buffer, s: Suite, ni: Buffer, nr: Buffer, dhSecret?: Buffer): ChildKeys {
  const el = cipherInfo(s).keyLen
  const il = integInfo(s.integ)?.keyLen ?? 0
  const km = prfPlus(prfId, skD, Buffer.concat([dhSecret ?? Buffer.alloc(0), ni, nr]), 2 * (el + il))
  return {encI: km.subarray(0, el), integI: km.subarray(el, el + il), encR: km.subarray(el + il, 2 * el + il), integR: km.subarray(2 * el + il)}
}

// ---- Diffie-Hellman (RFC 3526, 5903, 8031) ----

export interface KeyExchange {
  group: number
  /** Our KE payload data: MODP g^x padded to the prime's length, ECP x || y, X25519 the u coordinate. */
  publicKey: Buffer
  /** The shared secret from the peer's KE data; throws CodecError on a value that is not a valid key. */
  computeSecret(peer: Buffer): Buffer
}

const MODP: Readonly<Record<number, [string, number]>> = {[DhGroup.MODP_2048]: ['modp14', 256], [DhGroup.MODP_3072]: ['modp15', 384]}
const ECP: Readonly<Record<number, [string, number]>> = {[DhGroup.ECP_256]: ['prime256v1', 32], [DhGroup.ECP_384]: ['secp384r1', 48]}

export const DH_GROUPS: readonly number[] = [DhGroup.CURVE25519, DhGroup.ECP_384, DhGroup.ECP_256, DhGroup.MODP_3072, DhGroup.MODP_2048]

/**
 * CSPRNG bytes, each handed out once, copied from a 4 KB pool refilled when spent: a handshake
 * draws a dozen small values (SPIs, nonces, IVs, jitter), and each `randomBytes` call cost about
 * 5 µs of overhead (4 % of a gateway's time under a handshake load).
 */
const POOL = Buffer.allocUnsafeSlow(4096)
let poolAt = POOL.length

export function pooledRandom(n: number): Buffer {
  if (n > POOL.length) return crypto.randomFillSync(Buffer.allocUnsafeSlow(n))
  if (poolAt + n > POOL.length) {
    crypto.randomFillSync(POOL)
    poolAt = 0
  }
  const out = Buffer.allocUnsafeSlow(n)
  POOL.copy(out, 0, poolAt, poolAt + n)
  POOL.fill(0, poolAt, poolAt + n)
  poolAt += n
  return out
}

/** The length of a group's KE data, so a wrong length is refused before any arithmetic. */
export function keLength(group: number): number {
  if (group === DhGroup.CURVE25519) return 32
  if (MODP[group]) return MODP[group][1]
  if (ECP[group]) return 2 * ECP[group][1]
  throw new CodecError('UNSUPPORTED', `DH group ${group} is not supported`)
}

function badKe(group: number, why: string): CodecError {
  return new CodecError('BAD_KE', `KE of group ${group}: ${why}`)
}

export function createKeyExchange(group: number): KeyExchange {
  const len = keLength(group)
  const check = (peer: Buffer): void => {
    if (peer.length !== len) throw badKe(group, `${peer.length} bytes, expected ${len}`)
  }
  if (group === DhGroup.CURVE25519) {
    // The public value is encoded inside the key generation, never exported from the KeyObject
    // afterwards: Node 20 can deadlock when a GC lands inside a later JWK export of a generated
    // X25519 key (test/ike/core/crypto.test.ts, "no deadlock"). DER would be safe but 80 µs slower.
    const {privateKey, publicKey} = crypto.generateKeyPairSync('x25519', {publicKeyEncoding: {format: 'jwk'}})
    return {
      group,
      publicKey: Buffer.from((publicKey as unknown as crypto.JsonWebKey).x as string, 'base64url'),
      computeSecret(peer) {
        check(peer)
        let secret: Buffer
        try {
          const pub = crypto.createPublicKey({key: {kty: 'OKP', crv: 'X25519', x: peer.toString('base64url')}, format: 'jwk'})
          secret = crypto.diffieHellman({privateKey, publicKey: pub})
        } catch {
          throw badKe(group, 'not a valid public key')
        }
        // RFC 8031 §2.3: an all-zero result means a low-order point.
        if (secret.every((x) => x === 0)) throw badKe(group, 'low-order point')
        return secret
      },
    }
  }
  if (ECP[group]) {
    const ecdh = crypto.createECDH(ECP[group][0])
    ecdh.generateKeys()
    return {
      group,
      publicKey: ecdh.getPublicKey().subarray(1), // RFC 5903 §7: x || y, without the 0x04 point format byte
      computeSecret(peer) {
        check(peer)
        try {
          return ecdh.computeSecret(Buffer.concat([Buffer.from([4]), peer])) // the x coordinate (RFC 5903 §9)
        } catch {
          throw badKe(group, 'not a point on the curve')
        }
      },
    }
  }
  const dh = crypto.getDiffieHellman(MODP[group][0])
  dh.generateKeys()
  const pad = (b: Buffer): Buffer => (b.length >= len ? b : Buffer.concat([Buffer.alloc(len - b.length), b]))
  const p = BigInt('0x' + dh.getPrime('hex'))
  return {
    group,
    publicKey: pad(dh.getPublicKey()),
    computeSecret(peer) {
      check(peer)
      // RFC 7296 §2.12 via RFC 6989: 1 < y < p - 1, or the secret is predictable.
      const y = BigInt('0x' + peer.toString('hex'))
      if (y <= 1n || y >= p - 1n) throw badKe(group, 'public value out of range')
      try {
        return pad(dh.computeSecret(peer))
      } catch {
        throw badKe(group, 'not a valid public value')
      }
    },
  }
}

// ---- SK payload protection (§3.14, RFC 5282, RFC 7634) ----

/** One direction's SK keys: SK_ei/SK_ai for the initiator's messages, SK_er/SK_ar for the responder's. */
export interface SkKeys {
  suite: Suite
  enc: Buffer
  integ?: Buffer
}

/** The keys for the messages each side sends. */
export function skKeys(s: Suite, k: IkeKeys): {initiator: SkKeys; responder: SkKeys} {
  const withInteg = integInfo(s.integ) !== undefined
  return {
    initiator: {suite: s, enc: k.skEi, ...(withInteg ? {integ: k.skAi} : {})},
    responder: {suite: s, enc: k.skEr, ...(withInteg ? {integ: k.skAr} : {})},
  }
}

const AEAD_TAG = 16

/** IV and ICV around the ciphertext, for a caller sizing fragments. */
export function skOverhead(s: Suite): {iv: number; icv: number; block: number} {
  const c = cipherInfo(s)
  return {iv: c.ivLen, icv: c.aead ? AEAD_TAG : integInfo(s.integ)!.icvLen, block: c.block}
}

function aeadNonce(c: CipherInfo, key: Buffer, iv: Buffer): {k: Buffer; nonce: Buffer} {
  const k = key.subarray(0, c.keyLen - 4)
  return {k, nonce: Buffer.concat([key.subarray(c.keyLen - 4), iv])}
}

function checkKeys(k: SkKeys, c: CipherInfo): IntegInfo | undefined {
  const ii = c.aead ? undefined : integInfo(k.suite.integ)
  if (k.enc.length !== c.keyLen || (!c.aead && (!ii || k.integ?.length !== ii.keyLen))) throw new CodecError('BAD_KEY', 'SK keys do not fit the suite')
  return ii
}

export interface Opened {
  message: IkeMessage
  /** The SK or SKF payload as received. */
  encrypted: Extract<Payload, {type: typeof PayloadType.SK | typeof PayloadType.SKF}>
  /** The inner bytes without padding (decodeInner or joinFragments decode them). */
  plain: Buffer
  /** The padding as sent (without the pad length byte), to re-seal byte-exact. */
  padding: Buffer
  iv: Buffer
}

/**
 * Checks and decrypts the SK or SKF payload of a whole message. Every failure (malformed, wrong
 * length, integrity, padding) is a CodecError; code INTEGRITY means the ICV did not verify.
 */
export function openProtected(raw: Buffer, k: SkKeys): Opened {
  const message = decodeMessage(raw)
  const last = message.payloads[message.payloads.length - 1]
  if (!last || (last.type !== PayloadType.SK && last.type !== PayloadType.SKF) || 'unknown' in last) throw new CodecError('BAD_SK', 'no encrypted payload')
  const c = cipherInfo(k.suite)
  const ii = checkKeys(k, c)
  const icvLen = c.aead ? AEAD_TAG : ii!.icvLen
  const data = last.data
  if (data.length < c.ivLen + icvLen + 1) throw new CodecError('TRUNCATED', 'SK: shorter than IV and ICV')
  const ivStart = raw.length - data.length
  const iv = data.subarray(0, c.ivLen)
  const ct = data.subarray(c.ivLen, data.length - icvLen)
  const icv = data.subarray(data.length - icvLen)
  let plain: Buffer
  if (c.aead) {
    const {k: key, nonce} = aeadNonce(c, k.enc, iv)
    const d = crypto.createDecipheriv(c.name as crypto.CipherGCMTypes, key, nonce, {authTagLength: AEAD_TAG})
    d.setAAD(raw.subarray(0, ivStart))
    d.setAuthTag(icv)
    const body = d.update(ct)
    try {
      plain = Buffer.concat([body, d.final()])
    } catch {
      throw new CodecError('INTEGRITY', 'SK: integrity check failed')
    }
  } else {
    const mac = crypto.createHmac(ii!.hash, k.integ!).update(raw.subarray(0, raw.length - icvLen)).digest().subarray(0, icvLen)
    if (!crypto.timingSafeEqual(mac, icv)) throw new CodecError('INTEGRITY', 'SK: integrity check failed')
    if (ct.length % c.block) throw new CodecError('BAD_PADDING', 'SK: ciphertext is not whole blocks')
    const d = crypto.createDecipheriv(c.name, k.enc, iv).setAutoPadding(false)
    plain = Buffer.concat([d.update(ct), d.final()])
  }
  const padLen = plain[plain.length - 1]
  if (padLen + 1 > plain.length) throw new CodecError('BAD_PADDING', `SK: pad length ${padLen} beyond the plaintext`)
  const end = plain.length - 1 - padLen
  return {message, encrypted: last, plain: plain.subarray(0, end), padding: plain.subarray(end, plain.length - 1), iv: Buffer.from(iv)}
}

/** Opens an SK message and decodes the inner payloads. */
export function openSk(raw: Buffer, k: SkKeys): Opened & {inner: Payload[]} {
  const o = openProtected(raw, k)
  if (o.encrypted.type !== PayloadType.SK) throw new CodecError('BAD_SK', 'a fragment (SKF), not an SK payload')
  return {...o, inner: decodeInner(o.plain, o.encrypted.inner)}
}

/**
 * The inner payloads of a fragmented message (RFC 7383 §2.6) from its opened SKF fragments, in
 * any order: all of them, each once, agreeing on the total. The caller bounds how many it keeps.
 */
export function joinFragments(fragments: readonly Opened[]): Payload[] {
  const skf = fragments.map((f) => f.encrypted)
  const total = skf[0]?.type === PayloadType.SKF ? skf[0].total : 0
  const byNumber = new Map<number, Buffer>()
  let first: number | undefined
  fragments.forEach((f) => {
    const e = f.encrypted
    if (e.type !== PayloadType.SKF || e.total !== total || byNumber.has(e.fragment)) throw new CodecError('BAD_SKF', 'fragments of different messages, or one twice')
    byNumber.set(e.fragment, f.plain)
    if (e.fragment === 1) first = e.inner
  })
  if (total === 0 || byNumber.size !== total || first === undefined) throw new CodecError('BAD_SKF', `${byNumber.size} of ${total} fragments`)
  return decodeInner(Buffer.concat([...Array(total).keys()].map((i) => byNumber.get(i + 1)!)), first)
}

export interface SealOptions {
  /** Fixed IV (tests re-sealing a capture); otherwise random, which at IKE's message count never repeats in practice. */
  iv?: Buffer
  /** Fixed padding (without the pad length byte); otherwise the least that fills the block, zeros. */
  padding?: Buffer
}

/**
 * Encrypts `plain` into the last payload of `m` (an SK or SKF whose data is ignored) and returns
 * the whole message: AAD / ICV input is the header through the encrypted payload's header.
 */
export function sealProtected(m: IkeMessage, plain: Buffer, k: SkKeys, opts: SealOptions = {}): Buffer {
  const last = m.payloads[m.payloads.length - 1]
  if (!last || (last.type !== PayloadType.SK && last.type !== PayloadType.SKF)) throw new CodecError('BAD_SK', 'the message has no encrypted payload last')
  const c = cipherInfo(k.suite)
  const ii = checkKeys(k, c)
  const icvLen = c.aead ? AEAD_TAG : ii!.icvLen
  const iv = opts.iv ?? pooledRandom(c.ivLen)
  if (iv.length !== c.ivLen) throw new CodecError('BAD_IV', `IV of ${iv.length} bytes, expected ${c.ivLen}`)
  const padding = opts.padding ?? Buffer.alloc((c.block - ((plain.length + 1) % c.block)) % c.block)
  if (padding.length > 255 || (plain.length + padding.length + 1) % c.block) throw new CodecError('BAD_PADDING', 'padding does not fill the block')
  const body = Buffer.concat([plain, padding, Buffer.from([padding.length])])
  const dataLen = c.ivLen + body.length + icvLen
  const raw = encodeMessage({...m, payloads: [...m.payloads.slice(0, -1), {...last, data: Buffer.alloc(dataLen)} as Payload]})
  const ivStart = raw.length - dataLen
  iv.copy(raw, ivStart)
  if (c.aead) {
    const {k: key, nonce} = aeadNonce(c, k.enc, iv)
    const e = crypto.createCipheriv(c.name as crypto.CipherGCMTypes, key, nonce, {authTagLength: AEAD_TAG})
    e.setAAD(raw.subarray(0, ivStart))
    Buffer.concat([e.update(body), e.final(), e.getAuthTag()]).copy(raw, ivStart + c.ivLen)
  } else {
    const e = crypto.createCipheriv(c.name, k.enc, iv).setAutoPadding(false)
    Buffer.concat([e.update(body), e.final()]).copy(raw, ivStart + c.ivLen)
    crypto.createHmac(ii!.hash, k.integ!).update(raw.subarray(0, raw.length - icvLen)).digest().subarray(0, icvLen).copy(raw, raw.length - icvLen)
  }
  return raw
}

/** Seals `inner` into a message whose payloads end with an SK payload (added here). */
export function sealSk(m: Omit<IkeMessage, 'payloads'> & {payloads?: Payload[]}, inner: readonly Payload[], k: SkKeys, opts?: SealOptions): Buffer {
  const {first, bytes} = encodeInner(inner)
  return sealProtected({...m, payloads: [...(m.payloads ?? []), {type: PayloadType.SK, inner: first, data: Buffer.alloc(0)}]}, bytes, k, opts)
}

// ---- AUTH (§2.15, RFC 7427) ----

const KEY_PAD = Buffer.from('Key Pad for IKEv2')

/**
 * The octets an AUTH covers (§2.15): the peer-independent first message of the signer
 * (RealMessage1 or 2), the other side's nonce, and prf(SK_px, ID payload body).
 */
export function signedOctets(prfId: number, realMessage: Buffer, peerNonce: Buffer, skP: Buffer, id: IdBody): Buffer {
  return Buffer.concat([realMessage, peerNonce, prf(prfId, skP, encodeId(id))])
}

/** Shared Key Message Integrity Code: prf(prf(Shared Secret, "Key Pad for IKEv2"), octets). */
export function pskAuth(prfId: number, psk: Buffer, octets: Buffer): Buffer {
  return prf(prfId, prf(prfId, psk, KEY_PAD), octets)
}

/** Constant-time comparison of a received PSK AUTH. */
export function pskAuthMatches(prfId: number, psk: Buffer, octets: Buffer, received: Buffer): boolean {
  const want = pskAuth(prfId, psk, octets)
  return received.length === want.length && crypto.timingSafeEqual(want, received)
}

/** DER helpers for the RFC 7427 AlgorithmIdentifiers (short lengths only: all are < 128 bytes). */
const der = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts)
  return Buffer.concat([Buffer.from([tag, body.length]), body])
}
const oid = (hex: string): Buffer => der(0x06, Buffer.from(hex, 'hex'))
const NULL = Buffer.from('0500', 'hex')
const HASH_OID: Readonly<Record<string, string>> = {sha256: '608648016503040201', sha384: '608648016503040202', sha512: '608648016503040203'}
const rsaPkcs1 = (last: string): Buffer => der(0x30, oid('2a864886f70d0101' + last), NULL)
const ecdsa = (last: string): Buffer => der(0x30, oid('2a8648ce3d0403' + last))
/** RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash (RFC 7427 Appendix A.4.3 for SHA-256). */
const rsaPss = (hash: string): Buffer =>
  der(0x30, oid('2a864886f70d01010a'), der(0x30,
    der(0xa0, der(0x30, oid(HASH_OID[hash]), NULL)),
    der(0xa1, der(0x30, oid('2a864886f70d010108'), der(0x30, oid(HASH_OID[hash]), NULL))),
    der(0xa2, der(0x02, Buffer.from([HASH_LEN[hash]])))))

export type SignatureScheme = 'ecdsa' | 'rsa-pkcs1' | 'rsa-pss'

export interface SignatureAlgorithm {
  name: string
  scheme: SignatureScheme
  hash: string
  /** The DER AlgorithmIdentifier that opens a method-14 AUTH (RFC 7427 §3). */
  der: Buffer
}

export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = [
  {name: 'ecdsa-with-SHA256', scheme: 'ecdsa', hash: 'sha256', der: ecdsa('02')},
  {name: 'ecdsa-with-SHA384', scheme: 'ecdsa', hash: 'sha384', der: ecdsa('03')},
  {name: 'ecdsa-with-SHA512', scheme: 'ecdsa', hash: 'sha512', der: ecdsa('04')},
  {name: 'sha256WithRSAEncryption', scheme: 'rsa-pkcs1', hash: 'sha256', der: rsaPkcs1('0b')},
  {name: 'sha384WithRSAEncryption', scheme: 'rsa-pkcs1', hash: 'sha384', der: rsaPkcs1('0c')},
  {name: 'sha512WithRSAEncryption', scheme: 'rsa-pkcs1', hash: 'sha512', der: rsaPkcs1('0d')},
  {name: 'RSASSA-PSS-SHA256', scheme: 'rsa-pss', hash: 'sha256', der: rsaPss('sha256')},
  {name: 'RSASSA-PSS-SHA384', scheme: 'rsa-pss', hash: 'sha384', der: rsaPss('sha384')},
  {name: 'RSASSA-PSS-SHA512', scheme: 'rsa-pss', hash: 'sha512', der: rsaPss('sha512')},
]

/** Method 14's AUTH data: its AlgorithmIdentifier (known ones only) and the signature. */
export function parseSignatureAuth(data: Buffer): {algorithm: SignatureAlgorithm; signature: Buffer} {
  if (data.length < 1 || data.length < 1 + data[0]) throw new CodecError('TRUNCATED', 'AUTH: AlgorithmIdentifier truncated')
  const id = data.subarray(1, 1 + data[0])
  const algorithm = SIGNATURE_ALGORITHMS.find((a) => a.der.equals(id)) ?? pssVariant(id)
  if (!algorithm) throw new CodecError('UNSUPPORTED', `AUTH: unknown signature algorithm ${id.toString('hex')}`)
  return {algorithm, signature: data.subarray(1 + data[0])}
}

const PSS_PREFIX = Buffer.from('06092a864886f70d01010a', 'hex')

/**
 * RSASSA-PSS parameters come in several encodings (hash AlgorithmIdentifiers with or without NULL,
 * the default trailer field spelled out or not): identified here by the hash OID they name. The
 * salt length need not be known: verification detects it.
 */
function pssVariant(id: Buffer): SignatureAlgorithm | undefined {
  if (id.indexOf(PSS_PREFIX) !== 2) return undefined
  const hash = Object.keys(HASH_OID).find((h) => id.includes(Buffer.from('0609' + HASH_OID[h], 'hex')))
  return hash ? SIGNATURE_ALGORITHMS.find((a) => a.scheme === 'rsa-pss' && a.hash === hash) : undefined
}

/** The classic methods' fixed schemes (RFC 7296 §3.8, RFC 4754). */
const CLASSIC: Readonly<Record<number, Omit<SignatureAlgorithm, 'der' | 'name'>>> = {
  [AuthMethod.RSA_SIG]: {scheme: 'rsa-pkcs1', hash: 'sha1'},
  [AuthMethod.ECDSA_SHA256_P256]: {scheme: 'ecdsa', hash: 'sha256'},
  [AuthMethod.ECDSA_SHA384_P384]: {scheme: 'ecdsa', hash: 'sha384'},
  [AuthMethod.ECDSA_SHA512_P521]: {scheme: 'ecdsa', hash: 'sha512'},
}

function signOpts(a: Pick<SignatureAlgorithm, 'scheme' | 'hash'>, classic: boolean, verify = false): {dsaEncoding?: 'ieee-p1363' | 'der'; padding?: number; saltLength?: number} {
  // RFC 4754 (methods 9-11) signs r || s; RFC 7427 ECDSA carries the DER Ecdsa-Sig-Value.
  if (a.scheme === 'ecdsa') return {dsaEncoding: classic ? 'ieee-p1363' : 'der'}
  if (a.scheme === 'rsa-pss') return {padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: verify ? crypto.constants.RSA_PSS_SALTLEN_AUTO : HASH_LEN[a.hash]}
  return {padding: crypto.constants.RSA_PKCS1_PADDING}
}

/** AUTH data for a certificate method: 1 (RSA), 9-11 (ECDSA) or 14 with `algorithm` (RFC 7427). */
export function signAuth(method: number, key: crypto.KeyObject, octets: Buffer, algorithm?: SignatureAlgorithm): Buffer {
  if (method === AuthMethod.DIGITAL_SIGNATURE) {
    if (!algorithm) throw new CodecError('UNSUPPORTED', 'method 14 needs a signature algorithm')
    const sig = crypto.sign(algorithm.hash, octets, {key, ...signOpts(algorithm, false)})
    return Buffer.concat([Buffer.from([algorithm.der.length]), algorithm.der, sig])
  }
  const a = CLASSIC[method]
  if (!a) throw new CodecError('UNSUPPORTED', `AUTH method ${method} is not a signature method`)
  return crypto.sign(a.hash, octets, {key, ...signOpts(a, true)})
}

/** Verifies a certificate method's AUTH data; false on a bad signature, CodecError on malformed data. */
export function verifyAuth(method: number, key: crypto.KeyObject, octets: Buffer, data: Buffer): boolean {
  let a: Pick<SignatureAlgorithm, 'scheme' | 'hash'>
  let sig = data
  if (method === AuthMethod.DIGITAL_SIGNATURE) ({algorithm: a, signature: sig} = parseSignatureAuth(data))
  else if (CLASSIC[method]) a = CLASSIC[method]
  else throw new CodecError('UNSUPPORTED', `AUTH method ${method} is not a signature method`)
  try {
    return crypto.verify(a.hash, octets, {key, ...signOpts(a, method !== AuthMethod.DIGITAL_SIGNATURE, true)}, sig)
  } catch {
    return false
  }
}
