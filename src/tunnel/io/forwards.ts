import type {Server} from 'node:net'
import type {Socket as UdpSocket} from 'node:dgram'
import type {Logger} from '../../lib/log.js'
import type {Session} from '../core/mux.js'
import {hostPort} from '../../lib/io/connect.js'
import {bindUdp, listenTcp} from '../../lib/io/listen.js'
import type {Portal, Target} from './portal.js'
import {SocketEndpoint} from './stream-endpoint.js'

export interface ForwardSpec {
  bind: string
  port: number
  to: Target
}

/** `-L`: every local connection becomes one session to the fixed target. */
export async function tcpForward(portal: Portal, f: ForwardSpec, log: Logger): Promise<Server> {
  return listenTcp(f.bind, f.port, (sock) => {
    const ep = new SocketEndpoint(sock, (ok, reason) => {
      if (!ok) log.log('warn', `-L ${hostPort(f.bind, f.port)} → ${hostPort(f.to.host, f.to.port)}: ${reason}`)
    })
    const s = portal.openStream(f.to, ep)
    if (s) ep.bind(s)
  })
}

/**
 * `-U`: each local UDP client (source address and port) gets its own UDP session to the target,
 * so replies find their way back; sessions end after `idle` seconds of silence.
 */
export async function udpForward(portal: Portal, f: ForwardSpec, idle: number, log: Logger): Promise<UdpSocket> {
  const clients = new Map<string, {session: Session | null; queue: Buffer[]; timer: NodeJS.Timeout}>()
  const sock: UdpSocket = await bindUdp(f.bind, f.port, (msg, from) => {
    const key = hostPort(from.address, from.port)
    let c = clients.get(key)
    if (c) {
      c.timer.refresh()
    } else {
      const entry: {session: Session | null; queue: Buffer[]; timer: NodeJS.Timeout} = {
        session: null, queue: [],
        timer: setTimeout(() => entry.session?.close('idle'), idle * 1000),
      }
      entry.timer.unref()
      c = entry
      clients.set(key, c)
      entry.session = portal.openDatagram(f.to, {
        opened: (ok, reason) => {
          if (!ok) {
            log.log('warn', `-U ${hostPort(f.bind, f.port)} → ${hostPort(f.to.host, f.to.port)}: ${reason}`)
            clients.delete(key)
            return
          }
          for (const m of entry.queue) entry.session!.sendDatagram(m, {addr: from.address, port: from.port})
          entry.queue = []
        },
        deliver: (data) => sock.send(data, from.port, from.address),
        destroy: () => {
          clearTimeout(entry.timer)
          clients.delete(key)
        },
      })
    }
    if (c.session?.state === 'active') c.session.sendDatagram(msg, {addr: from.address, port: from.port})
    else if (c.queue.length < 64) c.queue.push(msg)
  })
  return sock
}
