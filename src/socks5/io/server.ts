import {type Server, type Socket} from 'node:net'
import type {Socket as UdpSocket} from 'node:dgram'
import {CodecError} from '../../lib/errors.js'
import {Cmd, encodeReply, encodeUdp, parseUdp, Reply} from '../codec/messages.js'
import type {Logger} from '../../lib/log.js'
import {replyFor, SocksServerMachine} from '../core/negotiation.js'
import {hostPort} from '../../lib/io/connect.js'
import {bindUdp, boundPort, listenTcp} from '../../lib/io/listen.js'
import type {Portal} from '../../tunnel/io/portal.js'
import {SocketEndpoint} from '../../tunnel/io/stream-endpoint.js'
import {UdpFlows} from '../../tunnel/io/udp-flows.js'

export interface SocksOptions {
  host: string
  port: number
  auth?: {user: string; pass: string}
  udpIdle: number
  log: Logger
  /** Aborting closes the listener and every connection it accepted (a UDP association's too). */
  signal?: AbortSignal
}

/** The portal's SOCKS5 server: CONNECT and UDP ASSOCIATE, each target opened through the tunnel. */
export async function socksServer(portal: Portal, o: SocksOptions): Promise<Server> {
  const live = new Set<Socket>()
  const srv = await listenTcp(o.host, o.port, o.log, (sock) => {
    if (o.signal?.aborted) return void sock.destroy()
    live.add(sock)
    sock.once('close', () => live.delete(sock))
    const machine = new SocksServerMachine(o.auth)
    const peer = hostPort(sock.remoteAddress ?? '?', sock.remotePort ?? 0)
    sock.on('error', () => {})
    const timer = setTimeout(() => sock.destroy(), 30_000)
    sock.once('close', () => clearTimeout(timer)) // else a closed socket's timer holds the process
    // A client that ends its side mid-negotiation can never finish it (the socket is half-open).
    const onEnd = (): void => {
      clearTimeout(timer)
      sock.destroy()
    }
    const onData = (chunk: Buffer): void => {
      for (const step of machine.feed(chunk)) {
        if (step.kind === 'send') sock.write(step.data)
        else if (step.kind === 'fail') {
          o.log.log('debug', `SOCKS5 client ${peer}: ${step.reason}`)
          clearTimeout(timer)
          sock.removeListener('end', onEnd)
          if (step.data) sock.end(step.data)
          else sock.destroy()
        } else {
          clearTimeout(timer)
          sock.removeListener('data', onData)
          sock.removeListener('end', onEnd)
          sock.pause()
          if (step.rest.length) sock.unshift(step.rest)
          if (step.request.cmd === Cmd.CONNECT) connect(portal, sock, step.request, o.log)
          else void associate(portal, sock, o)
        }
      }
    }
    sock.on('data', onData)
    sock.once('end', onEnd)
    sock.resume()
  })
  o.signal?.addEventListener('abort', () => {
    srv.close()
    for (const s of live) s.destroy()
  }, {once: true})
  return srv
}
function connect(portal: Portal, sock: Socket, req: {host: string; port: number}, log: Logger): void {
  const ep = new SocketEndpoint(sock, (ok, reason) => {
    if (ok) {
      log.log('debug', `SOCKS5 CONNECT ${hostPort(req.host, req.port)} from ${hostPort(sock.remoteAddress ?? '?', sock.remotePort ?? 0)}: the gate opened it`)
      sock.write(encodeReply(Reply.SUCCEEDED, sock.localAddress ?? '0.0.0.0', 0))
    } else {
      log.log('info', `SOCKS5 CONNECT ${hostPort(req.host, req.port)} failed: ${reason}`)
      sock.end(encodeReply(replyFor(reason)))
    }
  })
  const s = portal.openStream(req, ep)
  if (s) ep.bind(s)
}

/**
 * UDP ASSOCIATE (RFC 1928 section 7): one UDP relay socket per control connection, which lives
 * exactly as long as the control connection. The control socket is half-open capable, so a client
 * that only ends its side gives 'end' and never 'close': either one ends the association.
 */
async function associate(portal: Portal, ctl: Socket, o: SocksOptions): Promise<void> {
  const flows = new UdpFlows({idle: o.udpIdle, failed: (key, reason) => o.log.log('info', `SOCKS5 UDP to ${key} failed: ${reason}`)})
  let client: {address: string; port: number} | null = null
  let relay: UdpSocket | null = null
  let ended = false
  const done = (): void => {
    if (ended) return
    ended = true
    flows.closeAll('SOCKS5 association ended')
    relay?.close()
    ctl.destroy()
  }
  // Watched from the start: the client may leave while the relay socket is being bound.
  ctl.once('end', done)
  ctl.once('close', done)
  ctl.on('data', () => {}) // the control connection carries nothing after the reply
  ctl.resume()
  let sock: UdpSocket
  try {
    sock = await bindUdp(ctl.localAddress ?? o.host, 0, o.log, (msg, from) => {
      // Only the client that owns the association may use it (RFC 1928: "MUST drop" others).
      if (from.address !== ctl.remoteAddress) return
      client = {address: from.address, port: from.port}
      let d
      try {
        d = parseUdp(msg)
      } catch (e) {
        if (e instanceof CodecError) return
        throw e
      }
      if (d.frag !== 0) return // fragmentation is optional; we drop fragments
      const {host, port} = d
      flows.send(hostPort(host, port), d.data, {addr: from.address, port: from.port}, (ep) => portal.openDatagram({host, port}, ep), (data) => {
        if (client && !ended) sock.send(encodeUdp(host, port, data), client.port, client.address)
      })
    })
  } catch (e) {
    o.log.log('warn', `SOCKS5 UDP ASSOCIATE: ${(e as Error).message}`)
    if (!ended) ctl.end(encodeReply(Reply.GENERAL_FAILURE))
    return
  }
  relay = sock
  if (ended) return void sock.close()
  ctl.write(encodeReply(Reply.SUCCEEDED, ctl.localAddress ?? o.host, boundPort(sock)))
}
