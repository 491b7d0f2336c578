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

/** Our certificate, key and CA, checked (lib/io/tls-config.ts); warnings go to `log`. */
export function tlsFromFlags(role: 'gate' | 'client', f: {cert?: string; key?: string; ca?: string; 'pki-dir'?: string}, log?: Logger): TlsMaterial {
  try {
    const files = defaultFiles(role, {cert: f.cert, key: f.key, ca: f.ca}, f['pki-dir'])
    return loadTls(files, role, (msg) => log?.log('warn', msg))
  } catch (e) {
    if (e instanceof TlsConfigError) throw new UsageError(e.message)
    throw e
  }
}
