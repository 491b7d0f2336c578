import ipaddr from 'ipaddr.js'

// The same expressions as node:net's isIPv4/isIPv6 (lib/internal/net.js), so codecs need no socket
// module. Not ipaddr.js: its isValid parses and throws, 16 us a call against 80 ns here, and
// usher.ts checks an address per UDP datagram.
const V4_SEG = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])'
const V4 = `(?:${V4_SEG}\\.){3}${V4_SEG}`
const V6_SEG = '(?:[0-9a-fA-F]{1,4})'
const IPV4_RE = new RegExp(`^${V4}$`)
const IPV6_RE = new RegExp('^(?:' +
  `(?:${V6_SEG}:){7}(?:${V6_SEG}|:)|` +
  `(?:${V6_SEG}:){6}(?:${V4}|:${V6_SEG}|:)|` +
  `(?:${V6_SEG}:){5}(?::${V4}|(?::${V6_SEG}){1,2}|:)|` +
  `(?:${V6_SEG}:){4}(?:(?::${V6_SEG}){0,1}:${V4}|(?::${V6_SEG}){1,3}|:)|` +
  `(?:${V6_SEG}:){3}(?:(?::${V6_SEG}){0,2}:${V4}|(?::${V6_SEG}){1,4}|:)|` +
  `(?:${V6_SEG}:){2}(?:(?::${V6_SEG}){0,3}:${V4}|(?::${V6_SEG}){1,5}|:)|` +
  `(?:${V6_SEG}:){1}(?:(?::${V6_SEG}){0,4}:${V4}|(?::${V6_SEG}){1,6}|:)|` +
  `(?::(?:(?::${V6_SEG}){0,5}:${V4}|(?::${V6_SEG}){1,7}|:))` +
  ')(?:%[0-9a-zA-Z-.:]{1,})?$')

export function isIPv4(s: string): boolean {
  return IPV4_RE.test(s)
}

export function isIPv6(s: string): boolean {
  return IPV6_RE.test(s)
}

/**
 * A host a peer may ask the far end to reach: an IPv4 or IPv6 literal without a zone (a scope id
 * names an interface of this machine, meaningless behind the gate), or a name of letters, digits,
 * '_', '-' and dots of at most 253 characters, as the CLI accepts (cli/parse.ts): nothing that
 * a C string, a resolver or a log line could read differently.
 */
export function isHostName(s: string): boolean {
  if (isIPv4(s)) return true
  if (s.includes(':')) return !s.includes('%') && isIPv6(s)
  return /^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/.test(s)
}

/** 4, 6 or 0, as node:net's isIP. */
export function isIP(s: string): 0 | 4 | 6 {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0
}

/** Address bytes for the wire codecs; inputs are already validated by isIPv4/isIPv6. */
export function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ipaddr.IPv4.parse(ip).toByteArray())
}

/** Dotted quad of the four bytes at `off`. */
export function formatIPv4(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`
}

/** Dotted quad of a 32-bit address held as a number. */
export function ipv4FromU32(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

/** The dotted netmask of a prefix length ("255.255.255.0" for 24). */
export function ipv4Mask(prefix: number): string {
  return ipv4FromU32(prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0)
}

/**
 * A dotted IPv4 address as a 32-bit number, -1 if it is not one. Without regular expressions or
 * allocation: the STUN server calls it for every plain Binding request.
 */
export function ipv4ToU32(a: string): number {
  let n = 0
  let part = 0
  let dots = 0
  let digits = 0
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i)
    if (c === 46) {
      if (!digits || ++dots > 3) return -1
      n = n * 256 + part
      part = 0
      digits = 0
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + c - 48
      digits++
      if (part > 255) return -1
    } else return -1
  }
  return dots === 3 && digits ? n * 256 + part : -1
}

/** The IPv4 address of "a.b.c.d" or "::ffff:a.b.c.d" (an IPv4-mapped IPv6 socket address); null otherwise. */
export function unmapIPv4(addr: string): string | null {
  const m = addr.match(/^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i)
  return m && ipv4ToU32(m[1]) >= 0 ? m[1] : null
}

export function ipv6Bytes(ip: string): Buffer {
  return Buffer.from(ipaddr.IPv6.parse(ip).toByteArray())
}

/** RFC 5952 text of the sixteen bytes at `off` (the longest run of zero groups compressed). */
export function formatIPv6(b: Buffer, off: number): string {
  return ipaddr.fromByteArray([...b.subarray(off, off + 16)]).toString()
}
