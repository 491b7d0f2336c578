import {CodecError} from '../../lib/errors.js'
import {formatIPv4, formatIPv6} from '../../lib/net/ip.js'
import {Notify, ProtocolId} from './constants.js'

/** Notify (§3.10), Delete (§3.11) and Vendor ID (§3.12) payloads. */

export interface NotifyBody {
  /** 0 unless the notify concerns an SA (then IKE or ESP). */
  protocol: number
  spi: Buffer
  notify: number
  data: Buffer
}

export interface DeleteBody {
  protocol: number
  /** 0 for IKE (the SA is the one the message travels on), 4 for ESP/AH. */
  spiSize: number
  spis: Buffer[]
}

export interface VendorBody {
  data: Buffer
}

const MAX_NOTIFY_DATA = 4096

/** What a known notify's data means; undefined for the others (kept as bytes). */
export type NotifyValue =
  | {kind: 'empty'}
  | {kind: 'group'; group: number}
  | {kind: 'hash'; hash: Buffer}
  | {kind: 'cookie'; cookie: Buffer}
  | {kind: 'address'; address: string}
  | {kind: 'hashAlgorithms'; algorithms: number[]}
  | {kind: 'window'; size: number}
  | {kind: 'lifetime'; seconds: number}

const EMPTY = new Set<number>([
  Notify.INITIAL_CONTACT, Notify.MOBIKE_SUPPORTED, Notify.NO_ADDITIONAL_ADDRESSES, Notify.UPDATE_SA_ADDRESSES,
  Notify.MULTIPLE_AUTH_SUPPORTED, Notify.ANOTHER_AUTH_FOLLOWS, Notify.CHILDLESS_IKEV2_SUPPORTED,
  Notify.IKEV2_FRAGMENTATION_SUPPORTED, Notify.USE_TRANSPORT_MODE, Notify.ESP_TFC_PADDING_NOT_SUPPORTED,
  Notify.NON_FIRST_FRAGMENTS_ALSO, Notify.EAP_ONLY_AUTHENTICATION, Notify.REKEY_SA, Notify.NO_PROPOSAL_CHOSEN,
  Notify.AUTHENTICATION_FAILED, Notify.TS_UNACCEPTABLE, Notify.INTERNAL_ADDRESS_FAILURE, Notify.FAILED_CP_REQUIRED,
  Notify.SINGLE_PAIR_REQUIRED, Notify.NO_ADDITIONAL_SAS, Notify.TEMPORARY_FAILURE, Notify.REDIRECT_SUPPORTED,
])

/**
 * Validates and interprets a known notify's data (the types strongSwan 5.9.8 sends and the ones
 * tunkit will send); throws CodecError when the data cannot be what the type says.
 */
export function notifyValue(n: Pick<NotifyBody, 'notify' | 'data'>): NotifyValue | undefined {
  const d = n.data
  const bad = (what: string): never => {
    throw new CodecError('BAD_NOTIFY', `N(${n.notify}): ${what}`)
  }
  if (EMPTY.has(n.notify)) return d.length === 0 ? {kind: 'empty'} : bad('data where none belongs')
  switch (n.notify) {
    case Notify.INVALID_KE_PAYLOAD:
      return d.length === 2 ? {kind: 'group', group: d.readUInt16BE(0)} : bad('a group is 2 bytes')
    case Notify.NAT_DETECTION_SOURCE_IP:
    case Notify.NAT_DETECTION_DESTINATION_IP:
      return d.length === 20 ? {kind: 'hash', hash: d} : bad('a SHA-1 hash is 20 bytes')
    case Notify.COOKIE:
      return d.length >= 1 && d.length <= 64 ? {kind: 'cookie', cookie: d} : bad('a cookie is 1 to 64 bytes')
    case Notify.ADDITIONAL_IP4_ADDRESS:
      return d.length === 4 ? {kind: 'address', address: formatIPv4(d, 0)} : bad('an IPv4 address is 4 bytes')
    case Notify.ADDITIONAL_IP6_ADDRESS:
      return d.length === 16 ? {kind: 'address', address: formatIPv6(d, 0)} : bad('an IPv6 address is 16 bytes')
    case Notify.SIGNATURE_HASH_ALGORITHMS: {
      if (d.length % 2) bad('hash algorithms are 2 bytes each')
      const algorithms: number[] = []
      for (let i = 0; i < d.length; i += 2) algorithms.push(d.readUInt16BE(i))
      return {kind: 'hashAlgorithms', algorithms}
    }
    case Notify.SET_WINDOW_SIZE:
      return d.length === 4 ? {kind: 'window', size: d.readUInt32BE(0)} : bad('a window size is 4 bytes')
    case Notify.AUTH_LIFETIME:
      return d.length === 4 ? {kind: 'lifetime', seconds: d.readUInt32BE(0)} : bad('a lifetime is 4 bytes')
    default:
      return undefined
  }
}

export function decodeNotify(b: Buffer): NotifyBody {
  if (b.length < 4) throw new CodecError('TRUNCATED', 'N: truncated')
  const spiSize = b[1]
  if (4 + spiSize > b.length) throw new CodecError('TRUNCATED', 'N: SPI truncated')
  if (b.length - 4 - spiSize > MAX_NOTIFY_DATA) throw new CodecError('LIMIT', 'N: data too long')
  const n = {protocol: b[0], spi: Buffer.from(b.subarray(4, 4 + spiSize)), notify: b.readUInt16BE(2), data: Buffer.from(b.subarray(4 + spiSize))}
  if (n.notify === Notify.REKEY_SA && n.spi.length !== 4) throw new CodecError('BAD_NOTIFY', 'N(REKEY_SA): SPI of a CHILD_SA is 4 bytes')
  notifyValue(n)
  return n
}

export function encodeNotify(n: NotifyBody): Buffer {
  const h = Buffer.alloc(4)
  h[0] = n.protocol
  h[1] = n.spi.length
  h.writeUInt16BE(n.notify, 2)
  return Buffer.concat([h, n.spi, n.data])
}

export function decodeDelete(b: Buffer): DeleteBody {
  if (b.length < 4) throw new CodecError('TRUNCATED', 'D: truncated')
  const protocol = b[0]
  const spiSize = b[1]
  const count = b.readUInt16BE(2)
  if (protocol === ProtocolId.IKE ? spiSize !== 0 || count !== 0 : spiSize !== 4) throw new CodecError('BAD_DELETE', `D: SPI size ${spiSize} for protocol ${protocol}`)
  if (b.length !== 4 + spiSize * count) throw new CodecError('LENGTH', `D: ${count} SPIs of ${spiSize} bytes in ${b.length - 4}`)
  const spis: Buffer[] = []
  for (let i = 0; i < count; i++) spis.push(Buffer.from(b.subarray(4 + i * spiSize, 4 + (i + 1) * spiSize)))
  return {protocol, spiSize, spis}
}

export function encodeDelete(d: DeleteBody): Buffer {
  const h = Buffer.alloc(4)
  h[0] = d.protocol
  h[1] = d.spiSize
  h.writeUInt16BE(d.spis.length, 2)
  return Buffer.concat([h, ...d.spis])
}
