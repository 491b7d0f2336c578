import {CodecError} from '../../lib/errors.js'
import {checksum, PROTO_TCP, PROTO_UDP} from './ipv4.js'

/**
 * Offloads for VPN mode: TCP super-packets (TSO) and checksums left to finish, as a TUN device
 * opened with IFF_VNET_HDR hands them over and takes them (the virtio-net header, below), and as
 * they travel in a DATA frame's flags (docs/protocol.md):
 *   0x8000 TSO: an IPv4 TCP packet of up to 64 KiB, to be cut into segments of the size in the low
 *          14 bits (its checksum is partial, so 0x4000 is set too)
 *   0x4000 CSUM: the TCP or UDP checksum field holds only the pseudo-header sum
 * Whoever has no device that takes them finishes the work here, in software (finish()).
 */
export const OFFLOAD_TSO = 0x8000
export const OFFLOAD_CSUM = 0x4000
export const OFFLOAD_MSS = 0x3fff
/** Below this a super-packet would become over a thousand segments: refused. */
export const MIN_MSS = 64

/** struct virtio_net_hdr: u8 flags, u8 gso_type, u16 hdr_len, gso_size, csum_start, csum_offset (little-endian). */
export const VNET_HDR_LEN = 10
const VNET_NEEDS_CSUM = 1
const GSO_NONE = 0
const GSO_TCPV4 = 1
const GSO_ECN = 0x80

const TCP_CHECK = 16
const UDP_CHECK = 6
const TCP_FIN = 0x01
const TCP_PSH = 0x08
const TCP_CWR = 0x80

/** Where the L4 header starts, if p is an unfragmented IPv4 packet whose lengths add up; else -1. */
function l4Start(p: Buffer): number {
  if (p.length < 20 || p[0] >> 4 !== 4) return -1
  const ihl = (p[0] & 15) * 4
  // MF set or a fragment offset: no L4 header to finish (or not all of it).
  if (ihl < 20 || p.readUInt16BE(2) !== p.length || (p.readUInt16BE(6) & 0x3fff) !== 0) return -1
  return ihl
}

/** The end of the TCP header, or -1 when it does not fit. */
function tcpEnd(p: Buffer, l4: number): number {
  if (l4 + 20 > p.length) return -1
  const doff = (p[l4 + 12] >> 4) * 4
  return doff >= 20 && l4 + doff <= p.length ? l4 + doff : -1
}

/** Why `flags` cannot apply to datagram p (a DATA frame from the peer), or null when they can. */
export function offloadProblem(flags: number, p: Buffer): string | null {
  if (flags === 0) return null
  const tso = (flags & OFFLOAD_TSO) !== 0
  const mss = flags & OFFLOAD_MSS
  if (!(flags & OFFLOAD_CSUM)) return 'an offload segment size without a partial checksum'
  if (tso !== (mss !== 0)) return 'TSO without a segment size, or a segment size without TSO'
  const l4 = l4Start(p)
  if (l4 < 0) return 'offload flags on a datagram that is not a whole IPv4 packet'
  const proto = p[9]
  if (proto === PROTO_TCP) {
    const end = tcpEnd(p, l4)
    if (end < 0) return 'offload flags on a TCP packet whose header does not fit'
    if (tso && mss < MIN_MSS) return `TSO segment size ${mss} is below ${MIN_MSS}`
    if (tso && p.length - end <= mss) return 'a TSO packet that is one segment'
    return null
  }
  if (proto === PROTO_UDP && !tso) return l4 + 8 <= p.length ? null : 'offload flags on a UDP packet whose header does not fit'
  return `offload flags on IP protocol ${proto}`
}

/**
 * A device's virtio-net header as DATA frame flags: -1 when the flags cannot say it (a checksum
 * elsewhere than in a TCP or UDP header, segments over 16 KiB, ECN, IPv6), and finishVnet must
 * do the work here.
 */
export function fromVnet(h: Buffer, p: Buffer): number {
  const csum = (h[0] & VNET_NEEDS_CSUM) !== 0
  const gso = h[1]
  if (gso === GSO_NONE && !csum) return 0
  const l4 = l4Start(p)
  if (l4 < 0) return -1
  const start = h.readUInt16LE(6)
  const offset = h.readUInt16LE(8)
  const proto = p[9]
  if (gso === GSO_NONE) {
    if (start !== l4) return -1
    if (proto === PROTO_TCP && offset === TCP_CHECK && tcpEnd(p, l4) > 0) return OFFLOAD_CSUM
    if (proto === PROTO_UDP && offset === UDP_CHECK && l4 + 8 <= p.length) return OFFLOAD_CSUM
    return -1
  }
  const mss = h.readUInt16LE(4)
  const flags = OFFLOAD_TSO | OFFLOAD_CSUM | mss
  if (gso !== GSO_TCPV4 || !csum || start !== l4 || offset !== TCP_CHECK || mss > OFFLOAD_MSS) return -1
  // One segment's worth (or a segment size we would refuse from a peer): a plain partial checksum.
  return offloadProblem(flags, p) === null ? flags : offloadProblem(OFFLOAD_CSUM, p) === null ? OFFLOAD_CSUM : -1
}

/** The packets a device's header and packet stand for, finished here: what fromVnet could not express. */
export function finishVnet(h: Buffer, p: Buffer): Buffer[] {
  const gso = h[1] & ~GSO_ECN
  const l4 = l4Start(p)
  if (gso === GSO_TCPV4 && l4 >= 0 && p[9] === PROTO_TCP && tcpEnd(p, l4) > 0) return segmentTcp4(p, Math.max(h.readUInt16LE(4), MIN_MSS))
  // Anything else the kernel only hands over with TUN_F_TSO6 (IPv6), which VPN mode drops.
  if (gso !== GSO_NONE) return []
  if (h[0] & VNET_NEEDS_CSUM) {
    const start = h.readUInt16LE(6)
    const at = start + h.readUInt16LE(8)
    if (at + 2 > p.length) return []
    p.writeUInt16BE(checksum(p, start, p.length) || 0xffff, at)
  }
  return [p]
}

/** The virtio-net header for a packet with these DATA flags (checked by offloadProblem), into out. */
export function toVnet(flags: number, p: Buffer, out: Buffer): Buffer {
  out.fill(0, 0, VNET_HDR_LEN)
  if (flags === 0) return out
  const l4 = (p[0] & 15) * 4
  out[0] = VNET_NEEDS_CSUM
  out.writeUInt16LE(l4, 6)
  out.writeUInt16LE(p[9] === PROTO_TCP ? TCP_CHECK : UDP_CHECK, 8)
  if (flags & OFFLOAD_TSO) {
    out[1] = GSO_TCPV4
    out.writeUInt16LE(l4 + (p[l4 + 12] >> 4) * 4, 2)
    out.writeUInt16LE(flags & OFFLOAD_MSS, 4)
  }
  return out
}

/** Plain packets for a datagram with these DATA flags (checked by offloadProblem): segments, checksums done. */
export function finish(flags: number, p: Buffer): Buffer[] {
  if (flags & OFFLOAD_TSO) return segmentTcp4(p, flags & OFFLOAD_MSS)
  if (flags & OFFLOAD_CSUM) {
    const l4 = (p[0] & 15) * 4
    const at = l4 + (p[9] === PROTO_TCP ? TCP_CHECK : UDP_CHECK)
    // The field holds the pseudo-header sum: summing it with the rest gives the checksum.
    p.writeUInt16BE(checksum(p, l4, p.length) || (p[9] === PROTO_UDP ? 0xffff : 0), at)
  }
  return [p]
}

/** The sum, not complemented, of the IPv4 pseudo-header for an L4 length. */
function pseudoSum(p: Buffer, l4len: number): number {
  return p.readUInt16BE(12) + p.readUInt16BE(14) + p.readUInt16BE(16) + p.readUInt16BE(18) + p[9] + l4len
}

/**
 * Cuts an IPv4 TCP super-packet into segments of at most mss payload bytes, as the kernel's TSO
 * would: IP ID counting up, sequence numbers advancing, FIN and PSH on the last segment only, CWR
 * on the first only, every checksum complete.
 */
export function segmentTcp4(p: Buffer, mss: number): Buffer[] {
  const l4 = l4Start(p)
  const end = l4 < 0 || p[9] !== PROTO_TCP ? -1 : tcpEnd(p, l4)
  if (end < 0) throw new CodecError('BAD_PACKET', 'not an IPv4 TCP packet')
  if (mss < 1) throw new CodecError('BAD_LENGTH', 'segment size 0')
  const payload = p.length - end
  const count = Math.max(1, Math.ceil(payload / mss))
  const id = p.readUInt16BE(4)
  const seq = p.readUInt32BE(l4 + 4)
  const tcpFlags = p[l4 + 13]
  const out: Buffer[] = []
  for (let i = 0; i < count; i++) {
    const from = end + i * mss
    const len = Math.min(mss, p.length - from)
    const s = Buffer.allocUnsafe(end + len)
    p.copy(s, 0, 0, end)
    p.copy(s, end, from, from + len)
    s.writeUInt16BE(s.length, 2)
    s.writeUInt16BE((id + i) & 0xffff, 4)
    s.writeUInt16BE(0, 10)
    s.writeUInt16BE(checksum(s, 0, l4), 10)
    s.writeUInt32BE((seq + i * mss) >>> 0, l4 + 4)
    let f = tcpFlags
    if (i < count - 1) f &= ~(TCP_FIN | TCP_PSH)
    if (i > 0) f &= ~TCP_CWR
    s[l4 + 13] = f
    s.writeUInt16BE(0, l4 + TCP_CHECK)
    s.writeUInt16BE(checksum(s, l4, s.length, pseudoSum(s, s.length - l4)), l4 + TCP_CHECK)
    out.push(s)
  }
  return out
}
