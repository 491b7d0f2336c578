import {type Server, type Socket} from 'node:net'
import type {Socket as UdpSocket} from 'node:dgram'
import {CodecError} from '../../lib/errors.js'
import {Cmd, encodeReply, encodeUdp, parseUdp, Reply} from '../codec/messages.js'
import type {Logger} from '../../lib/log.js'
import type {Session} from '../../tunnel/core/mux.js'
import {replyFor, SocksServerMachine} from '../core/negotiation.js'
import {hostPort} from '../../lib/io/connect.js'
import {bindUdp, boundPort, listenTcp} from '../../lib/io/listen.js'
import type {Portal} from '../../tunnel/io/portal.js'
import {SocketEndpoint} from '../../tunnel/io/stream-endpoint.js'

export interface SocksOptions {
  host: string
  port: number
  auth?: {user: string; pass: string}
  udpIdle: number
  log: Logger
}

/** The portal's SOCKS5 server: CONNECT and UDP ASSOCIATE, each target opened through the tunnel. */
export function socksServer(portal: Portal, o: SocksOptions): Promise<Server> {
  return listenTcp(o.host, o.port, (sock) => {
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
  const sessions = new Map<string, {session: Session | null; queue: Buffer[]}>()
  let client: {address: string; port: number} | null = null
  let relay: UdpSocket
  try {
    relay = await bindUdp(ctl.localAddress ?? o.host, 0, (msg, from) => {
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
      const key = hostPort(d.host, d.port)
      let entry = sessions.get(key)
      if (!entry) {
        const e: {session: Session | null; queue: Buffer[]} = {session: null, queue: []}
        entry = e
        sessions.set(key, e)
        e.session = portal.openDatagram({host: d.host, port: d.port}, {
          opened: (ok, reason) => {
            if (!ok) {
              o.log.log('info', `SOCKS5 UDP to ${key} failed: ${reason}`)
              sessions.delete(key)
              return
            }
            for (const m of e.queue) e.session!.sendDatagram(m, {addr: from.address, port: from.port})
            e.queue = []
          },
          deliver: (data) => {
            if (client) relay.send(encodeUdp(d.host, d.port, data), client.port, client.address)
          },
          destroy: () => sessions.delete(key),
        })
      }
      if (entry.session?.state === 'active') entry.session.sendDatagram(d.data, {addr: from.address, port: from.port})
      else if (entry.queue.length < 64) entry.queue.push(d.data)
    })
  } catch (e) {
    o.log.log('warn', `SOCKS5 UDP ASSOCIATE: ${(e as Error).message}`)
    ctl.end(encodeReply(Reply.GENERAL_FAILURE))
    return
  }
  ctl.write(encodeReply(Reply.SUCCEEDED, ctl.localAddress ?? o.host, boundPort(relay)))
  const done = (): void => {
    for (const e of sessions.values()) e.session?.close('SOCKS5 association ended')
    relay.close()
  }
  ctl.on('close', done)
  ctl.on('data', () => {}) // the control connection carries nothing after the reply
  ctl.resume()
}
