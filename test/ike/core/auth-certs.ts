import 'reflect-metadata' // @peculiar/x509 needs it (tsyringe)
import * as x509 from '@peculiar/x509'
import {KeyObject, randomBytes, webcrypto, X509Certificate} from 'node:crypto'
import {readFileSync} from 'node:fs'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
x509.cryptoProvider.set(webcrypto as any)

/**
 * Certificates for the IKE authentication tests, made here with @peculiar/x509 (the library
 * `tunkit pki` uses): ECDSA and RSA CAs, intermediates and end entities with any DN, SANs and
 * validity window, so that each failure (unknown CA, expired, not yet valid…) can be produced.
 */

type CryptoKeyPair = webcrypto.CryptoKeyPair

const ALGS = {
  p256: {name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256'},
  p384: {name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384'},
  rsa3072: {name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256'},
} as const
export type Alg = keyof typeof ALGS

const DAY = 86_400_000
/** The clock of the certificate tests: a fixed date inside every "valid" certificate's window. */
export const T0 = Date.parse('2027-06-01T00:00:00Z')

export interface Ca {
  cert: X509Certificate
  px: x509.X509Certificate
  keys: CryptoKeyPair
  alg: Alg
}

export interface Leaf {
  cert: X509Certificate
  key: KeyObject
}

export const newKeys = async (alg: Alg): Promise<CryptoKeyPair> => webcrypto.subtle.generateKey(ALGS[alg], true, ['sign', 'verify']) as Promise<CryptoKeyPair>

const serial = (): string => '01' + randomBytes(8).toString('hex')
const window = (o: {notBefore?: number; notAfter?: number}): {notBefore: Date; notAfter: Date} => ({
  notBefore: new Date(o.notBefore ?? T0 - 30 * DAY),
  notAfter: new Date(o.notAfter ?? T0 + 365 * DAY),
})

/** A self-signed CA, or an intermediate when `issuer` is given. */
export async function makeCa(subject: string, alg: Alg, o: {issuer?: Ca; notBefore?: number; notAfter?: number} = {}): Promise<Ca> {
  const keys = await newKeys(alg)
  const extensions = [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ]
  const px = o.issuer
    ? await x509.X509CertificateGenerator.create({serialNumber: serial(), subject, issuer: o.issuer.px.subject, ...window(o), publicKey: keys.publicKey, signingKey: o.issuer.keys.privateKey, signingAlgorithm: ALGS[o.issuer.alg], extensions})
    : await x509.X509CertificateGenerator.createSelfSigned({serialNumber: serial(), name: subject, ...window(o), keys, signingAlgorithm: ALGS[alg], extensions})
  return {cert: new X509Certificate(px.toString('pem')), px, keys, alg}
}

/** An end-entity certificate; `sans` as "dns:x", "ip:x" or "email:x"; `keys` to reuse a key pair (RSA keys are slow to make). */
export async function makeLeaf(ca: Ca, subject: string, o: {alg?: Alg; keys?: CryptoKeyPair; sans?: string[]; notBefore?: number; notAfter?: number} = {}): Promise<Leaf> {
  const keys = o.keys ?? await newKeys(o.alg ?? ca.alg)
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.AuthorityKeyIdentifierExtension.create(ca.px, false),
  ]
  if (o.sans?.length) {
    extensions.push(new x509.SubjectAlternativeNameExtension(o.sans.map((s) => {
      const [type, value] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1)]
      return {type: type as 'dns' | 'ip' | 'email', value}
    }), false))
  }
  const px = await x509.X509CertificateGenerator.create({serialNumber: serial(), subject, issuer: ca.px.subject, ...window(o), publicKey: keys.publicKey, signingKey: ca.keys.privateKey, signingAlgorithm: ALGS[ca.alg], extensions})
  return {cert: new X509Certificate(px.toString('pem')), key: KeyObject.from(keys.privateKey)}
}

/** The CA certificates of the lab PKI the strongSwan capture was made with (test/fixtures/ike/). */
export function labCa(name: 'ecdsa' | 'rsa'): X509Certificate {
  return new X509Certificate(readFileSync(`test/fixtures/ike/ca-${name}.crt`))
}
