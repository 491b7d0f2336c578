import {CodecError} from '../lib/errors.js'

// The serial numbers a CRL revokes, read straight from its DER (RFC 5280 section 5.1). Gate and
// relay read this at start-up and on SIGHUP; @peculiar/x509 would add about 4 MB of heap that
// every major GC marks for as long as the gate runs (src/pki/names.ts), for one list of integers.
// Its signature is OpenSSL's to check: the gate hands the same PEM to its TLS context.

interface Tlv {
  tag: number
  start: number
  end: number
}

function tlv(b: Buffer, at: number, end: number, what: string): Tlv {
  if (at + 2 > end) throw new CodecError('TRUNCATED', `CRL: ${what} truncated`)
  const tag = b[at]
  let len = b[at + 1]
  let start = at + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n < 1 || n > 4 || start + n > end) throw new CodecError('BAD_LENGTH', `CRL: ${what} has a bad length`)
    len = b.readUIntBE(start, n)
    start += n
  }
  if (start + len > end) throw new CodecError('TRUNCATED', `CRL: ${what} truncated`)
  return {tag, start, end: start + len}
}

function expect(t: Tlv, tags: number[], what: string): Tlv {
  if (!tags.includes(t.tag)) throw new CodecError('BAD_TAG', `CRL: ${what} expected, found tag 0x${t.tag.toString(16)}`)
  return t
}

const SEQUENCE = 0x30
const INTEGER = 0x02
const TIME = [0x17, 0x18] // UTCTime, GeneralizedTime

/** A serial number as compared everywhere: lowercase hex without leading zeros. */
export function normalSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '')
}

/** The serials revoked by one DER CertificateList. */
export function crlSerials(der: Buffer): string[] {
  const list = expect(tlv(der, 0, der.length, 'CertificateList'), [SEQUENCE], 'CertificateList')
  const tbs = expect(tlv(der, list.start, list.end, 'TBSCertList'), [SEQUENCE], 'TBSCertList')
  let t = tlv(der, tbs.start, tbs.end, 'version')
  if (t.tag === INTEGER) t = tlv(der, t.end, tbs.end, 'signature')
  expect(t, [SEQUENCE], 'signature algorithm')
  t = expect(tlv(der, t.end, tbs.end, 'issuer'), [SEQUENCE], 'issuer')
  t = expect(tlv(der, t.end, tbs.end, 'thisUpdate'), TIME, 'thisUpdate')
  const serials: string[] = []
  for (let p = t.end; p < tbs.end; p = t.end) {
    t = tlv(der, p, tbs.end, 'field')
    // nextUpdate (a time) and crlExtensions ([0]) are skipped; the one SEQUENCE is the list.
    if (t.tag !== SEQUENCE) continue
    for (let q = t.start; q < t.end;) {
      const entry = expect(tlv(der, q, t.end, 'revoked entry'), [SEQUENCE], 'revoked entry')
      const serial = expect(tlv(der, entry.start, entry.end, 'serial'), [INTEGER], 'serial')
      serials.push(normalSerial(der.subarray(serial.start, serial.end).toString('hex')))
      q = entry.end
    }
  }
  return serials
}

const PEM_CRL = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/g

/** Every serial revoked by the CRLs in a PEM file (one or more X509 CRL blocks; none is an error). */
export function revokedSerials(pem: string): Set<string> {
  const out = new Set<string>()
  let found = 0
  for (const m of pem.matchAll(PEM_CRL)) {
    found++
    for (const s of crlSerials(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'))) out.add(s)
  }
  if (!found) throw new CodecError('NOT_PEM', 'not a PEM X509 CRL')
  return out
}
