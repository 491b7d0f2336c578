import {Flags} from '@oclif/core'
import {defaultFiles, loadTls, TlsConfigError, type TlsMaterial} from '../lib/io/tls-config.js'
import type {Logger} from '../lib/log.js'
import {UsageError} from './parse.js'

export const tlsFlags = {
  cert: Flags.string({summary: 'Our certificate (PEM). Default: from the PKI directory.', helpValue: '<file>', helpGroup: 'TLS'}),
  key: Flags.string({summary: 'Our private key (PEM). Default: from the PKI directory.', helpValue: '<file>', helpGroup: 'TLS'}),
  ca: Flags.string({summary: 'CA certificate that signs the peer (PEM). Default: from the PKI directory.', helpValue: '<file>', helpGroup: 'TLS'}),
  'pki-dir': Flags.string({summary: 'PKI directory written by "tunkit pki init".', env: 'TUNKIT_PKI', helpValue: '<dir>', helpGroup: 'TLS'}),
}

/** The gate's: certificates it refuses although its CA signed them. */
export const crlFlag = {
  crl: Flags.string({summary: 'Revocation list of client certificates (PEM X.509 CRL). Default: crl.pem of the PKI directory, unless --ca is given.', helpValue: '<file>', helpGroup: 'TLS'}),
}

/** Our certificate, key and CA (and the gate's CRL), checked (lib/io/tls-config.ts); warnings go to `log`. */
export function tlsFromFlags(role: 'gate' | 'client', f: {cert?: string; key?: string; ca?: string; crl?: string; 'pki-dir'?: string}, log?: Logger): TlsMaterial {
  try {
    const files = defaultFiles(role, {cert: f.cert, key: f.key, ca: f.ca, crl: f.crl}, f['pki-dir'])
    return loadTls(files, role, (msg) => log?.log('warn', msg))
  } catch (e) {
    if (e instanceof TlsConfigError) throw new UsageError(e.message)
    throw e
  }
}
