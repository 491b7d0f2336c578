import {CodecError, need} from '../../lib/errors.js'
import {macBytes, macString} from './ethernet.js'
import {formatIPv4, ipv4Bytes} from '../../lib/net/ip.js'

/** DHCP (RFC 2131) messages with the options of RFC 2132 and RFC 3442 the pseudo adapter uses. */
export const DHCP_SERVER_PORT = 67
export const DHCP_CLIENT_PORT = 68
const MAGIC = 0x63825363

export const DhcpType = {DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8} as const

export const Opt = {
  SUBNET_MASK: 1, ROUTER: 3, DNS: 6, REQUESTED_IP: 50, LEASE_TIME: 51, MESSAGE_TYPE: 53, SERVER_ID: 54,
  RENEWAL_TIME: 58, REBINDING_TIME: 59, CLASSLESS_ROUTES: 121, END: 255, PAD: 0,
} as const

export interface Dhcp {
  op: 1 | 2
  xid: number
  flags: number
  ciaddr: string
  yiaddr: string
  siaddr: string
  giaddr: string
  chaddr: string
  /** Raw option values by code (the last one wins when a code repeats). */
  options: Map<number, Buffer>
}

export function decodeDhcp(b: Buffer): Dhcp {
  need(b, 0, 240, 'DHCP message')
  if (b[1] !== 1 || b[2] !== 6) throw new CodecError('DHCP_HW', 'DHCP over something other than Ethernet')
  if (b.readUInt32BE(236) !== MAGIC) throw new CodecError('DHCP_MAGIC', 'no DHCP magic cookie')
  const op = b[0]
  if (op !== 1 && op !== 2) throw new CodecError('DHCP_OP', `bad BOOTP op ${op}`)
  const options = new Map<number, Buffer>()
  let off = 240
  while (off < b.length) {
    const code = b[off++]
    if (code === Opt.PAD) continue
    if (code === Opt.END) break
    need(b, off, 1, 'DHCP option length')
    const len = b[off++]
    need(b, off, len, `DHCP option ${code}`)
    options.set(code, b.subarray(off, off + len))
    off += len
  }
  return {op, xid: b.readUInt32BE(4), flags: b.readUInt16BE(10), ciaddr: formatIPv4(b, 12), yiaddr: formatIPv4(b, 16), siaddr: formatIPv4(b, 20), giaddr: formatIPv4(b, 24), chaddr: macString(b, 28), options}
}

export function encodeDhcp(m: Dhcp): Buffer {
  const head = Buffer.alloc(240)
  head[0] = m.op
  head[1] = 1
  head[2] = 6
  head.writeUInt32BE(m.xid, 4)
  head.writeUInt16BE(m.flags, 10)
  ipv4Bytes(m.ciaddr).copy(head, 12)
  ipv4Bytes(m.yiaddr).copy(head, 16)
  ipv4Bytes(m.siaddr).copy(head, 20)
  ipv4Bytes(m.giaddr).copy(head, 24)
  macBytes(m.chaddr).copy(head, 28)
  head.writeUInt32BE(MAGIC, 236)
  const opts: Buffer[] = []
  for (const [code, v] of m.options) {
    if (v.length > 255) throw new CodecError('DHCP_OPTION', `option ${code} longer than 255 bytes`)
    opts.push(Buffer.from([code, v.length]), v)
  }
  opts.push(Buffer.from([Opt.END]))
  const out = Buffer.concat([head, ...opts])
  // BOOTP clients expect at least 300 bytes (RFC 1542 section 3.1.1 / RFC 951).
  return out.length < 300 ? Buffer.concat([out, Buffer.alloc(300 - out.length)]) : out
}

/** RFC 3442: each route is width, the significant octets of the destination, then the router. */
export function encodeClasslessRoutes(routes: {cidr: string; via: string}[]): Buffer {
  return Buffer.concat(routes.map(({cidr, via}) => {
    const [net, bits] = cidr.split('/')
    const width = Number(bits)
    return Buffer.concat([Buffer.from([width]), ipv4Bytes(net).subarray(0, Math.ceil(width / 8)), ipv4Bytes(via)])
  }))
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}
