import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {checksum} from '../../../src/inet/codec/ipv4.js'
import {finish, finishVnet, fromVnet, MIN_MSS, OFFLOAD_CSUM, OFFLOAD_TSO, offloadProblem, segmentTcp4, toVnet, VNET_HDR_LEN} from '../../../src/inet/codec/offload.js'
import {fuzz, mutate} from '../../helpers/fuzz.js'

const TCP_FIN = 0x01, TCP_PSH = 0x08, TCP_ACK = 0x10, TCP_CWR = 0x80

/** The non-complemented, folded sum of the IPv4 pseudo-header, as the kernel leaves it in a partial checksum. */
function pseudo(p: Buffer): number {
  let s = p.readUInt16BE(12) + p.readUInt16BE(14) + p.readUInt16BE(16) + p.readUInt16BE(18) + p[9] + (p.length - (p[0] & 15) * 4)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return s
}

/** An IPv4 packet as the kernel hands it over with offloads: L4 checksum partial (pseudo-header sum only). */
function packet(proto: 6 | 17, payload: Buffer, tcpFlags = TCP_ACK | TCP_PSH, options = 0): Buffer {
  const l4len = proto === 6 ? 20 + options : 8
  const p = Buffer.alloc(20 + l4len + payload.length)
  p[0] = 0x45
  p.writeUInt16BE(p.length, 2)
  p.writeUInt16BE(0x1234, 4)
  p.writeUInt16BE(0x4000, 6) // DF
  p[8] = 64
  p[9] = proto
  Buffer.from([198, 18, 10, 2, 198, 18, 10, 1]).copy(p, 12)
  p.writeUInt16BE(checksum(p, 0, 20), 10)
  p.writeUInt16BE(40000, 20)
  p.writeUInt16BE(5201, 22)
  if (proto === 6) {
    p.writeUInt32BE(0xfffff000, 24) // sequence numbers wrap inside the packet
    p.writeUInt32BE(77, 28)
    p[32] = ((20 + options) / 4) << 4
    p[33] = tcpFlags
    p.writeUInt16BE(65535, 34)
    p.fill(1, 40, 40 + options) // NOPs
    p.writeUInt16BE(pseudo(p), 36)
  } else {
    p.writeUInt16BE(l4len + payload.length, 24)
    p.writeUInt16BE(pseudo(p), 26)
  }
  payload.copy(p, 20 + l4len)
  return p
}

/** A packet's checksums verify: the IP header's, and the L4 one over the pseudo-header. */
function verifies(p: Buffer): boolean {
  const l4 = (p[0] & 15) * 4
  let s = p.readUInt16BE(12) + p.readUInt16BE(14) + p.readUInt16BE(16) + p.readUInt16BE(18) + p[9] + (p.length - l4)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return checksum(p, 0, l4) === 0 && checksum(p, l4, p.length, s) === 0
}

const payload = (n: number): Buffer => Buffer.from(Array.from({length: n}, (_, i) => (i * 7 + 3) & 255))

test('a TSO super-packet becomes the segments the kernel would have sent', () => {
  const data = payload(5000)
  const p = packet(6, data, TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR, 12)
  const segs = segmentTcp4(p, 1448)
  assert.equal(segs.map((s) => s.length), [1500, 1500, 1500, 20 + 32 + 5000 - 3 * 1448])
  segs.forEach((s, i) => {
    assert.ok(verifies(s), `segment ${i} checksums`)
    assert.is(s.readUInt16BE(2), s.length, 'total length')
    assert.is(s.readUInt16BE(4), 0x1234 + i, 'IP ID counts up')
    assert.is(s.readUInt32BE(24), (0xfffff000 + i * 1448) >>> 0, 'sequence number')
    assert.is(s.readUInt32BE(28), 77, 'ack number')
    assert.is(s[33] & (TCP_FIN | TCP_PSH), i === 3 ? TCP_FIN | TCP_PSH : 0, 'FIN and PSH on the last only')
    assert.is(s[33] & TCP_CWR, i === 0 ? TCP_CWR : 0, 'CWR on the first only')
    assert.is(s[33] & TCP_ACK, TCP_ACK)
    assert.equal(s.subarray(40, 52), p.subarray(40, 52), 'options copied')
  })
  assert.equal(Buffer.concat(segs.map((s) => s.subarray(52))), data, 'the payload, in order')
})

test('finish: a partial TCP or UDP checksum is completed; TSO flags are segmented', () => {
  for (const proto of [6, 17] as const) {
    const p = packet(proto, payload(999))
    assert.not.ok(verifies(p), 'partial before')
    const [q] = finish(OFFLOAD_CSUM, p)
    assert.ok(verifies(q), `${proto} complete after`)
  }
  const segs = finish(OFFLOAD_TSO | OFFLOAD_CSUM | 1000, packet(6, payload(2500)))
  assert.is(segs.length, 3)
  assert.ok(segs.every(verifies))
})

test('a device\'s virtio-net header and the DATA flags convert both ways', () => {
  const p = packet(6, payload(3000), TCP_ACK, 12)
  const h = Buffer.alloc(VNET_HDR_LEN)
  h[0] = 1 // NEEDS_CSUM
  h[1] = 1 // TCPV4
  h.writeUInt16LE(52, 2)
  h.writeUInt16LE(1448, 4)
  h.writeUInt16LE(20, 6)
  h.writeUInt16LE(16, 8)
  const flags = fromVnet(h, p)
  assert.is(flags, OFFLOAD_TSO | OFFLOAD_CSUM | 1448)
  assert.equal(toVnet(flags, p, Buffer.alloc(VNET_HDR_LEN)), h)
  // Checksum only, and nothing at all.
  const c = Buffer.from(h)
  c[1] = 0
  c.fill(0, 2, 6)
  assert.is(fromVnet(c, p), OFFLOAD_CSUM)
  assert.equal(toVnet(OFFLOAD_CSUM, p, Buffer.alloc(VNET_HDR_LEN)), c)
  assert.is(fromVnet(Buffer.alloc(VNET_HDR_LEN), p), 0)
  assert.equal(toVnet(0, p, Buffer.alloc(VNET_HDR_LEN, 0xff)), Buffer.alloc(VNET_HDR_LEN))
  // A segment size over 14 bits cannot travel: finished here instead.
  const big = Buffer.from(h)
  big.writeUInt16LE(0x4000, 4)
  assert.is(fromVnet(big, p), -1)
  assert.ok(finishVnet(big, Buffer.from(p)).every(verifies))
  // One segment's worth is sent as a plain partial checksum.
  const one = Buffer.from(h)
  one.writeUInt16LE(3000, 4)
  assert.is(fromVnet(one, p), OFFLOAD_CSUM)
})

test('finishVnet: a checksum the DATA flags cannot place is completed where the header says', () => {
  const p = packet(17, payload(100))
  const h = Buffer.alloc(VNET_HDR_LEN)
  h[0] = 1
  h.writeUInt16LE(20, 6)
  h.writeUInt16LE(6, 8)
  assert.is(fromVnet(h, p), OFFLOAD_CSUM)
  const odd = Buffer.from(h)
  odd.writeUInt16LE(24, 6) // starts inside the UDP header: not expressible
  odd.writeUInt16LE(2, 8)
  assert.is(fromVnet(odd, p), -1)
  const [q] = finishVnet(odd, Buffer.from(p))
  assert.ok(q.readUInt16BE(26) !== p.readUInt16BE(26), 'written at start + offset')
  assert.equal(finishVnet(odd, Buffer.alloc(10)), [], 'a header pointing past the packet: dropped')
})

test('offloadProblem refuses flags that do not fit the datagram', () => {
  const tcp = packet(6, payload(3000))
  const udp = packet(17, payload(3000))
  assert.is(offloadProblem(0, tcp), null)
  assert.is(offloadProblem(OFFLOAD_CSUM, udp), null)
  assert.is(offloadProblem(OFFLOAD_TSO | OFFLOAD_CSUM | 1448, tcp), null)
  const bad: [number, Buffer, RegExp][] = [
    [OFFLOAD_TSO | 1448, tcp, /without a partial checksum/],
    [OFFLOAD_CSUM | 1448, tcp, /segment size without TSO/],
    [OFFLOAD_TSO | OFFLOAD_CSUM, tcp, /TSO without a segment size/],
    [OFFLOAD_TSO | OFFLOAD_CSUM | (MIN_MSS - 1), tcp, /below/],
    [OFFLOAD_TSO | OFFLOAD_CSUM | 3000, tcp, /one segment/],
    [OFFLOAD_TSO | OFFLOAD_CSUM | 1448, udp, /protocol 17/],
    [OFFLOAD_CSUM, tcp.subarray(0, 30), /not a whole IPv4 packet/],
    [OFFLOAD_CSUM, Buffer.concat([tcp, Buffer.alloc(1)]), /not a whole IPv4 packet/],
  ]
  for (const [flags, p, why] of bad) assert.match(String(offloadProblem(flags, p)), why)
  const frag = Buffer.from(tcp)
  frag.writeUInt16BE(0x2000, 6) // MF
  assert.match(String(offloadProblem(OFFLOAD_CSUM, frag)), /not a whole IPv4 packet/)
  const icmp = Buffer.from(tcp)
  icmp[9] = 1
  assert.match(String(offloadProblem(OFFLOAD_CSUM, icmp)), /protocol 1/)
  const doff = Buffer.from(tcp)
  doff[32] = 0x40 // a TCP header of 4 words
  assert.match(String(offloadProblem(OFFLOAD_CSUM, doff)), /does not fit/)
})

test('fuzz: any flags and bytes from a peer, any header from a device: a verdict or a bounded result, never a throw', () => {
  const base = [packet(6, payload(3000)), packet(17, payload(200)), packet(6, payload(100), TCP_ACK, 40)]
  fuzz('offload flags on peer datagrams', (r) => {
    const p = r.chance(0.7) ? mutate(r, r.pick(base)) : r.bytes(r.length(200))
    const flags = r.chance(0.5) ? r.below(0x10000) : r.pick([OFFLOAD_CSUM, OFFLOAD_TSO | OFFLOAD_CSUM | r.int(1, 3000)])
    if (offloadProblem(flags, p) !== null) return
    const segs = finish(flags, Buffer.from(p))
    assert.ok(segs.length >= 1 && segs.length <= Math.ceil(65535 / MIN_MSS), 'bounded segments')
    if (flags & OFFLOAD_TSO) assert.ok(segs.every(verifies), 'segments verify')
    toVnet(flags, p, Buffer.alloc(VNET_HDR_LEN))
  })
  fuzz('virtio-net headers from a device', (r) => {
    const p = r.chance(0.7) ? mutate(r, r.pick(base)) : r.bytes(r.length(200))
    const h = r.chance(0.5) ? r.bytes(VNET_HDR_LEN) : Buffer.from([r.below(4), r.pick([0, 1, 3, 4, 5, 0x81]), 0, 0, ...r.bytes(6)])
    const f = fromVnet(h, p)
    if (f >= 0) assert.is(offloadProblem(f, p), null, 'what fromVnet says is what a peer accepts')
    else finishVnet(h, Buffer.from(p))
  })
})

test.run()
