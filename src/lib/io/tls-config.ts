import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
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

export function loadTls(files: TlsFiles): TlsMaterial {
  const read = (flag: keyof TlsFiles): string => {
    const p = flag === 'crl' ? files.crl!.file : files[flag]
    if (!existsSync(p)) throw new TlsConfigError(flag, `--${flag}: file not found: ${p} (create a PKI with "tunkit pki init")`)
    try {
      return readFileSync(p, 'utf8')
    } catch (e) {
      throw new TlsConfigError(flag, `--${flag}: cannot read ${p}: ${(e as Error).message}`)
    }
  }
  const cert = read('cert')
  let name: string
  try {
    name = subjectName(cert)
  } catch {
    throw new TlsConfigError('cert', `--cert: ${files.cert} is not a PEM certificate`)
  }
  const ca = read('ca')
  const crl = files.crl && !(files.crl.optional && !existsSync(files.crl.file)) ? read('crl') : undefined
  if (crl !== undefined) {
    let problem
    try {
      problem = crlProblem(crl, ca)
    } catch (e) {
      problem = (e as Error).message
    }
    if (problem) throw new TlsConfigError('crl', `--crl: ${files.crl!.file}: ${problem}`)
  }
  return {cert, key: read('key'), ca, name, ...(crl !== undefined ? {crl} : {})}
}

/**
 * TLS 1.3 suites, fastest first on AES-NI hardware: AES-128-GCM (the mandatory suite of
 * RFC 8446 section 9.1) measured about 5% faster than AES-256-GCM through the tunnel.
 */
export const CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'
