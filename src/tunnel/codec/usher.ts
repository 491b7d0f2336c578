import {CodecError, cString, need, readCString} from '../../lib/errors.js'
import {encodeFrame, encodeHeader, type RawFrame} from './frame.js'
import {formatIPv6, ipv4Bytes, ipv4FromU32, ipv4ToU32, ipv6Bytes, isIPv4, isIPv6} from '../../lib/net/ip.js'

/** Usher record types, seed 001 "Description of Data Structures". */
export const UsherType = {
  OPEN: 1,
  OPEN_REPLY: -1,
  CLOSE: 2,
  SEND: 3,
  SEND_UDP: 4,
  ACK: 5,
  END: 6,
  RST: 7,
} as const

export const PROTO_TCP = 6
export const PROTO_UDP = 17
/** ADDRTYPE 1 and 2 are the seed's; 3 (IPv6, 16 bytes) is tunkit's extension. */
export const ADDR_IPV4 = 1
export const ADDR_HOSTNAME = 2
export const ADDR_IPV6 = 3

export type Direction = 'read' | 'write' | 'both'
const DIRECTIONS: Direction[] = ['read', 'write', 'both'] // USHER_READ=0, USHER_WRITE=1, USHER_BOTH=2

export type UsherRecord =
  | {kind: 'open'; session: number; protocol: 'tcp' | 'udp'; host: string; port: number}
  | {kind: 'open-reply'; session: number; rc: number; reason?: string}
  | {kind: 'close'; session: number; direction: Direction}
  | {kind: 'send'; session: number; data: Buffer}
  | {kind: 'send-udp'; session: number; addr: string; port: number; remoteAddr: string; remotePort: number; data: Buffer}
  | {kind: 'ack'; session: number; size: number}
  | {kind: 'end'; session: number; reason: string}
  | {kind: 'rst'; session: number; reason: string}

export const MAX_HOSTNAME = 255

export function isUsherType(type: number): boolean {
  return type >= -1 && type <= 7 && type !== 0
}

function u32ip(ip: string): number {
  if (ip === '' || ip === '0.0.0.0') return 0
  const n = ipv4ToU32(ip)
  if (n < 0) throw new CodecError('BAD_ADDRESS', `UsherSendUdp carries IPv4 addresses only, got ${ip}`)
  return n
}

export function encodeUsher(r: UsherRecord): Buffer {
  switch (r.kind) {
    case 'open': {
      let addrType: number
      let addr: Buffer
      if (isIPv4(r.host)) { addrType = ADDR_IPV4; addr = ipv4Bytes(r.host) }
      else if (isIPv6(r.host)) {
        // 16 bytes on the wire: a zone ("%eth0") would be lost, and ipaddr.js throws on some.
        if (r.host.includes('%')) throw new CodecError('BAD_ADDRESS', `IPv6 zone in "${r.host}" cannot cross the tunnel`)
        addrType = ADDR_IPV6; addr = ipv6Bytes(r.host)
      }
      else {
        if (r.host.length === 0 || Buffer.byteLength(r.host) > MAX_HOSTNAME) throw new CodecError('BAD_ADDRESS', `bad host name "${r.host}"`)
        addrType = ADDR_HOSTNAME
        addr = cString(r.host)
      }
      const body = Buffer.allocUnsafe(6 + addr.length)
      body.writeUInt16BE(r.protocol === 'tcp' ? PROTO_TCP : PROTO_UDP, 0)
      body.writeUInt16BE(addrType, 2)
      body.writeUInt16BE(r.port, 4)
      addr.copy(body, 6)
      return encodeFrame(UsherType.OPEN, r.session, body)
    }
    case 'open-reply': {
      const reason = r.rc === -1 ? cString(r.reason ?? 'failed') : Buffer.alloc(0)
      const body = Buffer.allocUnsafe(2 + reason.length)
      body.writeInt16BE(r.rc, 0)
      reason.copy(body, 2)
      return encodeFrame(UsherType.OPEN_REPLY, r.session, body)
    }
    case 'close': {
      const body = Buffer.allocUnsafe(2)
      body.writeUInt16BE(DIRECTIONS.indexOf(r.direction), 0)
      return encodeFrame(UsherType.CLOSE, r.session, body)
    }
    case 'send':
      return Buffer.concat([encodeHeader(UsherType.SEND, r.session, r.data.length), r.data])
    case 'send-udp': {
      const body = Buffer.allocUnsafe(12 + r.data.length)
      body.writeUInt32BE(u32ip(r.addr), 0)
      body.writeUInt16BE(r.port, 4)
      body.writeUInt32BE(u32ip(r.remoteAddr), 6)
      body.writeUInt16BE(r.remotePort, 10)
      r.data.copy(body, 12)
      return encodeFrame(UsherType.SEND_UDP, r.session, body)
    }
    case 'ack': {
      const body = Buffer.allocUnsafe(2)
      body.writeUInt16BE(r.size, 0)
      return encodeFrame(UsherType.ACK, r.session, body)
    }
    case 'end':
    case 'rst':
      return encodeFrame(r.kind === 'end' ? UsherType.END : UsherType.RST, r.session, cString(r.reason))
  }
}

export function decodeUsher(f: RawFrame): UsherRecord {
  const b = f.body
  const session = f.id
  switch (f.type) {
    case UsherType.OPEN: {
      need(b, 0, 6, 'UsherOpen')
      const proto = b.readUInt16BE(0)
      if (proto !== PROTO_TCP && proto !== PROTO_UDP) throw new CodecError('BAD_PROTOCOL', `UsherOpen: unknown protocol ${proto}`)
      const addrType = b.readUInt16BE(2)
      const port = b.readUInt16BE(4)
      let host: string
      if (addrType === ADDR_IPV4) {
        need(b, 6, 4, 'UsherOpen IPv4 address')
        host = ipv4FromU32(b.readUInt32BE(6))
      } else if (addrType === ADDR_IPV6) {
        need(b, 6, 16, 'UsherOpen IPv6 address')
        host = formatIPv6(b, 6)
      } else if (addrType === ADDR_HOSTNAME) {
        ;[host] = readCString(b, 6, 'UsherOpen host name')
        if (host.length === 0 || Buffer.byteLength(host) > MAX_HOSTNAME) throw new CodecError('BAD_ADDRESS', 'UsherOpen: bad host name length')
      } else throw new CodecError('BAD_ADDRESS', `UsherOpen: unknown address type ${addrType}`)
      return {kind: 'open', session, protocol: proto === PROTO_TCP ? 'tcp' : 'udp', host, port}
    }
    case UsherType.OPEN_REPLY: {
      need(b, 0, 2, 'UsherOpenReply')
      const rc = b.readInt16BE(0)
      if (rc < -1) throw new CodecError('BAD_RC', `UsherOpenReply: bad return code ${rc}`)
      if (rc !== -1) return {kind: 'open-reply', session, rc}
      const [reason] = b.length > 2 ? readCString(b, 2, 'UsherOpenReply reason') : ['failed']
      return {kind: 'open-reply', session, rc, reason}
    }
    case UsherType.CLOSE: {
      need(b, 0, 2, 'UsherClose')
      const d = DIRECTIONS[b.readUInt16BE(0)]
      if (!d) throw new CodecError('BAD_DIRECTION', `UsherClose: unknown direction ${b.readUInt16BE(0)}`)
      return {kind: 'close', session, direction: d}
    }
    case UsherType.SEND:
      return {kind: 'send', session, data: b}
    case UsherType.SEND_UDP:
      need(b, 0, 12, 'UsherSendUdp')
      return {
        kind: 'send-udp', session,
        addr: ipv4FromU32(b.readUInt32BE(0)), port: b.readUInt16BE(4),
        remoteAddr: ipv4FromU32(b.readUInt32BE(6)), remotePort: b.readUInt16BE(10),
        data: b.subarray(12),
      }
    case UsherType.ACK:
      need(b, 0, 2, 'UsherAck')
      return {kind: 'ack', session, size: b.readUInt16BE(0)}
    case UsherType.END:
    case UsherType.RST: {
      const [reason] = b.length > 0 ? readCString(b, 0, f.type === UsherType.END ? 'UsherEnd' : 'UsherRST') : ['']
      return {kind: f.type === UsherType.END ? 'end' : 'rst', session, reason}
    }
    default:
      throw new CodecError('BAD_TYPE', `unknown Usher record type ${f.type}`)
  }
}
