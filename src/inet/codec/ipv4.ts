import {CodecError, need} from '../../lib/errors.js'
import {formatIPv4, ipv4Bytes} from '../../lib/net/ip.js'

/** IPv4 (RFC 791) and UDP (RFC 768) headers, enough for the pseudo adapter's emulators and --trace. */
export interface Ipv4 {
  src: string
  dst: string
  protocol: number
  ttl: number
  payload: Buffer
}

/** IP protocol numbers (IANA). */
export const PROTO_ICMP = 1
export const PROTO_TCP = 6
export const PROTO_UDP = 17

export function checksum(b: Buffer, start = 0, end = b.length, seed = 0): number {
  let s = seed
  for (let i = start; i < end; i += 2) s += (b[i] << 8) | (i + 1 < end ? b[i + 1] : 0)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return ~s & 0xffff
}

/**
 * Field access without decoding, for the per-packet path: a TUN device also hands over IPv6
 * (router solicitations, MLD), so callers check isIpv4Packet before reading addresses.
 */
export function isIpv4Packet(p: Buffer): boolean {
  return p.length >= 20 && p[0] >> 4 === 4
}

export function ipv4Src(p: Buffer): string {
  return formatIPv4(p, 12)
}

export function ipv4Dst(p: Buffer): string {
  return formatIPv4(p, 16)
}

export function decodeIpv4(b: Buffer): Ipv4 {
  need(b, 0, 20, 'IPv4 header')
  if (b[0] >> 4 !== 4) throw new CodecError('NOT_IPV4', `IP version ${b[0] >> 4}`)
  const ihl = (b[0] & 15) * 4
  const total = b.readUInt16BE(2)
  if (ihl < 20 || total < ihl || total > b.length) throw new CodecError('BAD_LENGTH', 'IPv4 lengths do not fit the packet')
  return {src: formatIPv4(b, 12), dst: formatIPv4(b, 16), protocol: b[9], ttl: b[8], payload: b.subarray(ihl, total)}
}

export function encodeIpv4(p: Ipv4): Buffer {
  const b = Buffer.alloc(20 + p.payload.length)
  b[0] = 0x45
  b.writeUInt16BE(b.length, 2)
  b[8] = p.ttl
  b[9] = p.protocol
  ipv4Bytes(p.src).copy(b, 12)
  ipv4Bytes(p.dst).copy(b, 16)
  b.writeUInt16BE(checksum(b, 0, 20), 10)
  p.payload.copy(b, 20)
  return b
}

export interface Udp {
  srcPort: number
  dstPort: number
  payload: Buffer
}

export function decodeUdp(b: Buffer): Udp {
  need(b, 0, 8, 'UDP header')
  const len = b.readUInt16BE(4)
  if (len < 8 || len > b.length) throw new CodecError('BAD_LENGTH', 'UDP length does not fit the packet')
  return {srcPort: b.readUInt16BE(0), dstPort: b.readUInt16BE(2), payload: b.subarray(8, len)}
}

/** A UDP datagram inside an IPv4 packet, with both checksums. */
export function encodeUdpIpv4(src: string, dst: string, u: Udp, ttl = 64): Buffer {
  const d = Buffer.alloc(8 + u.payload.length)
  d.writeUInt16BE(u.srcPort, 0)
  d.writeUInt16BE(u.dstPort, 2)
  d.writeUInt16BE(d.length, 4)
  u.payload.copy(d, 8)
  const pseudo = Buffer.concat([ipv4Bytes(src), ipv4Bytes(dst), Buffer.from([0, PROTO_UDP, d.length >> 8, d.length & 255])])
  let s = 0
  for (let i = 0; i < 12; i += 2) s += (pseudo[i] << 8) | pseudo[i + 1]
  d.writeUInt16BE(checksum(d, 0, d.length, s) || 0xffff, 6)
  return encodeIpv4({src, dst, protocol: PROTO_UDP, ttl, payload: d})
}
