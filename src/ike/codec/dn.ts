import {CodecError} from '../../lib/errors.js'

/**
 * X.501 distinguished names in DER (IKE ID type DER_ASN1_DN, RFC 7296 §3.5) and the few DER reads
 * a certificate's subject needs. Text is strongSwan's spelling, `C=ZZ, O=ks-lab, CN=gw.ks.test`;
 * only the common attribute types are known by name.
 */

const ATTRS: readonly [name: string, oid: string, tag: number][] = [
  ['C', '2.5.4.6', 0x13],
  ['ST', '2.5.4.8', 0x0c],
  ['L', '2.5.4.7', 0x0c],
  ['O', '2.5.4.10', 0x0c],
  ['OU', '2.5.4.11', 0x0c],
  ['CN', '2.5.4.3', 0x0c],
  ['SN', '2.5.4.4', 0x0c],
  ['GN', '2.5.4.42', 0x0c],
  ['T', '2.5.4.12', 0x0c],
  ['serialNumber', '2.5.4.5', 0x13],
  ['E', '1.2.840.113549.1.9.1', 0x16],
  ['DC', '0.9.2342.19200300.100.1.25', 0x16],
  ['UID', '0.9.2342.19200300.100.1.1', 0x0c],
]
const ALIASES: Readonly<Record<string, string>> = {emailaddress: 'E', s: 'ST', g: 'GN', givenname: 'GN', title: 'T', surname: 'SN'}

const UTF8 = 0x0c
const PRINTABLE = 0x13
const IA5 = 0x16
const SEQUENCE = 0x30
const SET = 0x31
const OID = 0x06

/** A DN as (type OID, value) pairs in order; each RDN of one attribute (no `+`). */
export type Rdns = [oid: string, value: string][]

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  if (n > 0xffff) throw new CodecError('LIMIT', 'DN: too long')
  return Buffer.concat([Buffer.from([tag, ...len]), body])
}

function encodeOid(oid: string): Buffer {
  const arcs = oid.split('.').map(Number)
  const out = [arcs[0] * 40 + arcs[1]]
  for (const a of arcs.slice(2)) {
    const b = [a & 0x7f]
    for (let v = Math.floor(a / 128); v > 0; v = Math.floor(v / 128)) b.unshift((v & 0x7f) | 0x80)
    out.push(...b)
  }
  return tlv(OID, Buffer.from(out))
}

function decodeOid(b: Buffer): string {
  if (!b.length) throw new CodecError('BAD_DER', 'DN: empty OID')
  const arcs = [Math.min(2, Math.floor(b[0] / 40)), b[0] - Math.min(2, Math.floor(b[0] / 40)) * 40]
  let v = 0
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i] & 0x7f)
    if (!(b[i] & 0x80)) {
      arcs.push(v)
      v = 0
    }
  }
  return arcs.join('.')
}

const isPrintable = (s: string): boolean => /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)

interface Tlv {
  tag: number
  /** Where the tag byte is, where the body starts and ends. */
  at: number
  start: number
  end: number
}

/** One DER TLV at `at`: its tag and where its body starts and ends. Definite lengths only. */
export function readTlv(b: Buffer, at: number, what: string): Tlv {
  if (at + 2 > b.length) throw new CodecError('TRUNCATED', `${what}: truncated`)
  const tag = b[at]
  let len = b[at + 1]
  let start = at + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n < 1 || n > 3 || start + n > b.length) throw new CodecError('BAD_DER', `${what}: bad length`)
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]
    start += n
  }
  if (start + len > b.length) throw new CodecError('TRUNCATED', `${what}: truncated`)
  return {tag, at, start, end: start + len}
}

/** The TLVs inside a constructed body. */
function children(b: Buffer, start: number, end: number, what: string): Tlv[] {
  const out: Tlv[] = []
  for (let at = start; at < end;) {
    const t = readTlv(b.subarray(0, end), at, what)
    out.push(t)
    at = t.end
  }
  return out
}

function decodeString(tag: number, v: Buffer): string {
  if (tag === 0x1e) {
    // BMPString: UCS-2, big-endian.
    if (v.length % 2) throw new CodecError('BAD_DER', 'DN: a BMPString of odd length')
    return Buffer.from(v).swap16().toString('utf16le')
  }
  if (tag === 0x14) return v.toString('latin1') // T61String, close enough for names
  return v.toString('utf8')
}

/** The attributes of a DER Name, in order. */
export function parseDn(der: Buffer): Rdns {
  const top = readTlv(der, 0, 'DN')
  if (top.tag !== SEQUENCE || top.end !== der.length) throw new CodecError('BAD_DER', 'DN: not a SEQUENCE')
  const out: Rdns = []
  for (const set of children(der, top.start, top.end, 'DN')) {
    if (set.tag !== SET) throw new CodecError('BAD_DER', 'DN: an RDN is not a SET')
    for (const atv of children(der, set.start, set.end, 'DN')) {
      const [t, v] = children(der, atv.start, atv.end, 'DN')
      if (atv.tag !== SEQUENCE || !t || !v || t.tag !== OID) throw new CodecError('BAD_DER', 'DN: bad attribute')
      out.push([decodeOid(der.subarray(t.start, t.end)), decodeString(v.tag, der.subarray(v.start, v.end))])
    }
  }
  return out
}

/** `C=ZZ, O=x, CN=y` → DER. A `,` or `\` inside a value is escaped with `\`. */
export function encodeDn(text: string): Buffer {
  // Split at unescaped commas; each part at its first unescaped `=`.
  const parts: {name: string; value: string}[] = []
  let name: string | undefined
  let cur = ''
  const end = (): void => {
    if (name !== undefined || cur.trim()) parts.push({name: name ?? '', value: name === undefined ? '' : cur.trim()})
    name = undefined
    cur = ''
  }
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch === '\\' && i + 1 < text.length) cur += text[++i]
    else if (ch === ',') end()
    else if (ch === '=' && name === undefined) {
      name = cur.trim()
      cur = ''
    } else cur += ch
  }
  end()
  if (!parts.length) throw new CodecError('BAD_DN', `DN "${text}": no attributes`)
  const rdns = parts.map(({name, value}) => {
    const attr = ATTRS.find(([n]) => n.toLowerCase() === (ALIASES[name.toLowerCase()] ?? name).toLowerCase())
    if (!attr) throw new CodecError('BAD_DN', `DN "${text}": unknown attribute type "${name}"`)
    if (!value) throw new CodecError('BAD_DN', `DN "${text}": ${name} has no value`)
    // As strongSwan writes them: PrintableString where the value allows it, else UTF8String.
    const tag = attr[2] === IA5 ? IA5 : isPrintable(value) ? PRINTABLE : UTF8
    return tlv(SET, tlv(SEQUENCE, Buffer.concat([encodeOid(attr[1]), tlv(tag, Buffer.from(value, 'utf8'))])))
  })
  return tlv(SEQUENCE, Buffer.concat(rdns))
}

/** A peer's text made safe for one log line: control characters as `\xNN`. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

/** DER → `C=ZZ, O=x, CN=y` (unknown types by OID). */
export function formatDn(der: Buffer): string {
  return parseDn(der).map(([oid, v]) => `${ATTRS.find((a) => a[1] === oid)?.[0] ?? oid}=${printable(v.replace(/([,\\])/g, '\\$1'))}`).join(', ')
}

/** Two DNs name the same subject: the same types in order, values equal ignoring case and spacing (RFC 5280 §7.1, simplified). */
export function dnEqual(a: Buffer, b: Buffer): boolean {
  const [x, y] = [parseDn(a), parseDn(b)]
  const norm = (s: string): string => s.trim().replace(/\s+/g, ' ').toLowerCase()
  return x.length === y.length && x.every(([oid, v], i) => oid === y[i][0] && norm(v) === norm(y[i][1]))
}

/**
 * The subject Name of a DER certificate (RFC 5280 §4.1: tbsCertificate's sixth field, after the
 * optional [0] version, serial, signature algorithm, issuer and validity).
 */
export function certSubject(cert: Buffer): Buffer {
  const c = readTlv(cert, 0, 'certificate')
  const tbs = readTlv(cert, c.start, 'certificate')
  const fields = children(cert, tbs.start, tbs.end, 'certificate')
  const subject = fields[fields[0]?.tag === 0xa0 ? 5 : 4]
  if (c.tag !== SEQUENCE || tbs.tag !== SEQUENCE || subject?.tag !== SEQUENCE) throw new CodecError('BAD_DER', 'certificate: no subject')
  return cert.subarray(subject.at, subject.end)
}
