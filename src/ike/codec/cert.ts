import {CodecError} from '../../lib/errors.js'
import {CertEncoding} from './constants.js'

/** Certificate (§3.6) and Certificate Request (§3.7) payloads: an encoding and its data. */
export interface CertBody {
  encoding: number
  data: Buffer
}

export function decodeCert(b: Buffer, what: 'CERT' | 'CERTREQ'): CertBody {
  if (b.length < 1) throw new CodecError('TRUNCATED', `${what}: truncated`)
  const c = {encoding: b[0], data: Buffer.from(b.subarray(1))}
  // A CERTREQ for X.509 carries SHA-1 hashes of CA public keys, 20 bytes each.
  if (what === 'CERTREQ' && c.encoding === CertEncoding.X509_SIGNATURE && c.data.length % 20 !== 0) {
    throw new CodecError('BAD_CERTREQ', 'CERTREQ: authority hashes are 20 bytes each')
  }
  return c
}

export function encodeCert(c: CertBody): Buffer {
  return Buffer.concat([Buffer.from([c.encoding]), c.data])
}

/** The CA key hashes of an X.509 CERTREQ. */
export function certreqAuthorities(c: CertBody): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i + 20 <= c.data.length; i += 20) out.push(c.data.subarray(i, i + 20))
  return out
}
