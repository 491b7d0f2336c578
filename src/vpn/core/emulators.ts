import {decodeArp, encodeArp} from '../../inet/codec/arp.js'
import {CodecError} from '../../lib/errors.js'
import {BROADCAST_MAC, decodeEth, encodeEth, EtherType} from '../../inet/codec/ethernet.js'
import {DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpType, decodeDhcp, encodeClasslessRoutes, encodeDhcp, Opt, u32, type Dhcp} from '../../inet/codec/dhcp.js'
import {ipv4Bytes, ipv4Mask} from '../../lib/net/ip.js'
import {decodeIpv4, decodeUdp, encodeUdpIpv4, PROTO_UDP} from '../../inet/codec/ipv4.js'

/**
 * The DHCP and ARP server emulators of the pseudo network adapter (seed 000, Fig. 15), sans-I/O:
 * an Ethernet frame from the host's stack in, the frames to give back out. The host's DHCP client
 * learns the address, router, routes and DNS that the gate's RESPONSE carried; its ARP learns a
 * reserved, locally administered MAC for the gate's adapter address.
 */
export interface AdapterConfig {
  /** The portal's adapter address and prefix length, e.g. 198.18.10.2/24. */
  address: string
  prefix: number
  /** The gate's adapter address: router, DHCP server id and the address ARP answers for. */
  gateway: string
  routes: string[]
  dns: string[]
  leaseSec: number
}

/** Locally administered (bit 1 of the first octet), unicast: "tk" then the gateway marker. */
export const GATEWAY_MAC = '02:74:6b:00:00:01'

export type EmulatorResult = {handled: true; replies: Buffer[]; note?: string} | {handled: false}

export function emulate(cfg: AdapterConfig, frame: Buffer): EmulatorResult {
  try {
    const eth = decodeEth(frame)
    if (eth.type === EtherType.ARP) return arp(cfg, eth.src, eth.payload)
    if (eth.type !== EtherType.IPV4) return {handled: false}
    const ip = decodeIpv4(eth.payload)
    if (ip.protocol !== PROTO_UDP) return {handled: false}
    const udp = decodeUdp(ip.payload)
    if (udp.dstPort !== DHCP_SERVER_PORT) return {handled: false}
    return dhcp(cfg, decodeDhcp(udp.payload))
  } catch (e) {
    if (e instanceof CodecError) return {handled: true, replies: [], note: `dropped malformed frame: ${e.message}`}
    throw e
  }
}

function arp(cfg: AdapterConfig, from: string, payload: Buffer): EmulatorResult {
  const a = decodeArp(payload)
  if (a.op !== 'request' || a.targetIp !== cfg.gateway) return {handled: true, replies: []}
  const reply = encodeArp({op: 'reply', senderMac: GATEWAY_MAC, senderIp: cfg.gateway, targetMac: a.senderMac, targetIp: a.senderIp})
  return {handled: true, replies: [encodeEth({dst: from, src: GATEWAY_MAC, type: EtherType.ARP, payload: reply})], note: `ARP: ${cfg.gateway} is-at ${GATEWAY_MAC}`}
}

function dhcp(cfg: AdapterConfig, m: Dhcp): EmulatorResult {
  if (m.op !== 1) return {handled: true, replies: []}
  const type = m.options.get(Opt.MESSAGE_TYPE)?.[0]
  let replyType: number
  if (type === DhcpType.DISCOVER) replyType = DhcpType.OFFER
  else if (type === DhcpType.REQUEST) {
    const wanted = m.options.get(Opt.REQUESTED_IP)
    const asked = wanted?.length === 4 ? `${wanted[0]}.${wanted[1]}.${wanted[2]}.${wanted[3]}` : m.ciaddr
    replyType = asked === cfg.address ? DhcpType.ACK : DhcpType.NAK
  } else if (type === DhcpType.INFORM) replyType = DhcpType.ACK
  else return {handled: true, replies: []} // RELEASE, DECLINE: nothing to answer
  const options = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, Buffer.from([replyType])], [Opt.SERVER_ID, ipv4Bytes(cfg.gateway)]])
  if (replyType !== DhcpType.NAK) {
    options.set(Opt.SUBNET_MASK, ipv4Bytes(ipv4Mask(cfg.prefix)))
    options.set(Opt.ROUTER, ipv4Bytes(cfg.gateway))
    if (cfg.dns.length) options.set(Opt.DNS, Buffer.concat(cfg.dns.map(ipv4Bytes)))
    if (type !== DhcpType.INFORM) {
      options.set(Opt.LEASE_TIME, u32(cfg.leaseSec))
      options.set(Opt.RENEWAL_TIME, u32(Math.floor(cfg.leaseSec / 2)))
      options.set(Opt.REBINDING_TIME, u32(Math.floor((cfg.leaseSec * 7) / 8)))
    }
    // RFC 3442: with option 121 a client ignores option 3, so only these routes use the adapter
    // (a split tunnel; no default route).
    if (cfg.routes.length) options.set(Opt.CLASSLESS_ROUTES, encodeClasslessRoutes([...cfg.routes.map((cidr) => ({cidr, via: cfg.gateway}))]))
  }
  const yiaddr = replyType === DhcpType.NAK || type === DhcpType.INFORM ? '0.0.0.0' : cfg.address
  const payload = encodeDhcp({op: 2, xid: m.xid, flags: m.flags, ciaddr: type === DhcpType.INFORM ? m.ciaddr : '0.0.0.0', yiaddr, siaddr: cfg.gateway, giaddr: '0.0.0.0', chaddr: m.chaddr, options})
  // RFC 2131 section 4.1: broadcast when the client asks for it (or for a NAK), else unicast to it.
  const broadcast = (m.flags & 0x8000) !== 0 || replyType === DhcpType.NAK
  const dstIp = broadcast ? '255.255.255.255' : yiaddr === '0.0.0.0' ? m.ciaddr : yiaddr
  const packet = encodeUdpIpv4(cfg.gateway, dstIp, {srcPort: DHCP_SERVER_PORT, dstPort: DHCP_CLIENT_PORT, payload})
  const names: Record<number, string> = {2: 'OFFER', 5: 'ACK', 6: 'NAK'}
  return {
    handled: true,
    replies: [encodeEth({dst: broadcast ? BROADCAST_MAC : m.chaddr, src: GATEWAY_MAC, type: EtherType.IPV4, payload: packet})],
    note: `DHCP ${names[replyType]} ${yiaddr} to ${m.chaddr}`,
  }
}
