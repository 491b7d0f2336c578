import {verify, X509Certificate} from 'node:crypto'
import {CodecError} from '../lib/errors.js'

// A CRL read straight from its DER (RFC 5280 section 5.1): its serials, its next update, and
// whether a CA signed it. Gate and relay read this at start-up and on SIGHUP; @peculiar/x509
// would add about 4 MB of heap that every major GC marks for as long as the gate runs
// (src/pki/names.ts), for one list of integers. OpenSSL checks each handshake against the same PEM.

interface Tlv {
  tag: number
  /** Where the TLV's header starts, and its contents start and end. */
  at: number
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
  return {tag, at, start, end: start + len}
}

function expect(t: Tlv, tags: number[], what: string): Tlv {
  if (!tags.includes(t.tag)) throw new CodecError('BAD_TAG', `CRL: ${what} expected, found tag 0x${t.tag.toString(16)}`)
  return t
}

const SEQUENCE = 0x30
const INTEGER = 0x02
const BIT_STRING = 0x03
const OID = 0x06
const UTC_TIME = 0x17
const TIME = [UTC_TIME, 0x18] // GeneralizedTime

/** A serial number as compared everywhere: lowercase hex without leading zeros. */
export function normalSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '')
}

export interface Crl {
  serials: string[]
  nextUpdate: Date | null
  /** The signed part (TBSCertList, header included), the signature algorithm's OID as hex, the signature. */
  tbs: Buffer
  algorithm: string
  signature: Buffer
}

function time(der: Buffer, t: Tlv): Date {
  const s = der.toString('latin1', t.start, t.end)
  // UTCTime YYMMDDHHMMSSZ (years 1950-2049), GeneralizedTime YYYYMMDDHHMMSSZ.
  const m = (t.tag === UTC_TIME ? s.replace(/^(\d\d)/, (y) => (Number(y) < 50 ? '20' : '19') + y) : s).match(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/)
  if (!m) throw new CodecError('BAD_TIME', `CRL: time "${s}" is not YYMMDDHHMMSSZ`)
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]))
}

/** One DER CertificateList. */
export function decodeCrl(der: Buffer): Crl {
  const list = expect(tlv(der, 0, der.length, 'CertificateList'), [SEQUENCE], 'CertificateList')
  const tbs = expect(tlv(der, list.start, list.end, 'TBSCertList'), [SEQUENCE], 'TBSCertList')
  let t = tlv(der, tbs.start, tbs.end, 'version')
  if (t.tag === INTEGER) t = tlv(der, t.end, tbs.end, 'signature')
  expect(t, [SEQUENCE], 'signature algorithm')
  t = expect(tlv(der, t.end, tbs.end, 'issuer'), [SEQUENCE], 'issuer')
  t = expect(tlv(der, t.end, tbs.end, 'thisUpdate'), TIME, 'thisUpdate')
  const serials: string[] = []
  let nextUpdate: Date | null = null
  for (let p = t.end; p < tbs.end; p = t.end) {
    t = tlv(der, p, tbs.end, 'field')
    // crlExtensions ([0]) are skipped; the one SEQUENCE is the list.
    if (TIME.includes(t.tag)) nextUpdate = time(der, t)
    if (t.tag !== SEQUENCE) continue
    for (let q = t.start; q < t.end;) {
      const entry = expect(tlv(der, q, t.end, 'revoked entry'), [SEQUENCE], 'revoked entry')
      const serial = expect(tlv(der, entry.start, entry.end, 'serial'), [INTEGER], 'serial')
      serials.push(normalSerial(der.subarray(serial.start, serial.end).toString('hex')))
      q = entry.end
    }
  }
  const alg = expect(tlv(der, tbs.end, list.end, 'signatureAlgorithm'), [SEQUENCE], 'signatureAlgorithm')
  const oid = expect(tlv(der, alg.start, alg.end, 'algorithm'), [OID], 'algorithm')
  const sig = expect(tlv(der, alg.end, list.end, 'signature'), [BIT_STRING], 'signature')
  if (sig.end === sig.start) throw new CodecError('TRUNCATED', 'CRL: empty signature')
  return {
    serials, nextUpdate, tbs: der.subarray(tbs.at, tbs.end), algorithm: der.toString('hex', oid.start, oid.end),
    // A BIT STRING's first byte counts unused bits: 0 for a signature.
    signature: der.subarray(sig.start + 1, sig.end),
  }
}

const PEM_CRL = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/g

/** Every CRL in a PEM file (one or more X509 CRL blocks; none is an error). */
export function decodeCrlPem(pem: string): Crl[] {
  const out = [...pem.matchAll(PEM_CRL)].map((m) => decodeCrl(Buffer.from(m[1].replace(/\s+/g, ''), 'base64')))
  if (!out.length) throw new CodecError('NOT_PEM', 'not a PEM X509 CRL')
  return out
}

/** Every serial revoked by the CRLs of a PEM file. */
export function revokedSerials(pem: string): Set<string> {
  return new Set(decodeCrlPem(pem).flatMap((c) => c.serials))
}

/** Signature algorithms by OID (hex of its DER contents): the digest node's verify() takes. */
const HASHES: Record<string, string | null> = {
  '2a8648ce3d040302': 'sha256', '2a8648ce3d040303': 'sha384', '2a8648ce3d040304': 'sha512', // ecdsa-with-SHA*
  '2a864886f70d01010b': 'sha256', '2a864886f70d01010c': 'sha384', '2a864886f70d01010d': 'sha512', // sha*WithRSAEncryption
  '2b6570': null, '2b6571': null, // Ed25519, Ed448
}

/**
 * Why OpenSSL would refuse every client with this CRL, or null: a CRL no CA of `caPem` signed
 * (OpenSSL then finds no list for the clients' CA), or one past its next update.
 */
export function crlProblem(pem: string, caPem: string, now = new Date()): string | null {
  const cas = (caPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c))
  for (const crl of decodeCrlPem(pem)) {
    if (crl.nextUpdate && crl.nextUpdate < now) return `its next update was due ${crl.nextUpdate.toISOString()}: renew it, or every client is refused`
    const hash = HASHES[crl.algorithm]
    // An algorithm not in the table (RSA-PSS…): OpenSSL alone will judge it.
    if (hash === undefined) continue
    if (!cas.some((ca) => verify(hash, crl.tbs, ca.publicKey, crl.signature))) return 'it is not signed by the CA (--ca): every client would be refused'
  }
  return null
}
