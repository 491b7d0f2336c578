import {X509Certificate} from 'node:crypto'
import {isIP} from 'node:net'
import {homedir} from 'node:os'
import {join} from 'node:path'

// What gate and portal need from the PKI at run time, without loading @peculiar/x509 (a large
// heap that every major GC would have to mark while the tunnel carries data).

/** Where `pki init` writes and gate/portal look when no certificate flags are given. */
export function defaultPkiDir(): string {
  if (process.env.TUNKIT_PKI) return process.env.TUNKIT_PKI
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(base, 'tunkit', 'pki')
}

/** Why `name` cannot be a client identity (a certificate's CN and its file name), or null. */
export function identityProblem(name: string): string | null {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) return `"${name}" must be 1-64 letters, digits, ".", "_", "@" or "-"`
  if (name === 'ca') return '"ca" is reserved'
  return null
}

/** Why `name` cannot be a subject alternative name (a DNS name, "*." allowed first, or an IP address), or null. */
export function sanProblem(name: string): string | null {
  if (isIP(name)) return null
  const labels = name.replace(/^\*\./, '').split('.')
  const ok = name.length <= 253 && labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))
  return ok ? null : `"${name}" is not a DNS name or an IP address`
}

/** The revocation list in a PKI directory: `pki revoke` writes it, the gate reads it by default. */
export const CRL_FILE = 'crl.pem'

/** The certificate's subject CN (the identity), or the whole subject when it has none. */
export function subjectName(pem: string): string {
  const subject = new X509Certificate(pem).subject
  const cn = subject.split('\n').find((l) => l.startsWith('CN='))
  return cn ? cn.slice(3) : subject
}
