import {createPrivateKey, X509Certificate, type KeyObject} from 'node:crypto'
import {closeSync, fstatSync, openSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {TunkitError} from '../errors.js'
import {absent, configFileExists, noteFile, servedFile} from './config-files.js'
import {CRL_FILE, defaultPkiDir, subjectName} from '../../pki/names.js'
import {crlProblem} from '../../pki/crl.js'

export interface TlsFiles {
  cert: string
  key: string
  ca: string
  /** A revocation list (PEM X.509 CRL); `optional` when it is the PKI directory's, which may have none yet. */
  crl?: {file: string; optional: boolean}
}

export interface TlsMaterial {
  cert: string
  key: string
  ca: string
  /** The subject CN of our own certificate. */
  name: string
  crl?: string
}

/** A file a flag names is not there: a usage error (exit 2) naming the flag. */
export class TlsConfigError extends Error {
  constructor(readonly flag: string, message: string) {
    super(message)
  }
}

/** Fill in unset paths from the default PKI directory (where `tunkit pki init` writes). */
export function defaultFiles(role: 'gate' | 'client', given: Partial<Omit<TlsFiles, 'crl'>> & {crl?: string}, dir: string = defaultPkiDir()): TlsFiles {
  return {
    cert: given.cert ?? join(dir, `${role}.crt`),
    key: given.key ?? join(dir, `${role}.key`),
    ca: given.ca ?? join(dir, 'ca.crt'),
    // The gate checks the PKI directory's CRL when its CA is the directory's too.
    crl: given.crl ? {file: given.crl, optional: false} : role === 'gate' && !given.ca ? {file: join(dir, CRL_FILE), optional: true} : undefined,
  }
}

/** Extended key usage each end's certificate needs (RFC 5280 4.2.1.12), and anyExtendedKeyUsage. */
const PURPOSE = {gate: {oid: '1.3.6.1.5.5.7.3.1', name: 'serverAuth', file: 'gate.crt'}, client: {oid: '1.3.6.1.5.5.7.3.2', name: 'clientAuth', file: 'client.crt'}} as const
const ANY_EKU = '2.5.29.37.0'
export const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g

/**
 * Reads and checks our certificate, key and CA at start, so that what no retry can fix fails at
 * once with one line naming the file and the cause (TK_TLS_CONFIG, exit 1) instead of each tunnel
 * failing the same way: the key matches the certificate, the certificate is a leaf for this end
 * (serverAuth for a gate, clientAuth for a portal) and in its validity window, the CA file holds
 * only CA certificates. A key others may read gets a warning. A missing file is a usage error.
 */
export function loadTls(files: TlsFiles, role: 'gate' | 'client' = 'gate', warn: (msg: string) => void = () => {}): TlsMaterial {
  const bad = (flag: keyof TlsFiles, why: string): TunkitError => new TunkitError('TK_TLS_CONFIG', `--${flag}: ${files[flag]} ${why}`)
  const read = (flag: keyof TlsFiles): string => {
    const p = flag === 'crl' ? files.crl!.file : files[flag]
    // A gate worker's: the primary read it (and warned of loose modes) already.
    const served = servedFile(p)
    if (typeof served === 'string') return served
    let fd: number
    try {
      if (served === null) throw absent(p)
      fd = openSync(p, 'r')
    } catch (e) {
      const code = (e as {code?: string}).code
      if (code === 'ENOENT') throw new TlsConfigError(flag, `--${flag}: file not found: ${p} (create a PKI with "tunkit pki init")`)
      if (code === 'EACCES' || code === 'EPERM') throw bad(flag, `cannot be read: permission denied (${code})`)
      throw bad(flag, `cannot be read: ${(e as Error).message}`)
    }
    try {
      // Mode bits of the file we opened, not of whatever the path names a moment later.
      const mode = fstatSync(fd).mode
      const loose = flag === 'key' ? secretModeProblem('--key', p, mode) : undefined
      if (loose) warn(loose)
      const text = readFileSync(fd, 'utf8')
      noteFile(p, text)
      return text
    } catch (e) {
      throw bad(flag, `cannot be read: ${(e as Error).message}`)
    } finally {
      closeSync(fd)
    }
  }

  const certPem = read('cert')
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch {
    throw bad('cert', /PRIVATE KEY-----/.test(certPem) ? 'is a private key, not a certificate' : 'is not a PEM certificate')
  }
  const purpose = PURPOSE[role]
  if (cert.ca) throw bad('cert', `is a CA certificate; give the ${role === 'gate' ? 'gate' : 'client'}'s own certificate (${purpose.file})`)
  // Node 20 names the extended key usages `keyUsage`; undefined when the extension is absent (any use).
  const eku = cert.keyUsage
  if (eku && !eku.includes(purpose.oid) && !eku.includes(ANY_EKU)) {
    throw bad('cert', `is not for ${role === 'gate' ? 'a gate (TLS server)' : 'a portal (TLS client)'}: its extended key usage lacks ${purpose.name}${role === 'gate' ? ' (a client certificate?)' : ' (a gate certificate?)'}`)
  }
  const now = Date.now()
  if (Date.parse(cert.validTo) < now) throw bad('cert', `expired on ${new Date(cert.validTo).toISOString()}`)
  if (Date.parse(cert.validFrom) > now) throw bad('cert', `is not valid before ${new Date(cert.validFrom).toISOString()}`)

  const keyPem = read('key')
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch (e) {
    const code = (e as {code?: string}).code
    throw bad('key', code === 'ERR_MISSING_PASSPHRASE' ? 'is encrypted; tunkit needs an unencrypted key (mode 0600)'
      : /BEGIN CERTIFICATE/.test(keyPem) ? 'is a certificate, not a private key' : 'is not a PEM private key')
  }
  if (!cert.checkPrivateKey(key)) throw bad('key', `is not the key of the certificate ${files.cert}`)

  const ca = read('ca')
  if (/PRIVATE KEY-----/.test(ca)) throw bad('ca', 'holds a private key; give the CA certificate (ca.crt), and keep the CA key off this host')
  const cas = ca.match(PEM_CERT) ?? []
  if (!cas.length) throw bad('ca', 'holds no PEM certificate')
  for (const pem of cas) {
    let c: X509Certificate
    try {
      c = new X509Certificate(pem)
    } catch {
      throw bad('ca', 'holds a certificate that does not parse')
    }
    if (!c.ca) throw bad('ca', `holds a certificate that is not a CA (${c.subject.replace(/\n/g, ', ')}); give the CA certificate (ca.crt)`)
  }
  const crl = files.crl && !(files.crl.optional && !configFileExists(files.crl.file)) ? read('crl') : undefined
  if (crl !== undefined) {
    let problem
    try {
      problem = crlProblem(crl, ca)
    } catch (e) {
      problem = (e as Error).message
    }
    if (problem) throw new TlsConfigError('crl', `--crl: ${files.crl!.file}: ${problem}`)
  }
  return {cert: certPem, key: keyPem, ca, name: subjectName(certPem), ...(crl !== undefined ? {crl} : {})}
}

/**
 * TLS 1.3 suites, fastest first on AES-NI hardware: AES-128-GCM (the mandatory suite of
 * RFC 8446 section 9.1) measured about 5% faster than AES-256-GCM through the tunnel.
 */
export const CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'

/** The warning for a secret (key, PSK) file others may read, by its mode bits; undefined if 0600 or tighter. */
export function secretModeProblem(flag: string, path: string, mode: number): string | undefined {
  if (!(mode & 0o077)) return undefined
  return `${flag}: ${path} is readable by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${(mode & 0o777).toString(8)}); chmod 600 it`
}
