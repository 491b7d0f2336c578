import {randomBytes} from 'node:crypto'
import {Encr, Exchange, Integ, Notify, PayloadType as P, TsType} from '../../src/ike/codec/constants.js'
import type {IkeMessage} from '../../src/ike/codec/message.js'
import type {Payload} from '../../src/ike/codec/payload.js'
import type {Proposal, Transform} from '../../src/ike/codec/sa.js'
import type {TrafficSelector} from '../../src/ike/codec/ts.js'
import {cipherInfo, integInfo, type SkKeys, type Suite} from '../../src/ike/core/crypto.js'
import {CodecError} from '../../src/lib/errors.js'
import * as assert from 'uvu/assert'
import {formatIPv6} from '../../src/lib/net/ip.js'
import type {Rng} from '../helpers/fuzz.js'

/** Random well-formed IKEv2 values: every payload family, within the codec's bounds. */

const u8 = (r: Rng): number => r.below(256)
const u16 = (r: Rng): number => r.below(65536)

function transform(r: Rng): Transform {
  const attributes: Transform['attributes'] = []
  if (r.chance(0.4)) attributes.push({type: 14, tv: true, value: r.pick([128, 192, 256, u16(r)])})
  if (r.chance(0.05)) attributes.push({type: 1 + r.below(13), tv: false, data: r.bytes(r.length(8))})
  return {type: r.int(1, 5), id: r.chance(0.8) ? r.int(0, 40) : u16(r), attributes}
}

export function proposal(r: Rng, n: number): Proposal {
  return {number: n, protocol: r.int(1, 3), spi: r.bytes(r.pick([0, 4, 8])), transforms: Array.from({length: r.int(1, 10)}, () => transform(r))}
}

function selector(r: Rng): TrafficSelector {
  const v4 = r.chance(0.7)
  // IPv6 in the codec's own text form (RFC 5952), with zero runs to compress, so decoded values compare equal.
  const ip6 = (): string => formatIPv6(Buffer.concat([...Array(8)].map(() => (r.chance(0.5) ? Buffer.alloc(2) : r.bytes(2)))), 0)
  const addr = (): string => (v4 ? r.ipv4() : ip6())
  return {tsType: v4 ? TsType.IPV4_ADDR_RANGE : TsType.IPV6_ADDR_RANGE, ipProtocol: r.pick([0, 1, 6, 17, u8(r)]), startPort: r.port(), endPort: r.port(), start: addr(), end: addr()}
}

/** Notifies whose data the codec validates get data of the right shape. */
function notify(r: Rng): Payload {
  const type = r.pick([Notify.NAT_DETECTION_SOURCE_IP, Notify.COOKIE, Notify.INVALID_KE_PAYLOAD, Notify.SIGNATURE_HASH_ALGORITHMS, Notify.INITIAL_CONTACT, Notify.REKEY_SA, Notify.ADDITIONAL_IP4_ADDRESS, Notify.AUTHENTICATION_FAILED, 50000 + r.below(1000), r.below(16384)])
  const data: Record<number, () => Buffer> = {
    [Notify.NAT_DETECTION_SOURCE_IP]: () => r.bytes(20),
    [Notify.COOKIE]: () => r.bytes(r.int(1, 64)),
    [Notify.INVALID_KE_PAYLOAD]: () => r.bytes(2),
    [Notify.SIGNATURE_HASH_ALGORITHMS]: () => r.bytes(2 * r.below(6)),
    [Notify.ADDITIONAL_IP4_ADDRESS]: () => r.bytes(4),
    [Notify.INITIAL_CONTACT]: () => Buffer.alloc(0),
    [Notify.REKEY_SA]: () => Buffer.alloc(0),
    [Notify.AUTHENTICATION_FAILED]: () => Buffer.alloc(0),
  }
  // Error types below 16384 the codec does not interpret take any data.
  const known = data[type] ?? (() => (type > 47 || type === 0 ? r.bytes(r.length(40)) : Buffer.alloc(0)))
  return {type: P.N, protocol: type === Notify.REKEY_SA ? 3 : r.pick([0, 1, 3]), spi: type === Notify.REKEY_SA ? r.bytes(4) : r.bytes(r.pick([0, 0, 4, 8])), notify: type, data: known()}
}

/** The payload families, as `payload(r, kind)` generates them. */
export const PAYLOAD_KINDS = ['SA', 'KE', 'ID', 'CERT', 'AUTH', 'NONCE', 'N', 'D', 'V', 'TS', 'CP', 'unknown', 'critical ID'] as const

export function payload(r: Rng, kind = r.below(PAYLOAD_KINDS.length)): Payload {
  switch (kind) {
    case 0: return {type: P.SA, proposals: Array.from({length: r.int(1, 4)}, (_, i) => proposal(r, i + 1))}
    case 1: return {type: P.KE, group: r.pick([14, 19, 31, u16(r)]), data: r.bytes(r.int(1, 300))}
    case 2: return {type: r.pick([P.IDi, P.IDr] as const), idType: r.pick([2, 3, 9, 11]), data: r.bytes(r.int(1, 64))}
    case 3: return {type: r.pick([P.CERT, P.CERTREQ] as const), encoding: r.pick([1, 12, 13]), data: r.bytes(r.length(600))}
    case 4: return {type: P.AUTH, method: r.pick([1, 2, 9, 14, u8(r)]), data: r.bytes(r.int(1, 300))}
    case 5: return {type: P.NONCE, data: r.bytes(r.int(16, 256))}
    case 6: return notify(r)
    case 7: return r.chance(0.5) ? {type: P.D, protocol: 1, spiSize: 0, spis: []} : {type: P.D, protocol: 3, spiSize: 4, spis: Array.from({length: r.int(1, 8)}, () => r.bytes(4))}
    case 8: return {type: P.V, data: r.bytes(r.length(40))}
    case 9: return {type: r.pick([P.TSi, P.TSr] as const), selectors: Array.from({length: r.int(1, 4)}, () => selector(r))}
    case 10: return {type: P.CP, cfgType: r.int(1, 4), attributes: Array.from({length: r.below(6)}, () => r.chance(0.5) ? {type: r.pick([1, 3, 2]), value: r.bytes(r.pick([0, 4]))} : {type: r.pick([13, 7, 16384 + r.below(100)]), value: r.bytes(r.pick([0, 8]))})}
    case 11: return {type: 49 + r.below(3), unknown: true, data: r.bytes(r.length(32))}
    default: return {type: P.IDi, critical: true, idType: 1, data: r.bytes(4)}
  }
}

/** A message; with `encrypted`, its chain ends in an SK or SKF with opaque data. */
export function message(r: Rng, encrypted = r.chance(0.3)): IkeMessage {
  const payloads = Array.from({length: r.below(8)}, () => payload(r))
  if (encrypted) {
    if (r.chance(0.7)) payloads.push({type: P.SK, inner: r.pick([0, P.IDi, P.N, P.D]), data: r.bytes(r.int(1, 200))})
    else {
      const total = r.int(1, 5)
      const fragment = r.int(1, total)
      payloads.push({type: P.SKF, inner: fragment === 1 ? r.pick([P.IDi, 0]) : 0, fragment, total, data: r.bytes(r.int(1, 200))})
    }
  }
  return {spiI: r.bytes(8), spiR: r.bytes(8), exchange: r.pick([Exchange.IKE_SA_INIT, Exchange.IKE_AUTH, Exchange.CREATE_CHILD_SA, Exchange.INFORMATIONAL, u8(r)]), flags: r.pick([0, 8, 0x20, 0x28]), messageId: r.u32(), payloads}
}

/** An inner (decrypted) chain: no SK/SKF. */
export function innerPayloads(r: Rng, max = 8): Payload[] {
  return Array.from({length: r.below(max)}, () => payload(r))
}

/** Every SK suite tunkit supports. */
export const SK_SUITES: readonly Suite[] = [
  {encr: Encr.AES_GCM_16, encrKeyBits: 256},
  {encr: Encr.AES_GCM_16, encrKeyBits: 128},
  {encr: Encr.CHACHA20_POLY1305},
  ...[Integ.HMAC_SHA2_512_256, Integ.HMAC_SHA2_384_192, Integ.HMAC_SHA2_256_128, Integ.HMAC_SHA1_96].flatMap((integ) => [256, 128].map((encrKeyBits) => ({encr: Encr.AES_CBC, encrKeyBits, integ}))),
]

/** Fresh random keys of the right lengths for `suite`. */
export function randomSkKeys(suite: Suite): SkKeys {
  const integ = integInfo(suite.integ)
  return {suite, enc: randomBytes(cipherInfo(suite).keyLen), ...(integ ? {integ: randomBytes(integ.keyLen)} : {})}
}

/** The CodecError code `fn` throws (failing on any other exception), or undefined when it returns. */
export function codecErrorCode(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    assert.instance(e, CodecError)
    return (e as CodecError).code
  }
  return undefined
}
