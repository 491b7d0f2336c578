import {createHash, X509Certificate, type KeyObject} from 'node:crypto'
import {TunkitError, type ErrorCode} from '../../lib/errors.js'
import {formatIPv4, formatIPv6, isIPv4, ipv4Bytes, ipv6Bytes} from '../../lib/net/ip.js'
import {AuthMethod, CertEncoding, HashAlg, IdType, Notify, PayloadType as P} from '../codec/constants.js'
import {certSubject, dnEqual, printable} from '../codec/dn.js'
import {idToString, type AuthBody, type IdBody} from '../codec/id.js'
import {payloadsOf, type Payload} from '../codec/payload.js'
import {pskAuth, pskAuthMatches, signAuth, SIGNATURE_ALGORITHMS, verifyAuth, type SignatureAlgorithm} from './crypto.js'

/**
 * IKE_AUTH authentication for both machines (RFC 7296 §2.15, §3.5–3.8; RFC 7427): our CERT,
 * CERTREQ and AUTH payloads, and the check of the peer's: PSK, or a certificate chain to one of
 * our CAs, its validity at `now`, the AUTH signature and the identity it claims. Pure apart from
 * node:crypto; every failure is a TunkitError whose message is one line naming the cause.
 */

/** A certificate of ours: the end-entity certificate first, then intermediates, and its key. */
export interface CertCredentials {
  cert: X509Certificate[]
  key: KeyObject
}

/** How we authenticate: a pre-shared key or a certificate. */
export type Credentials = {psk: Buffer} | CertCredentials

const HASH_NAME: Readonly<Record<number, string>> = {[HashAlg.SHA2_256]: 'sha256', [HashAlg.SHA2_384]: 'sha384', [HashAlg.SHA2_512]: 'sha512'}
/** Classic ECDSA methods by curve (RFC 4754): each fixes curve and hash. */
const ECDSA_METHOD: Readonly<Record<string, number>> = {prime256v1: AuthMethod.ECDSA_SHA256_P256, secp384r1: AuthMethod.ECDSA_SHA384_P384, secp521r1: AuthMethod.ECDSA_SHA512_P521}
/** The most certificates of a peer's chain looked at (end entity and intermediates). */
const MAX_CHAIN = 8

const fail = (code: ErrorCode, why: string): never => {
  throw new TunkitError(code, why)
}

/** Our identity when none is configured: the certificate's first DNS name, else its subject DN; with a PSK our IP address. */
export function defaultId(creds: Credentials | undefined, localAddress: string): IdBody {
  if (creds && 'cert' in creds) {
    const ee = creds.cert[0]
    const dns = sanEntries(ee).find((s) => s.startsWith('DNS:'))
    return dns ? {idType: IdType.FQDN, data: Buffer.from(dns.slice(4), 'utf8')} : {idType: IdType.DER_ASN1_DN, data: Buffer.from(certSubject(ee.raw))}
  }
  return isIPv4(localAddress) ? {idType: IdType.IPV4_ADDR, data: ipv4Bytes(localAddress)} : {idType: IdType.IPV6_ADDR, data: ipv6Bytes(localAddress)}
}

/** Node's subjectAltName text, split: "DNS:a", "IP Address:1.2.3.4", "email:x@y". */
function sanEntries(c: X509Certificate): string[] {
  return (c.subjectAltName ?? '').split(', ').filter(Boolean)
}

/** CERTREQ (§3.7): SHA-1 of each CA's SubjectPublicKeyInfo; none without CAs. */
export function certreq(ca: readonly X509Certificate[] | undefined): Payload[] {
  if (!ca?.length) return []
  const data = Buffer.concat(ca.map((c) => createHash('sha1').update(c.publicKey.export({type: 'spki', format: 'der'})).digest()))
  return [{type: P.CERTREQ, encoding: CertEncoding.X509_SIGNATURE, data}]
}

/** The hash algorithms a peer announced in IKE_SA_INIT (RFC 7427 §4). */
export function peerHashes(ps: readonly Payload[]): number[] {
  const n = payloadsOf(ps, P.N).find((x) => x.notify === Notify.SIGNATURE_HASH_ALGORITHMS)
  const out: number[] = []
  for (let i = 0; n && i + 1 < n.data.length; i += 2) out.push(n.data.readUInt16BE(i))
  return out
}

/**
 * How our key signs: method 14 with the strongest hash both sides announced (we announce
 * SHA2-256/384/512), else the classic method of the key type (RSA → 1, ECDSA → 9/10/11 by curve).
 */
export function signatureMethod(key: KeyObject, hashes: readonly number[]): {method: number; algorithm?: SignatureAlgorithm} {
  const type = key.asymmetricKeyType
  const scheme = type === 'ec' ? 'ecdsa' : type === 'rsa' ? 'rsa-pkcs1' : type === 'rsa-pss' ? 'rsa-pss' : undefined
  if (!scheme) return fail('TK_TLS_CONFIG', `our ${type} key cannot sign IKE_AUTH (RSA or ECDSA keys only)`)
  const hash = [HashAlg.SHA2_512, HashAlg.SHA2_384, HashAlg.SHA2_256].find((h) => hashes.includes(h))
  if (hash) return {method: AuthMethod.DIGITAL_SIGNATURE, algorithm: SIGNATURE_ALGORITHMS.find((a) => a.scheme === scheme && a.hash === HASH_NAME[hash])}
  if (scheme === 'rsa-pkcs1') return {method: AuthMethod.RSA_SIG}
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (scheme === 'ecdsa' && curve && ECDSA_METHOD[curve]) return {method: ECDSA_METHOD[curve]}
  return fail('TK_TLS_CONFIG', `the peer announced no signature hashes and our ${scheme === 'ecdsa' ? `${curve} ECDSA` : 'RSA-PSS'} key has no classic AUTH method`)
}

/** Our CERT payloads (end entity first, §3.6) and AUTH over `octets` (§2.15). */
export function ourAuth(creds: Credentials, prfId: number, octets: Buffer, hashes: readonly number[]): {certs: Payload[]; auth: Payload} {
  if ('psk' in creds) return {certs: [], auth: {type: P.AUTH, method: AuthMethod.SHARED_KEY_MIC, data: pskAuth(prfId, creds.psk, octets)}}
  const {method, algorithm} = signatureMethod(creds.key, hashes)
  return {
    certs: creds.cert.map((c) => ({type: P.CERT, encoding: CertEncoding.X509_SIGNATURE, data: Buffer.from(c.raw)})),
    auth: {type: P.AUTH, method, data: signAuth(method, creds.key, octets, algorithm)},
  }
}

/** What the peer's IKE_AUTH is checked against. */
export interface PeerCheck {
  /** The peer's ID payload and AUTH, and the CERT payloads of its message. */
  id: IdBody
  auth: AuthBody
  inner: readonly Payload[]
  /** The peer's signed octets (§2.15), made with its ID. */
  octets: Buffer
  prfId: number
  /** The PSK a method-2 AUTH must match; without it PSK authentication is refused. */
  psk?: Buffer
  /** Trust anchors; without them certificate authentication is refused. */
  ca?: readonly X509Certificate[]
  /** The identity we require; by default any the PSK lookup or the certificate chain proves. */
  remoteId?: IdBody
  now: number
}

/** Checks the peer's authentication; returns how it authenticated or throws a one-line TunkitError. */
export function verifyPeer(c: PeerCheck): 'psk' | 'cert' {
  const who = idToString(c.id)
  if (c.auth.method === AuthMethod.SHARED_KEY_MIC) {
    if (!c.psk) return fail('TK_NOT_AUTHORIZED', `${who} authenticated with a PSK and we have none for it`)
    if (!pskAuthMatches(c.prfId, c.psk, c.octets, c.auth.data)) return fail('TK_NOT_AUTHORIZED', `${who} failed authentication (wrong PSK)`)
    if (c.remoteId && !sameId(c.id, c.remoteId)) return fail('TK_NOT_AUTHORIZED', `the peer is ${who}, not ${idToString(c.remoteId)}`)
    return 'psk'
  }
  const certs = payloadsOf(c.inner, P.CERT).filter((x) => x.encoding === CertEncoding.X509_SIGNATURE).slice(0, MAX_CHAIN)
  if (!certs.length) return fail('TK_NOT_AUTHORIZED', `${who} sent no certificate (AUTH method ${c.auth.method})`)
  if (!c.ca?.length) return fail('TK_NOT_AUTHORIZED', `${who} authenticated with a certificate and we have no CA to check it`)
  let chain: X509Certificate[]
  try {
    chain = certs.map((x) => new X509Certificate(x.data))
  } catch {
    chain = []
  }
  // OpenSSL ignores bytes after the certificate; a CERT payload holds exactly one.
  if (chain.length !== certs.length || chain.some((x, k) => x.raw.length !== certs[k].data.length)) return fail('TK_NOT_AUTHORIZED', `${who} sent a certificate that does not parse`)
  const ee = chain[0]
  for (const x of pathToCa(ee, chain.slice(1), c.ca)) {
    const name = subjectText(x)
    // Fail closed: a date Node cannot read counts as outside the window.
    if (!(c.now <= Date.parse(x.validTo))) fail('TK_TLS_CERT_EXPIRED', `certificate expired: ${name} was valid until ${iso(x.validTo)}`)
    if (!(c.now >= Date.parse(x.validFrom))) fail('TK_TLS_CERT_NOT_YET_VALID', `certificate not yet valid: ${name} is valid from ${iso(x.validFrom)}`)
  }
  if (!signatureVerifies(c.auth, ee.publicKey, c.octets)) return fail('TK_NOT_AUTHORIZED', `${who}: signature does not verify with the key of ${subjectText(ee)}`)
  if (!certNames(ee, c.id)) return fail('TK_TLS_HOSTNAME_MISMATCH', `identity ${who} not in the certificate ${subjectText(ee)}`)
  if (c.remoteId && !sameId(c.id, c.remoteId) && !certNames(ee, c.remoteId)) return fail('TK_TLS_HOSTNAME_MISMATCH', `identity ${idToString(c.remoteId)} not in the certificate ${subjectText(ee)} (the peer is ${who})`)
  return 'cert'
}

/** The chain from `ee` through `intermediates` (any order) to one of `ca`, the anchor last. */
function pathToCa(ee: X509Certificate, intermediates: X509Certificate[], ca: readonly X509Certificate[]): X509Certificate[] {
  const issued = (child: X509Certificate, by: X509Certificate): boolean => child.checkIssued(by) && child.verify(by.publicKey)
  const path = [ee]
  for (let cur = ee; path.length <= MAX_CHAIN;) {
    const anchor = ca.find((a) => issued(cur, a))
    if (anchor) return [...path, anchor]
    const next = intermediates.find((i) => i.ca && !path.includes(i) && issued(cur, i))
    if (!next) break
    path.push(next)
    cur = next
  }
  return fail('TK_TLS_UNKNOWN_CA', `unknown CA: ${subjectText(path[path.length - 1])} is issued by ${dnText(path[path.length - 1].issuer)}, not by a CA we trust`)
}

function signatureVerifies(auth: AuthBody, key: KeyObject, octets: Buffer): boolean {
  // RFC 4754: a classic ECDSA method fixes the curve as well as the hash.
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (Object.values(ECDSA_METHOD).includes(auth.method) && (key.asymmetricKeyType !== 'ec' || ECDSA_METHOD[curve ?? ''] !== auth.method)) return false
  if (auth.method === AuthMethod.RSA_SIG && key.asymmetricKeyType !== 'rsa') return false
  try {
    return verifyAuth(auth.method, key, octets, auth.data)
  } catch {
    // An unknown method or AlgorithmIdentifier, or malformed data: no signature of ours to accept.
    return false
  }
}

/** The certificate names `id`: a DNS, e-mail or IP subjectAltName, or the subject DN itself. */
function certNames(c: X509Certificate, id: IdBody): boolean {
  try {
    switch (id.idType) {
      case IdType.FQDN: return c.checkHost(id.data.toString('utf8'), {subject: 'never'}) !== undefined
      case IdType.RFC822_ADDR: return c.checkEmail(id.data.toString('utf8'), {subject: 'never'}) !== undefined
      case IdType.IPV4_ADDR: return c.checkIP(formatIPv4(id.data, 0)) !== undefined
      case IdType.IPV6_ADDR: return c.checkIP(formatIPv6(id.data, 0)) !== undefined
      case IdType.DER_ASN1_DN: return dnEqual(id.data, certSubject(c.raw))
      default: return false
    }
  } catch {
    // A name Node refuses to look up (a NUL in it…) or a DN that does not parse names nothing.
    return false
  }
}

function sameId(a: IdBody, b: IdBody): boolean {
  if (a.idType !== b.idType) return false
  if (a.idType !== IdType.DER_ASN1_DN) return a.data.equals(b.data)
  try {
    return dnEqual(a.data, b.data)
  } catch {
    return false
  }
}

/** Node's multi-line DN on one line; the peer chose it, so control characters are escaped. */
const dnText = (nodeDn: string): string => printable(nodeDn.split('\n').join(', '))
const subjectText = (c: X509Certificate): string => dnText(c.subject)
const iso = (date: string): string => (Number.isNaN(Date.parse(date)) ? printable(date) : new Date(Date.parse(date)).toISOString().replace('.000Z', 'Z'))
