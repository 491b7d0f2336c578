import 'reflect-metadata' // @peculiar/x509 needs it (tsyringe)
import * as x509 from '@peculiar/x509'
import {createPrivateKey, randomBytes, webcrypto, X509Certificate} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {isIP} from 'node:net'
import {normalSerial} from './crl.js'
import {CRL_FILE, subjectName} from './names.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
x509.cryptoProvider.set(webcrypto as any)

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair

const ALG = {name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256'} as const
const DAY = 86_400_000

export class PkiError extends Error {}

export interface Issued {
  certPem: string
  keyPem: string
}

interface Signer {
  cert: x509.X509Certificate
  key: CryptoKey
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd()}\n-----END PRIVATE KEY-----\n`
}

function serial(): string {
  const b = randomBytes(16)
  b[0] &= 0x7f // positive INTEGER
  return b.toString('hex')
}

function dnEscape(s: string): string {
  return s.replace(/([,+"\\<>;=])/g, '\\$1')
}

export async function createCa(name: string, days: number): Promise<Issued & Signer> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as unknown as CryptoKeyPair
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${dnEscape(name)}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  return {cert, key: keys.privateKey, certPem: cert.toString('pem') + '\n', keyPem: await keyPem(keys.privateKey)}
}

export interface LeafOptions {
  cn: string
  role: 'server' | 'client'
  sans?: string[]
  days?: number
  /** For tests of expiry: shift the validity window into the past. */
  notBefore?: Date
  notAfter?: Date
}

export async function issue(ca: Signer, o: LeafOptions): Promise<Issued> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as unknown as CryptoKeyPair
  const now = Date.now()
  const sans = (o.sans ?? []).map((s) => (isIP(s) ? {type: 'ip' as const, value: s} : {type: 'dns' as const, value: s}))
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([o.role === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
  ]
  if (sans.length) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${dnEscape(o.cn)}`,
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(now - 60_000),
    notAfter: o.notAfter ?? new Date(now + (o.days ?? 825) * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ALG,
    extensions,
  })
  return {certPem: cert.toString('pem') + '\n', keyPem: await keyPem(keys.privateKey)}
}

export async function loadCa(dir: string): Promise<Signer> {
  const certFile = join(dir, 'ca.crt')
  const keyFile = join(dir, 'ca.key')
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8')
    } catch (e) {
      const code = (e as {code?: string}).code
      if (code === 'ENOENT') throw new PkiError(`no CA in ${dir}: run "tunkit pki init" first`)
      throw new PkiError(`cannot read ${file}: ${code === 'EACCES' || code === 'EPERM' ? `permission denied (${code})` : (e as Error).message}`)
    }
  }
  const [certPem, keyPem] = [read(certFile), read(keyFile)]
  // Certificates signed by a key that is not the CA's would verify nowhere: refuse to issue them.
  let ok: boolean
  try {
    const c = new X509Certificate(certPem)
    ok = c.ca && c.checkPrivateKey(createPrivateKey(keyPem))
  } catch {
    ok = false
  }
  if (!ok) throw new PkiError(`${keyFile} is not the key of the CA certificate ${certFile}`)
  const cert = new x509.X509Certificate(certPem)
  const der = x509.PemConverter.decodeFirst(keyPem)
  const key = await webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']) as unknown as CryptoKey
  return {cert, key}
}

/** Writes a certificate (0644) and its key (0600) as NAME.crt and NAME.key. */
export function writePair(dir: string, name: string, p: Issued): {cert: string; key: string} {
  mkdirSync(dir, {recursive: true, mode: 0o700})
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  writeFileSync(key, p.keyPem, {mode: 0o600})
  chmodSync(key, 0o600)
  writeFileSync(cert, p.certPem, {mode: 0o644})
  return {cert, key}
}

/** A serial as the hex of a positive DER INTEGER: whole bytes, a zero byte before a high bit. */
function integerHex(serial: string): string {
  const even = serial.length % 2 ? `0${serial}` : serial
  return /^[89a-f]/.test(even) ? `00${even}` : even
}

/** A certificate of the PKI directory, as `pki list` shows it. */
export interface Listed {
  /** The file name without .crt, as `pki issue` and `pki revoke` name it. */
  name: string
  /** The subject CN. */
  identity: string
  serial: string
  role: 'server' | 'client' | 'other'
  expires: string
  revoked: boolean
}

const EKU_ROLE: Record<string, 'server' | 'client'> = {'1.3.6.1.5.5.7.3.1': 'server', '1.3.6.1.5.5.7.3.2': 'client'}

/** The directory's CRL, or null before the first `pki revoke`. */
function readCrl(dir: string): x509.X509Crl | null {
  const file = join(dir, CRL_FILE)
  return existsSync(file) ? new x509.X509Crl(readFileSync(file, 'utf8')) : null
}

/** Every certificate in the directory but the CA's, by name. */
export function listCertificates(dir: string): Listed[] {
  if (!existsSync(dir)) throw new PkiError(`no PKI directory ${dir}: run "tunkit pki init" first`)
  const crl = readCrl(dir)
  const revoked = new Set((crl?.entries ?? []).map((e) => normalSerial(e.serialNumber)))
  return readdirSync(dir).filter((f) => f.endsWith('.crt') && f !== 'ca.crt').sort().map((f) => {
    let c: X509Certificate
    try {
      c = new X509Certificate(readFileSync(join(dir, f)))
    } catch (e) {
      throw new PkiError(`${join(dir, f)} is not a PEM certificate: ${(e as Error).message}`)
    }
    const serial = normalSerial(c.serialNumber)
    const role = (c.keyUsage ?? []).map((oid) => EKU_ROLE[oid]).find(Boolean) ?? 'other'
    return {name: f.slice(0, -4), identity: subjectName(c.toString()), serial, role, expires: new Date(c.validTo).toISOString(), revoked: revoked.has(serial)}
  })
}

/**
 * Adds the certificates named NAME (NAME.crt, or else every certificate whose CN is NAME) to the
 * directory's CRL, signed by its CA, and writes it (0600, replaced in one rename so a gate
 * reloading meanwhile reads the old list or the new one). Returns what it revoked now.
 */
export async function revoke(dir: string, name: string): Promise<{revoked: Listed[]; already: Listed[]; crl: string}> {
  const ca = await loadCa(dir)
  const all = listCertificates(dir)
  const byFile = all.filter((c) => c.name === name)
  const chosen = byFile.length ? byFile : all.filter((c) => c.identity === name)
  if (!chosen.length) throw new PkiError(`no certificate named ${name} in ${dir} (no ${name}.crt, no certificate with CN ${name})`)
  const caCert = new X509Certificate(ca.cert.toString('pem'))
  for (const c of chosen) {
    if (!new X509Certificate(readFileSync(join(dir, `${c.name}.crt`))).checkIssued(caCert)) throw new PkiError(`${c.name}.crt is not issued by the CA in ${dir}`)
  }
  const fresh = chosen.filter((c) => !c.revoked)
  const file = join(dir, CRL_FILE)
  if (fresh.length) {
    const now = new Date()
    const entries = [
      ...(readCrl(dir)?.entries ?? []).map((e) => ({serialNumber: e.serialNumber, revocationDate: e.revocationDate})),
      ...fresh.map((c) => ({serialNumber: integerHex(c.serial), revocationDate: now})),
    ]
    const crl = await x509.X509CrlGenerator.create({
      issuer: ca.cert.subject,
      thisUpdate: now,
      // Read from a file, not fetched: it stays good as long as the CA does, until the next revoke.
      nextUpdate: ca.cert.notAfter,
      entries,
      signingKey: ca.key,
      signingAlgorithm: ALG,
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false)],
    })
    const tmp = `${file}.${process.pid}.tmp`
    // RFC 7468's label: OpenSSL (and so the gate's TLS) reads "X509 CRL", not "CRL".
    writeFileSync(tmp, x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n', {mode: 0o600})
    chmodSync(tmp, 0o600)
    renameSync(tmp, file)
  }
  return {revoked: fresh, already: chosen.filter((c) => c.revoked), crl: file}
}
