import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {encodeArp} from '../../src/inet/codec/arp.js'
import {encodeDhcp, Opt} from '../../src/inet/codec/dhcp.js'
import {encodeEth, EtherType} from '../../src/inet/codec/ethernet.js'
import {encodeIpv4, encodeUdpIpv4} from '../../src/inet/codec/ipv4.js'
import {ethFields, ipFields} from '../../src/inet/trace.js'
import {fuzz, mutate} from '../helpers/fuzz.js'

const A = '198.18.10.2'
const B = '198.18.20.5'

test('ICMP echo request: addresses, TTL, type, id and sequence', () => {
  const icmp = Buffer.from('08000000abcd0007', 'hex')
  assert.equal(ipFields(encodeIpv4({src: A, dst: B, protocol: 1, ttl: 64, payload: icmp})),
    {src: A, dst: B, ttl: 64, ipLen: 28, ipProto: 'icmp', icmp: 'echo-request', code: 0, id: 0xabcd, seq: 7})
})

test('TCP SYN+ACK: ports, flags, sequence numbers, window and payload size', () => {
  const tcp = Buffer.alloc(24)
  tcp.writeUInt16BE(5001, 0)
  tcp.writeUInt16BE(40000, 2)
  tcp.writeUInt32BE(1000, 4)
  tcp.writeUInt32BE(2000, 8)
  tcp[12] = 5 << 4
  tcp[13] = 0x12
  tcp.writeUInt16BE(65535, 14)
  assert.equal(ipFields(encodeIpv4({src: B, dst: A, protocol: 6, ttl: 63, payload: tcp})),
    {src: B, dst: A, ttl: 63, ipLen: 44, ipProto: 'tcp', sport: 5001, dport: 40000, flags: 'SYN,ACK', seqNo: 1000, ackNo: 2000, win: 65535, data: 4})
})

test('UDP, and DHCP inside UDP 68 -> 67 within an Ethernet frame', () => {
  assert.equal(ipFields(encodeUdpIpv4(A, '198.18.20.53', {srcPort: 5353, dstPort: 53, payload: Buffer.from('q')})),
    {src: A, dst: '198.18.20.53', ttl: 64, ipLen: 29, ipProto: 'udp', sport: 5353, dport: 53, data: 1})
  const dhcp = encodeDhcp({op: 1, xid: 0x1234abcd, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr: '52:54:00:12:34:56',
    options: new Map([[Opt.MESSAGE_TYPE, Buffer.from([1])]])})
  const f = ethFields(encodeEth({dst: 'ff:ff:ff:ff:ff:ff', src: '52:54:00:12:34:56', type: EtherType.IPV4, payload: encodeUdpIpv4('0.0.0.0', '255.255.255.255', {srcPort: 68, dstPort: 67, payload: dhcp})}))
  assert.is(f.dhcp, 'DISCOVER')
  assert.is(f.xid, '0x1234abcd')
  assert.is(f.chaddr, '52:54:00:12:34:56')
  assert.is(f.ethDst, 'ff:ff:ff:ff:ff:ff')
})

test('ARP request within an Ethernet frame', () => {
  const arp = encodeArp({op: 'request', senderMac: '52:54:00:12:34:56', senderIp: A, targetMac: '00:00:00:00:00:00', targetIp: '198.18.10.1'})
  assert.equal(ethFields(encodeEth({dst: 'ff:ff:ff:ff:ff:ff', src: '52:54:00:12:34:56', type: EtherType.ARP, payload: arp})),
    {ethSrc: '52:54:00:12:34:56', ethDst: 'ff:ff:ff:ff:ff:ff', arp: 'request', senderIp: A, senderMac: '52:54:00:12:34:56', targetIp: '198.18.10.1'})
})

test('malformed and random input is shown as malformed, never thrown', () => {
  assert.is(ipFields(Buffer.from('4500', 'hex')).inner, 'malformed')
  assert.is(ethFields(Buffer.alloc(3)).inner, 'malformed')
  const base = encodeUdpIpv4(A, B, {srcPort: 68, dstPort: 67, payload: Buffer.alloc(260)})
  fuzz('packet trace on mutated packets', (r) => {
    const b = mutate(r, base)
    ipFields(b)
    ethFields(Buffer.concat([Buffer.from('ffffffffffff5254001234560800', 'hex'), b]))
  })
})

test.run()
