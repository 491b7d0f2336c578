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

/** 4, 6 or 0, as node:net's isIP. */
export function isIP(s: string): 0 | 4 | 6 {
  return isIPv4(s) ? 4 : isIPv6(s) ? 6 : 0
}

/** Address bytes for the wire codecs; inputs are already validated by isIPv4/isIPv6. */
export function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number))
}

/** Dotted quad of the four bytes at `off`. */
export function formatIPv4(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`
}

/** Dotted quad of a 32-bit address held as a number. */
export function ipv4FromU32(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
}

export function ipv6Bytes(ip: string): Buffer {
  // Expand "::" and any embedded IPv4 tail into eight 16-bit groups.
  let s = ip
  const v4 = s.match(/(\d+\.\d+\.\d+\.\d+)$/)
  if (v4) {
    const b = ipv4Bytes(v4[1])
    s = s.slice(0, -v4[1].length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`
  }
  const [left, right] = s.includes('::') ? s.split('::') : [s, undefined]
  const l = left ? left.split(':') : []
  const r = right ? right.split(':') : []
  const groups = right === undefined ? l : [...l, ...Array(8 - l.length - r.length).fill('0'), ...r]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

export function formatIPv6(b: Buffer, off: number): string {
  const groups: string[] = []
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(off + i * 2).toString(16))
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  if (best < 0) return groups.join(':')
  return groups.slice(0, best).join(':') + '::' + groups.slice(best + bestLen).join(':')
}

