import {CodecError} from '../../lib/errors.js'
import {formatIPv4, formatIPv6, ipv4Bytes, ipv6Bytes, isHostName, isIPv4, isIPv6} from '../../lib/net/ip.js'

/** SOCKS5 wire messages, RFC 1928, with username/password auth of RFC 1929. */
export const SOCKS_VERSION = 5
export const SocksAuthMethod = {NONE: 0x00, USERPASS: 0x02, NO_ACCEPTABLE: 0xff} as const
export const Cmd = {CONNECT: 1, BIND: 2, UDP_ASSOCIATE: 3} as const
export const Reply = {
  SUCCEEDED: 0, GENERAL_FAILURE: 1, NOT_ALLOWED: 2, NETWORK_UNREACHABLE: 3, HOST_UNREACHABLE: 4,
  CONNECTION_REFUSED: 5, TTL_EXPIRED: 6, COMMAND_NOT_SUPPORTED: 7, ADDRESS_TYPE_NOT_SUPPORTED: 8,
} as const
const ATYP_IPV4 = 1
const ATYP_DOMAIN = 3
const ATYP_IPV6 = 4

/** Each parser returns null while input is incomplete, or the message and the bytes it used. */
export type Parsed<T> = {value: T; used: number} | null

export function parseGreeting(b: Buffer): Parsed<number[]> {
  if (b.length < 2) return null
  if (b[0] !== SOCKS_VERSION) throw new CodecError('SOCKS_VERSION', `not a SOCKS5 client (version byte ${b[0]})`)
  const n = b[1]
  if (n === 0) throw new CodecError('SOCKS_METHODS', 'SOCKS5 greeting offers no methods')
  if (b.length < 2 + n) return null
  return {value: [...b.subarray(2, 2 + n)], used: 2 + n}
}

export function parseUserPass(b: Buffer): Parsed<{user: string; pass: string}> {
  if (b.length < 2) return null
  if (b[0] !== 1) throw new CodecError('SOCKS_AUTH', `bad username/password sub-negotiation version ${b[0]}`)
  const ulen = b[1]
  if (b.length < 3 + ulen) return null
  const plen = b[2 + ulen]
  if (b.length < 3 + ulen + plen) return null
  return {
    value: {user: b.toString('utf8', 2, 2 + ulen), pass: b.toString('utf8', 3 + ulen, 3 + ulen + plen)},
    used: 3 + ulen + plen,
  }
}

function parseAddr(b: Buffer, off: number): Parsed<{host: string; port: number; atyp: number}> {
  if (b.length < off + 1) return null
  const atyp = b[off]
  let host: string
  let end: number
  if (atyp === ATYP_IPV4) {
    end = off + 5
    if (b.length < end + 2) return null
    host = formatIPv4(b, off + 1)
  } else if (atyp === ATYP_IPV6) {
    end = off + 17
    if (b.length < end + 2) return null
    host = formatIPv6(b, off + 1)
  } else if (atyp === ATYP_DOMAIN) {
    if (b.length < off + 2) return null
    const len = b[off + 1]
    if (len === 0) throw new CodecError('SOCKS_ADDRESS', 'empty domain name')
    end = off + 2 + len
    if (b.length < end + 2) return null
    host = b.toString('latin1', off + 2, end)
    // Checked here, at the edge: a NUL, non-ASCII bytes or a zoned IPv6 literal cannot cross the
    // tunnel (its UsherOpen carries a C string and 16-byte addresses) and must not reach the gate.
    if (!isHostName(host)) throw new CodecError('SOCKS_ADDRESS', `not a host name: ${JSON.stringify(host.slice(0, 64))}`)
  } else throw new CodecError('SOCKS_ATYP', `address type ${atyp} not supported`)
  return {value: {host, port: b.readUInt16BE(end), atyp}, used: end + 2 - off}
}

export interface SocksRequest {
  cmd: number
  host: string
  port: number
}

export function parseSocksRequest(b: Buffer): Parsed<SocksRequest> {
  if (b.length < 4) return null
  if (b[0] !== SOCKS_VERSION) throw new CodecError('SOCKS_VERSION', `bad SOCKS5 request version ${b[0]}`)
  const a = parseAddr(b, 3)
  if (!a) return null
  return {value: {cmd: b[1], host: a.value.host, port: a.value.port}, used: 3 + a.used}
}

function encodeAddr(host: string, port: number): Buffer {
  let head: Buffer
  if (isIPv4(host)) head = Buffer.concat([Buffer.from([ATYP_IPV4]), ipv4Bytes(host)])
  else if (isIPv6(host)) {
    // A local address may carry a zone ("fe80::1%eth0"); the reply has 16 bytes, no room for it.
    head = Buffer.concat([Buffer.from([ATYP_IPV6]), ipv6Bytes(host.replace(/%.*$/, ''))])
  } else {
    const name = Buffer.from(host, 'latin1')
    if (name.length === 0 || name.length > 255) throw new CodecError('SOCKS_ADDRESS', 'domain name must be 1-255 bytes')
    head = Buffer.concat([Buffer.from([ATYP_DOMAIN, name.length]), name])
  }
  const p = Buffer.alloc(2)
  p.writeUInt16BE(port)
  return Buffer.concat([head, p])
}

export function encodeMethodSelect(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method])
}

export function encodeAuthStatus(ok: boolean): Buffer {
  return Buffer.from([1, ok ? 0 : 1])
}

export function encodeReply(rep: number, host = '0.0.0.0', port = 0): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, rep, 0]), encodeAddr(host, port)])
}

export interface SocksUdp {
  frag: number
  host: string
  port: number
  data: Buffer
}

/** A UDP ASSOCIATE datagram (RFC 1928 section 7); a datagram is complete or malformed. */
export function parseUdp(b: Buffer): SocksUdp {
  if (b.length < 4) throw new CodecError('SOCKS_UDP', 'SOCKS5 UDP datagram too short')
  const a = parseAddr(b, 3)
  if (!a) throw new CodecError('SOCKS_UDP', 'SOCKS5 UDP datagram truncated')
  return {frag: b[2], host: a.value.host, port: a.value.port, data: b.subarray(3 + a.used)}
}

export function encodeUdp(host: string, port: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0]), encodeAddr(host, port), data])
}
