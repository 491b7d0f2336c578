import {X509Certificate} from 'node:crypto'
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

/** The certificate's subject CN (the identity), or the whole subject when it has none. */
export function subjectName(pem: string): string {
  const subject = new X509Certificate(pem).subject
  const cn = subject.split('\n').find((l) => l.startsWith('CN='))
  return cn ? cn.slice(3) : subject
}
