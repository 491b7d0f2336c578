import {decodeArp} from './codec/arp.js'
import {DHCP_CLIENT_PORT, DHCP_SERVER_PORT, decodeDhcp, Opt} from './codec/dhcp.js'
import {decodeEth, EtherType} from './codec/ethernet.js'
import {decodeIpv4, decodeUdp, PROTO_ICMP, PROTO_TCP, PROTO_UDP} from './codec/ipv4.js'
import {registerTrace, type TraceFields} from '../lib/trace/registry.js'

/**
 * --trace in VPN mode: the inner headers of the datagram a DATA frame carries (IPv4 with ICMP,
 * TCP or UDP, and DHCP inside UDP), and of the Ethernet frames the TAP adapter's emulators answer
 * (ARP, DHCP). Never throws: what does not decode is shown as `inner=malformed` with the reason.
 */
export function ipFields(d: Buffer): TraceFields {
  try {
    if (d.length && d[0] >> 4 === 6) return {inner: 'ipv6', ipLen: d.length}
    const ip = decodeIpv4(d)
    const f: TraceFields = {src: ip.src, dst: ip.dst, ttl: ip.ttl, ipLen: d.length}
    if (ip.protocol === PROTO_ICMP) return {...f, ipProto: 'icmp', ...icmp(ip.payload)}
    if (ip.protocol === PROTO_TCP) return {...f, ipProto: 'tcp', ...tcp(ip.payload)}
    if (ip.protocol === PROTO_UDP) return {...f, ipProto: 'udp', ...udp(ip.payload)}
    return {...f, ipProto: ip.protocol}
  } catch (e) {
    return {inner: 'malformed', why: (e as Error).message}
  }
}

export function ethFields(frame: Buffer): TraceFields {
  try {
    const eth = decodeEth(frame)
    const f: TraceFields = {ethSrc: eth.src, ethDst: eth.dst}
    if (eth.type === EtherType.ARP) {
      const a = decodeArp(eth.payload)
      return {...f, arp: a.op, senderIp: a.senderIp, senderMac: a.senderMac, targetIp: a.targetIp}
    }
    if (eth.type === EtherType.IPV4) return {...f, ...ipFields(eth.payload)}
    return {...f, ethType: `0x${eth.type.toString(16).padStart(4, '0')}`}
  } catch (e) {
    return {inner: 'malformed', why: (e as Error).message}
  }
}

const ICMP_TYPES: Record<number, string> = {0: 'echo-reply', 3: 'unreachable', 5: 'redirect', 8: 'echo-request', 11: 'time-exceeded'}
const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR']
const DHCP_TYPES = ['', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM']

function icmp(b: Buffer): TraceFields {
  if (b.length < 8) return {icmp: 'truncated'}
  const f: TraceFields = {icmp: ICMP_TYPES[b[0]] ?? `type-${b[0]}`, code: b[1]}
  if (b[0] === 0 || b[0] === 8) Object.assign(f, {id: b.readUInt16BE(4), seq: b.readUInt16BE(6)})
  return f
}

function tcp(b: Buffer): TraceFields {
  if (b.length < 20) return {tcp: 'truncated'}
  const flags = TCP_FLAGS.filter((_, i) => b[13] & (1 << i))
  return {sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), flags: flags.join(',') || 'none', seqNo: b.readUInt32BE(4), ackNo: b.readUInt32BE(8), win: b.readUInt16BE(14), data: b.length - (b[12] >> 4) * 4}
}

function udp(b: Buffer): TraceFields {
  const u = decodeUdp(b)
  const f: TraceFields = {sport: u.srcPort, dport: u.dstPort, data: u.payload.length}
  const ports = [u.srcPort, u.dstPort]
  if (ports.includes(DHCP_SERVER_PORT) && ports.includes(DHCP_CLIENT_PORT)) {
    const m = decodeDhcp(u.payload)
    const type = m.options.get(Opt.MESSAGE_TYPE)?.[0] ?? 0
    Object.assign(f, {dhcp: DHCP_TYPES[type] ?? `type-${type}`, xid: `0x${m.xid.toString(16).padStart(8, '0')}`, chaddr: m.chaddr})
    if (m.yiaddr !== '0.0.0.0') f.yiaddr = m.yiaddr
  }
  return f
}

/** Ethernet frames the TAP adapter's emulators answer (ARP, DHCP); len is the whole frame. */
export const ETHERNET_TRACE = registerTrace('ethernet', (f: Buffer) => ({type: 'ETHERNET', ...ethFields(f)}))
