import {CodecError} from '../../lib/errors.js'
import {formatIPv4, formatIPv6, ipv4Bytes} from '../../lib/net/ip.js'
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

/**
 * tunkit's private-use CP attribute (§3.15.1: types 16384–32767 are private use): one protected
 * IPv4 subnet and the ESP proposals that may protect it, so a client opens one CHILD_SA per policy
 * with exactly those transforms. A gateway sends one per policy next to the standard
 * INTERNAL_IP4_SUBNET; other peers ignore it. Byte layout in docs/ike.md ("Configuration push").
 */
export const TUNKIT_POLICY = 0x5471

export interface PolicyTransform {
  /** Transform type (§3.3.2): 1 ENCR, 3 INTEG, 4 DH, 5 ESN (2 PRF decodes, but ESP has no PRF). */
  type: number
  id: number
  /** The KEY_LENGTH attribute, absent for fixed-length ciphers. */
  keyBits?: number
}

export interface CpPolicy {
  /** The subnet's network address (host bits zero) and prefix length. */
  address: string
  prefix: number
  /** Proposals in order of preference, each a list of transforms. */
  proposals: PolicyTransform[][]
}

export const MAX_POLICY_PROPOSALS = 16
export const MAX_POLICY_TRANSFORMS = 32

const hostBitsClear = (a: number, prefix: number): boolean => prefix === 32 || (a & (0xffffffff >>> prefix)) === 0

export function decodeCpPolicy(b: Buffer): CpPolicy {
  if (b.length < 6) throw new CodecError('TRUNCATED', 'tunkit policy: truncated')
  const prefix = b[4]
  if (prefix > 32 || !hostBitsClear(b.readUInt32BE(0), prefix)) throw new CodecError('BAD_CP', `tunkit policy: ${formatIPv4(b, 0)}/${prefix} is not a subnet`)
  const n = b[5]
  if (n === 0 || n > MAX_POLICY_PROPOSALS) throw new CodecError(n ? 'LIMIT' : 'BAD_CP', `tunkit policy: ${n} proposals`)
  const proposals: PolicyTransform[][] = []
  let off = 6
  for (let i = 0; i < n; i++) {
    if (off >= b.length) throw new CodecError('TRUNCATED', 'tunkit policy: proposal truncated')
    const count = b[off++]
    if (count === 0 || count > MAX_POLICY_TRANSFORMS) throw new CodecError(count ? 'LIMIT' : 'BAD_CP', `tunkit policy: ${count} transforms`)
    if (off + 5 * count > b.length) throw new CodecError('TRUNCATED', 'tunkit policy: transform truncated')
    const ts: PolicyTransform[] = []
    for (let k = 0; k < count; k++, off += 5) {
      const type = b[off]
      if (type < 1 || type > 5) throw new CodecError('BAD_CP', `tunkit policy: transform type ${type}`)
      const t: PolicyTransform = {type, id: b.readUInt16BE(off + 1)}
      const bits = b.readUInt16BE(off + 3)
      if (bits) t.keyBits = bits
      ts.push(t)
    }
    proposals.push(ts)
  }
  if (off !== b.length) throw new CodecError('LENGTH', 'tunkit policy: bytes after the last proposal')
  return {address: formatIPv4(b, 0), prefix, proposals}
}

export function encodeCpPolicy(p: CpPolicy): Buffer {
  const a = ipv4Bytes(p.address)
  if (!Number.isInteger(p.prefix) || p.prefix < 0 || p.prefix > 32 || !hostBitsClear(a.readUInt32BE(0), p.prefix)) throw new CodecError('BAD_CP', `tunkit policy: ${p.address}/${p.prefix} is not a subnet`)
  if (p.proposals.length === 0 || p.proposals.length > MAX_POLICY_PROPOSALS) throw new CodecError('BAD_CP', 'tunkit policy: 1 to 16 proposals')
  const parts = [a, Buffer.from([p.prefix, p.proposals.length])]
  for (const ts of p.proposals) {
    if (ts.length === 0 || ts.length > MAX_POLICY_TRANSFORMS) throw new CodecError('BAD_CP', 'tunkit policy: 1 to 32 transforms a proposal')
    parts.push(Buffer.from([ts.length]))
    for (const t of ts) {
      if (t.type < 1 || t.type > 5) throw new CodecError('BAD_CP', `tunkit policy: transform type ${t.type}`)
      const x = Buffer.alloc(5)
      x[0] = t.type
      x.writeUInt16BE(t.id, 1)
      x.writeUInt16BE(t.keyBits ?? 0, 3)
      parts.push(x)
    }
  }
  return Buffer.concat(parts)
}
