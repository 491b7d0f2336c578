import {createServer, isIP, Socket, type Server} from 'node:net'
import {createSocket, type Socket as UdpSocket, type RemoteInfo} from 'node:dgram'
import {lookup} from 'node:dns/promises'
import {closeSync} from 'node:fs'
import {tryNative} from './native.js'
import type {Logger} from '../log.js'
import {hostPort} from './connect.js'

/** A listener that could not be set up: the message names the address and the errno code. */
export class ListenError extends Error {
  constructor(readonly address: string, readonly code: string) {
    super(`cannot listen on ${address}: ${code}`)
  }
}

export interface Bound {
  address: string
  port: number
}

/**
 * The one place a TCP server listens or a UDP socket binds: rejects with a ListenError, and
 * afterwards logs the listener's errors (or hands them to `onError`) instead of letting them throw.
 */
const LISTEN_BACKLOG = 4096

export function startListener(s: Server | UdpSocket, host: string, port: number, onError: Logger | ((e: NodeJS.ErrnoException) => void)): Promise<Bound> {
  const where = hostPort(host, port)
  return new Promise((res, rej) => {
    const fail = (e: NodeJS.ErrnoException): void => rej(new ListenError(where, e.code ?? e.message))
    s.once('error', fail)
    const ready = (): void => {
      s.removeListener('error', fail)
      s.on('error', typeof onError === 'function' ? onError : (e: Error) => onError.log('warn', `listener on ${where}: ${e.message}`))
      const a = s.address() as Bound
      res({address: a.address, port: a.port})
    }
    // A deep accept queue: under a connection flood a full one drops SYNs, and a legitimate client
    // then waits a whole SYN retransmit (1 s). The kernel caps it at net.core.somaxconn.
    if ('listen' in s) s.listen({port, host, backlog: LISTEN_BACKLOG}, ready)
    else s.bind(port, host, ready)
  })
}

/** A listener whose accept loop runs in the addon (listenScreened). */
export interface ScreenedListener extends Bound {
  close(): void
}

/**
 * A TCP listener that screens each connection by its source before Node makes a socket of it:
 * `screen(address, port)` returns what to do with the socket, or undefined to refuse, and a
 * refused connection costs a few microseconds in the addon (native/accept.c says why that
 * matters under a reconnect flood). Null without the addon: the caller uses a net.Server then.
 * `unread`: the socket never reads (Node starts reading a readable one at once), so it can be
 * handed to another process with nothing of its input consumed here.
 */
export async function listenScreened(host: string, port: number, screen: (address: string, port: number) => ((s: Socket) => void) | undefined, opts: {unread?: boolean} = {}): Promise<ScreenedListener | null> {
  const n = tryNative()
  if (!n) return null
  const where = hostPort(host, port)
  let address = host
  if (!isIP(host)) {
    try {
      address = (await lookup(host)).address
    } catch (e) {
      throw new ListenError(where, (e as NodeJS.ErrnoException).code ?? 'ENOTFOUND')
    }
  }
  let fd: number
  let bound: number
  try {
    // Dual-stack on "::", as Node's own listen.
    ;[fd, bound] = n.acceptListen(address, port, LISTEN_BACKLOG, false)
  } catch (e) {
    throw new ListenError(where, (e as NodeJS.ErrnoException).code ?? 'EINVAL')
  }
  // Once a Socket owns the descriptor the addon must not close it: so nothing here throws past that
  // point into the addon; a bug in `take` surfaces as an uncaught exception on the next tick.
  const handle = n.acceptStart(fd, (cfd, from, fromPort) => {
    try {
      const take = screen(from, fromPort)
      if (!take) return false
      const s = opts.unread ? new Socket({fd: cfd, readable: false, writable: false}) : new Socket({fd: cfd, readable: true, writable: true})
      try {
        s.setNoDelay(true)
        take(s)
      } catch (e) {
        s.destroy()
        process.nextTick(() => { throw e })
      }
      return true
    } catch (e) {
      process.nextTick(() => { throw e })
      return false
    }
  })
  let open = true
  return {
    address, port: bound,
    close: () => {
      if (!open) return
      open = false
      n.acceptStop(handle)
      closeSync(fd)
    },
  }
}

/** A TCP listener for proxied connections: paused until the handler reads, half-open allowed. */
export async function listenTcp(host: string, port: number, log: Logger, onConn: (s: Socket) => void): Promise<Server> {
  const srv = createServer({noDelay: true, pauseOnConnect: true, allowHalfOpen: true}, onConn)
  await startListener(srv, host, port, log)
  return srv
}

export async function bindUdp(host: string, port: number, log: Logger, onMsg: (msg: Buffer, from: RemoteInfo) => void): Promise<UdpSocket> {
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  await startListener(sock, host, port, log)
  sock.on('message', onMsg)
  return sock
}

export function boundPort(s: Server | UdpSocket): number {
  return (s.address() as {port: number}).port
}
