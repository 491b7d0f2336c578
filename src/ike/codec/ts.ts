import {CodecError} from '../../lib/errors.js'
import {formatIPv4, formatIPv6, ipv4Bytes, ipv6Bytes, isIPv4, isIPv6} from '../../lib/net/ip.js'
import {TsType} from './constants.js'

/** Traffic Selector payloads TSi/TSr (§3.13): IPv4 and IPv6 address ranges. */

export interface TrafficSelector {
  tsType: typeof TsType.IPV4_ADDR_RANGE | typeof TsType.IPV6_ADDR_RANGE
  /** IP protocol number, 0 for any. */
  ipProtocol: number
  startPort: number
  endPort: number
  /** Dotted or RFC 5952 text, so selectors compare as strings. */
  start: string
  end: string
}

export interface TsBody {
  selectors: TrafficSelector[]
}

const MAX_SELECTORS = 64

export function decodeTs(b: Buffer): TsBody {
  if (b.length < 4) throw new CodecError('TRUNCATED', 'TS: truncated')
  const count = b[0]
  if (count === 0 || count > MAX_SELECTORS) throw new CodecError(count ? 'LIMIT' : 'BAD_TS', `TS: ${count} selectors`)
  const selectors: TrafficSelector[] = []
  let off = 4
  for (let i = 0; i < count; i++) {
    if (off + 8 > b.length) throw new CodecError('TRUNCATED', 'TS: selector truncated')
    const tsType = b[off]
    const len = b.readUInt16BE(off + 2)
    const v4 = tsType === TsType.IPV4_ADDR_RANGE
    if (!v4 && tsType !== TsType.IPV6_ADDR_RANGE) throw new CodecError('BAD_TS', `TS: unknown selector type ${tsType}`)
    const alen = v4 ? 4 : 16
    if (len !== 8 + 2 * alen || off + len > b.length) throw new CodecError('LENGTH', `TS: selector length ${len}`)
    const fmt = v4 ? formatIPv4 : formatIPv6
    selectors.push({
      tsType,
      ipProtocol: b[off + 1],
      startPort: b.readUInt16BE(off + 4),
      endPort: b.readUInt16BE(off + 6),
      start: fmt(b, off + 8),
      end: fmt(b, off + 8 + alen),
    })
    off += len
  }
  if (off !== b.length) throw new CodecError('LENGTH', 'TS: bytes after the last selector')
  return {selectors}
}

export function encodeTs(ts: TsBody): Buffer {
  if (ts.selectors.length === 0 || ts.selectors.length > MAX_SELECTORS) throw new CodecError('BAD_TS', 'TS: 1 to 64 selectors')
  const h = Buffer.alloc(4)
  h[0] = ts.selectors.length
  return Buffer.concat([h, ...ts.selectors.map((s) => {
    const v4 = s.tsType === TsType.IPV4_ADDR_RANGE
    const ok = v4 ? isIPv4 : isIPv6
    if (!ok(s.start) || !ok(s.end)) throw new CodecError('BAD_TS', `TS: ${s.start}-${s.end} is not of type ${s.tsType}`)
    const bytes = v4 ? ipv4Bytes : ipv6Bytes
    const b = Buffer.alloc(8)
    b[0] = s.tsType
    b[1] = s.ipProtocol
    b.writeUInt16BE(b.length + (v4 ? 8 : 32), 2)
    b.writeUInt16BE(s.startPort, 4)
    b.writeUInt16BE(s.endPort, 6)
    return Buffer.concat([b, bytes(s.start), bytes(s.end)])
  })])
}

/** The selector for a whole CIDR block, any protocol and port (what a policy subnet becomes). */
export function tsFromCidr(cidr: string): TrafficSelector {
  const [addr, bitsText] = cidr.split('/')
  const v4 = isIPv4(addr)
  if (!v4 && !isIPv6(addr)) throw new CodecError('BAD_TS', `not a CIDR block: ${cidr}`)
  const bytes = v4 ? ipv4Bytes(addr) : ipv6Bytes(addr)
  const bits = bitsText === undefined ? bytes.length * 8 : Number(bitsText)
  if (!Number.isInteger(bits) || bits < 0 || bits > bytes.length * 8) throw new CodecError('BAD_TS', `not a CIDR block: ${cidr}`)
  const start = Buffer.from(bytes)
  const end = Buffer.from(bytes)
  for (let i = 0; i < bytes.length * 8; i++) {
    if (i < bits) continue
    const m = 0x80 >> (i % 8)
    start[i >> 3] &= ~m
    end[i >> 3] |= m
  }
  const fmt = v4 ? formatIPv4 : formatIPv6
  const first = fmt(start, 0)
  // One string for a single address (a client's VIP/32 on every CHILD_SA it holds).
  return {tsType: v4 ? TsType.IPV4_ADDR_RANGE : TsType.IPV6_ADDR_RANGE, ipProtocol: 0, startPort: 0, endPort: 65535, start: first, end: start.equals(end) ? first : fmt(end, 0)}
}
