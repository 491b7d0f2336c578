import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {decodeArp, encodeArp} from '../../../src/inet/codec/arp.js'
import {decodeDhcp, encodeClasslessRoutes, encodeDhcp, Opt} from '../../../src/inet/codec/dhcp.js'
import {decodeEth, encodeEth, EtherType} from '../../../src/inet/codec/ethernet.js'
import {checksum, decodeIpv4, decodeUdp, encodeUdpIpv4} from '../../../src/inet/codec/ipv4.js'
import {emulate, GATEWAY_MAC, type AdapterConfig} from '../../../src/vpn/core/emulators.js'
import {fuzz, mutate} from '../../helpers/fuzz.js'

const cfg: AdapterConfig = {address: '198.18.10.2', prefix: 24, gateway: '198.18.10.1', routes: ['198.18.20.0/24', '198.18.128.0/17'], dns: ['198.18.20.53'], leaseSec: 600}
const host = '52:54:00:12:34:56'

function dhcpFrame(type: number, extra: [number, Buffer][] = [], flags = 0): Buffer {
  const payload = encodeDhcp({op: 1, xid: 0x1234abcd, flags, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr: host,
    options: new Map<number, Buffer>([[Opt.MESSAGE_TYPE, Buffer.from([type])], ...extra])})
  return encodeEth({dst: 'ff:ff:ff:ff:ff:ff', src: host, type: EtherType.IPV4, payload: encodeUdpIpv4('0.0.0.0', '255.255.255.255', {srcPort: 68, dstPort: 67, payload})})
}

function reply(frame: Buffer) {
  const r = emulate(cfg, frame)
  assert.ok(r.handled && r.replies.length === 1)
  const eth = decodeEth((r as {replies: Buffer[]}).replies[0])
  const ip = decodeIpv4(eth.payload)
  assert.is(checksum(eth.payload, 0, 20), 0, 'IPv4 header checksum verifies')
  return {eth, ip, dhcp: decodeDhcp(decodeUdp(ip.payload).payload)}
}

test('RFC 3442 classless routes encode width, significant octets and router', () => {
  assert.is(encodeClasslessRoutes([{cidr: '198.18.20.0/24', via: '198.18.10.1'}, {cidr: '0.0.0.0/0', via: '198.18.10.1'}]).toString('hex'), '18c61214c6120a0100c6120a01')
})

test('DISCOVER gets an OFFER with the address, mask, router, routes, DNS and lease, unicast to the client', () => {
  const {eth, ip, dhcp} = reply(dhcpFrame(1))
  assert.is(eth.dst, host)
  assert.is(eth.src, GATEWAY_MAC)
  assert.equal([ip.src, ip.dst], ['198.18.10.1', '198.18.10.2'])
  assert.is(dhcp.yiaddr, '198.18.10.2')
  assert.is(dhcp.xid, 0x1234abcd)
  assert.is(dhcp.options.get(Opt.MESSAGE_TYPE)![0], 2)
  assert.is(dhcp.options.get(Opt.SUBNET_MASK)!.toString('hex'), 'ffffff00')
  assert.is(dhcp.options.get(Opt.ROUTER)!.toString('hex'), 'c6120a01')
  assert.is(dhcp.options.get(Opt.LEASE_TIME)!.readUInt32BE(0), 600)
  assert.is(dhcp.options.get(Opt.CLASSLESS_ROUTES)!.toString('hex'), '18c61214c6120a0111c61280c6120a01')
})

test('REQUEST for our address is ACKed; for another address NAKed (broadcast); broadcast flag honoured', () => {
  const ok = reply(dhcpFrame(3, [[Opt.REQUESTED_IP, Buffer.from([198, 18, 10, 2])]]))
  assert.is(ok.dhcp.options.get(Opt.MESSAGE_TYPE)![0], 5)
  const nak = reply(dhcpFrame(3, [[Opt.REQUESTED_IP, Buffer.from([198, 18, 10, 99])]]))
  assert.is(nak.dhcp.options.get(Opt.MESSAGE_TYPE)![0], 6)
  assert.is(nak.ip.dst, '255.255.255.255')
  const bcast = reply(dhcpFrame(1, [], 0x8000))
  assert.is(bcast.eth.dst, 'ff:ff:ff:ff:ff:ff')
})

test('ARP: requests for the gate address get the reserved MAC; others are ignored', () => {
  const ask = (target: string) => encodeEth({dst: 'ff:ff:ff:ff:ff:ff', src: host, type: EtherType.ARP,
    payload: encodeArp({op: 'request', senderMac: host, senderIp: '198.18.10.2', targetMac: '00:00:00:00:00:00', targetIp: target})})
  const r = emulate(cfg, ask('198.18.10.1'))
  assert.ok(r.handled)
  const a = decodeArp(decodeEth((r as {replies: Buffer[]}).replies[0]).payload)
  assert.equal([a.op, a.senderMac, a.senderIp, a.targetMac, a.targetIp], ['reply', GATEWAY_MAC, '198.18.10.1', host, '198.18.10.2'])
  assert.equal(emulate(cfg, ask('198.18.10.7')), {handled: true, replies: []})
})

test('ordinary IP traffic is not the emulators\' business', () => {
  const frame = encodeEth({dst: GATEWAY_MAC, src: host, type: EtherType.IPV4, payload: encodeUdpIpv4('198.18.10.2', '198.18.20.5', {srcPort: 5000, dstPort: 53, payload: Buffer.from('q')})})
  assert.equal(emulate(cfg, frame), {handled: false})
})

test('fuzz: mutated frames never throw, whatever they claim to be', () => {
  const seeds = [dhcpFrame(1), dhcpFrame(3, [[Opt.REQUESTED_IP, Buffer.from([198, 18, 10, 2])]]),
    encodeEth({dst: 'ff:ff:ff:ff:ff:ff', src: host, type: EtherType.ARP, payload: encodeArp({op: 'request', senderMac: host, senderIp: '198.18.10.2', targetMac: '00:00:00:00:00:00', targetIp: '198.18.10.1'})})]
  fuzz('emulators on mutated frames', (r) => void emulate(cfg, mutate(r, r.pick(seeds))))
})

test.run()
