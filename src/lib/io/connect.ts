import {lookup} from 'node:dns/promises'
import {isIP, Socket, connect as netConnect} from 'node:net'

/** Why an outbound open failed, as the first word of an UsherOpenReply reason. */
export type FailCode = 'refused' | 'unreachable' | 'notfound' | 'denied' | 'timeout' | 'limit' | 'unavailable' | 'failed'

export class OpenError extends Error {
  constructor(readonly code: FailCode, detail: string) {
    super(`${code}: ${detail}`)
  }
}

export function classifyDialError(err: NodeJS.ErrnoException): FailCode {
  switch (err.code) {
    case 'ECONNREFUSED': return 'refused'
    case 'ENOTFOUND': case 'EAI_AGAIN': case 'EAI_NONAME': case 'EAI_NODATA': return 'notfound'
    case 'ETIMEDOUT': return 'timeout'
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EADDRNOTAVAIL': case 'EAFNOSUPPORT': return 'unreachable'
    default: return 'failed'
  }
}

export async function resolve(host: string): Promise<{address: string; family: number}> {
  if (isIP(host)) return {address: host, family: isIP(host)}
  try {
    return await lookup(host)
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw new OpenError(classifyDialError(err), `cannot resolve ${host} (${err.code})`)
  }
}

/** The one place that dials TCP: no-delay on, bounded connect time, errors classified. */
export function dialTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({host, port, noDelay: true, allowHalfOpen: true})
    const timer = setTimeout(() => {
      s.destroy()
      reject(new OpenError('timeout', `connect to ${host}:${port} timed out`))
    }, timeoutMs)
    s.once('connect', () => {
      clearTimeout(timer)
      s.removeAllListeners('error')
      resolve(s)
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(new OpenError(classifyDialError(err), `connect to ${host}:${port}: ${err.code ?? err.message}`))
    })
  })
}

export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}
