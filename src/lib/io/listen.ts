import {createServer, type Server, type Socket} from 'node:net'
import {createSocket, type Socket as UdpSocket, type RemoteInfo} from 'node:dgram'
import type {Logger} from '../log.js'
import {hostPort} from './connect.js'

export function listenTcp(host: string, port: number, onConn: (s: Socket) => void): Promise<Server> {
  const srv = createServer({noDelay: true, pauseOnConnect: true, allowHalfOpen: true}, onConn)
  return new Promise((res, rej) => {
    srv.once('error', (e: NodeJS.ErrnoException) => rej(new Error(`cannot listen on ${hostPort(host, port)}: ${e.code ?? e.message}`)))
    srv.listen(port, host, () => {
      srv.removeAllListeners('error')
      srv.on('error', () => {})
      res(srv)
    })
  })
}

/**
 * Listens with a long-lived server (gate, relay): rejects with the raw error (the CLI names the
 * flag), and afterwards logs listener errors instead of throwing.
 */
export function serve(srv: Server, host: string, port: number, log: Logger): Promise<{address: string; port: number}> {
  return new Promise((res, rej) => {
    srv.once('error', rej)
    srv.listen(port, host, () => {
      srv.removeListener('error', rej)
      srv.on('error', (e) => log.log('error', `listener error: ${e.message}`))
      res(srv.address() as {address: string; port: number})
    })
  })
}

export function bindUdp(host: string, port: number, onMsg: (msg: Buffer, from: RemoteInfo) => void): Promise<UdpSocket> {
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  return new Promise((res, rej) => {
    sock.once('error', (e: NodeJS.ErrnoException) => rej(new Error(`cannot bind UDP ${hostPort(host, port)}: ${e.code ?? e.message}`)))
    sock.bind(port, host, () => {
      sock.removeAllListeners('error')
      sock.on('error', () => {})
      sock.on('message', onMsg)
      res(sock)
    })
  })
}

export function boundPort(s: Server | UdpSocket): number {
  return (s.address() as {port: number}).port
}
