import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {carriesIpv4, encodeEth, EtherType} from '../../../src/inet/codec/ethernet.js'
import {encodeUdpIpv4, ipv4Dst, ipv4Src, isIpv4Packet} from '../../../src/inet/codec/ipv4.js'

const packet = encodeUdpIpv4('198.18.10.2', '203.0.113.9', {srcPort: 5000, dstPort: 53, payload: Buffer.from('q')})

test('IPv4 addresses are read in place', () => {
  assert.ok(isIpv4Packet(packet))
  assert.is(ipv4Src(packet), '198.18.10.2')
  assert.is(ipv4Dst(packet), '203.0.113.9')
})

test('IPv6 and short packets are not IPv4 packets', () => {
  const v6 = Buffer.alloc(40)
  v6[0] = 0x60
  assert.not.ok(isIpv4Packet(v6))
  assert.not.ok(isIpv4Packet(packet.subarray(0, 19)))
  assert.not.ok(isIpv4Packet(Buffer.alloc(0)))
})

test('an Ethernet frame carries IPv4 by its EtherType, and only with a payload', () => {
  const mac = '52:54:00:12:34:56'
  assert.ok(carriesIpv4(encodeEth({dst: mac, src: mac, type: EtherType.IPV4, payload: packet})))
  assert.not.ok(carriesIpv4(encodeEth({dst: mac, src: mac, type: EtherType.ARP, payload: packet})))
  assert.not.ok(carriesIpv4(encodeEth({dst: mac, src: mac, type: EtherType.IPV4, payload: Buffer.alloc(0)})))
  assert.not.ok(carriesIpv4(Buffer.alloc(13)))
})

test.run()
