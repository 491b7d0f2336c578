import {lookup} from 'node:dns/promises'
import {isIP, Socket, connect as netConnect} from 'node:net'
import {ConnectError, fromSystemError} from '../errors.js'

export async function resolve(host: string): Promise<{address: string; family: number}> {
  if (isIP(host)) return {address: host, family: isIP(host)}
  try {
    return await lookup(host)
  } catch (e) {
    throw fromSystemError(e, `cannot resolve ${host}`, 'TK_HOST_NOT_FOUND')
  }
}

/** The one place that dials TCP: no-delay on, bounded connect time, failures as ConnectError. */
export function dialTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({host, port, noDelay: true, allowHalfOpen: true})
    const timer = setTimeout(() => {
      s.destroy()
      reject(new ConnectError('TK_CONNECT_TIMEOUT', `connect to ${hostPort(host, port)} timed out`))
    }, timeoutMs)
    s.once('connect', () => {
      clearTimeout(timer)
      s.removeAllListeners('error')
      resolve(s)
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(fromSystemError(err, `connect to ${hostPort(host, port)}`))
    })
  })
}

export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}
