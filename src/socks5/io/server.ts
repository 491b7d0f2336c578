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
}

/** The portal's SOCKS5 server: CONNECT and UDP ASSOCIATE, each target opened through the tunnel. */
export function socksServer(portal: Portal, o: SocksOptions): Promise<Server> {
  return listenTcp(o.host, o.port, o.log, (sock) => {
    const machine = new SocksServerMachine(o.auth)
    const peer = hostPort(sock.remoteAddress ?? '?', sock.remotePort ?? 0)
    sock.on('error', () => {})
    const timer = setTimeout(() => sock.destroy(), 30_000)
    const onData = (chunk: Buffer): void => {
      for (const step of machine.feed(chunk)) {
        if (step.kind === 'send') sock.write(step.data)
        else if (step.kind === 'fail') {
          o.log.log('debug', `SOCKS5 client ${peer}: ${step.reason}`)
          clearTimeout(timer)
          if (step.data) sock.end(step.data)
          else sock.destroy()
        } else {
          clearTimeout(timer)
          sock.removeListener('data', onData)
          sock.pause()
          if (step.rest.length) sock.unshift(step.rest)
          if (step.request.cmd === Cmd.CONNECT) connect(portal, sock, step.request, o.log)
          else void associate(portal, sock, o)
        }
      }
    }
    sock.on('data', onData)
    sock.resume()
  })
}

function connect(portal: Portal, sock: Socket, req: {host: string; port: number}, log: Logger): void {
  const ep = new SocketEndpoint(sock, (ok, reason) => {
    if (ok) sock.write(encodeReply(Reply.SUCCEEDED, sock.localAddress ?? '0.0.0.0', 0))
    else {
      log.log('info', `SOCKS5 CONNECT ${hostPort(req.host, req.port)} failed: ${reason}`)
      sock.end(encodeReply(replyFor(reason)))
    }
  })
  const s = portal.openStream(req, ep)
  if (s) ep.bind(s)
}

/** UDP ASSOCIATE (RFC 1928 section 7): one UDP relay socket per control connection. */
async function associate(portal: Portal, ctl: Socket, o: SocksOptions): Promise<void> {
  const flows = new UdpFlows({idle: o.udpIdle, failed: (key, reason) => o.log.log('info', `SOCKS5 UDP to ${key} failed: ${reason}`)})
  let client: {address: string; port: number} | null = null
  let relay: UdpSocket
  try {
    relay = await bindUdp(ctl.localAddress ?? o.host, 0, o.log, (msg, from) => {
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
        if (client) relay.send(encodeUdp(host, port, data), client.port, client.address)
      })
    })
  } catch (e) {
    o.log.log('warn', `SOCKS5 UDP ASSOCIATE: ${(e as Error).message}`)
    ctl.end(encodeReply(Reply.GENERAL_FAILURE))
    return
  }
  ctl.write(encodeReply(Reply.SUCCEEDED, ctl.localAddress ?? o.host, boundPort(relay)))
  const done = (): void => {
    flows.closeAll('SOCKS5 association ended')
    relay.close()
  }
  ctl.on('close', done)
  ctl.on('data', () => {}) // the control connection carries nothing after the reply
  ctl.resume()
}
