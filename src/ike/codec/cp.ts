import {CodecError} from '../../lib/errors.js'
import {formatIPv4, formatIPv6} from '../../lib/net/ip.js'
import {CfgAttr} from './constants.js'

/** Configuration payload (§3.15): a CFG type and its attributes, values kept as bytes. */

export interface CfgAttribute {
  type: number
  value: Buffer
}

export interface CpBody {
  cfgType: number
  attributes: CfgAttribute[]
}

const MAX_ATTRIBUTES = 256

/** The lengths a known attribute may have (§3.15.1; 0 in a request means "give me one"). */
const LENGTHS: Record<number, readonly number[]> = {
  [CfgAttr.INTERNAL_IP4_ADDRESS]: [0, 4],
  [CfgAttr.INTERNAL_IP4_NETMASK]: [0, 4],
  [CfgAttr.INTERNAL_IP4_DNS]: [0, 4],
  [CfgAttr.INTERNAL_IP4_NBNS]: [0, 4],
  [CfgAttr.INTERNAL_IP4_DHCP]: [0, 4],
  [CfgAttr.INTERNAL_IP6_ADDRESS]: [0, 17],
  [CfgAttr.INTERNAL_IP6_DNS]: [0, 16],
  [CfgAttr.INTERNAL_IP6_DHCP]: [0, 16],
  [CfgAttr.INTERNAL_IP4_SUBNET]: [0, 8],
  [CfgAttr.INTERNAL_IP6_SUBNET]: [0, 17],
}

export function decodeCp(b: Buffer): CpBody {
  if (b.length < 4) throw new CodecError('TRUNCATED', 'CP: truncated')
  const attributes: CfgAttribute[] = []
  let off = 4
  while (off < b.length) {
    if (attributes.length >= MAX_ATTRIBUTES) throw new CodecError('LIMIT', 'CP: too many attributes')
    if (off + 4 > b.length) throw new CodecError('TRUNCATED', 'CP attribute: truncated')
    const type = b.readUInt16BE(off) & 0x7fff
    const len = b.readUInt16BE(off + 2)
    if (off + 4 + len > b.length) throw new CodecError('TRUNCATED', 'CP attribute: value truncated')
    if (LENGTHS[type] && !LENGTHS[type].includes(len)) throw new CodecError('BAD_CP', `CP attribute ${type}: length ${len}`)
    attributes.push({type, value: Buffer.from(b.subarray(off + 4, off + 4 + len))})
    off += 4 + len
  }
  return {cfgType: b[0], attributes}
}

export function encodeCp(cp: CpBody): Buffer {
  const h = Buffer.alloc(4)
  h[0] = cp.cfgType
  return Buffer.concat([h, ...cp.attributes.map((a) => {
    const ah = Buffer.alloc(4)
    ah.writeUInt16BE(a.type & 0x7fff, 0)
    ah.writeUInt16BE(a.value.length, 2)
    return Buffer.concat([ah, a.value])
  })])
}

/** An address attribute's value as text (IPv4 4 bytes; IPv6 16 bytes plus an optional prefix byte). */
export function cpAddress(a: CfgAttribute): string | undefined {
  if (a.value.length === 4) return formatIPv4(a.value, 0)
  if (a.value.length === 8) return `${formatIPv4(a.value, 0)}/${formatIPv4(a.value, 4)}`
  if (a.value.length === 16) return formatIPv6(a.value, 0)
  if (a.value.length === 17) return `${formatIPv6(a.value, 0)}/${a.value[16]}`
  return undefined
}
