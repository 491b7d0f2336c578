import type {Server} from 'node:net'
import type {Socket as UdpSocket} from 'node:dgram'
import type {Logger} from '../../lib/log.js'
import {hostPort} from '../../lib/io/connect.js'
import {bindUdp, listenTcp} from '../../lib/io/listen.js'
import type {Portal, Target} from './portal.js'
import {SocketEndpoint} from './stream-endpoint.js'
import {UdpFlows} from './udp-flows.js'

export interface ForwardSpec {
  bind: string
  port: number
  to: Target
}

/** `-L`: every local connection becomes one session to the fixed target. */
export async function tcpForward(portal: Portal, f: ForwardSpec, log: Logger): Promise<Server> {
  return listenTcp(f.bind, f.port, log, (sock) => {
    const what = `-L ${hostPort(f.bind, f.port)} → ${hostPort(f.to.host, f.to.port)}`
    log.log('debug', `${what}: connection from ${hostPort(sock.remoteAddress ?? '?', sock.remotePort ?? 0)}`)
    const ep = new SocketEndpoint(sock, (ok, reason) => {
      if (!ok) log.log('warn', `${what}: ${reason}`)
      else log.log('debug', `${what}: the gate opened it`)
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
  const flows = new UdpFlows({idle, failed: (_, reason) => log.log('warn', `-U ${hostPort(f.bind, f.port)} → ${hostPort(f.to.host, f.to.port)}: ${reason}`)})
  const sock: UdpSocket = await bindUdp(f.bind, f.port, log, (msg, from) => {
    flows.send(hostPort(from.address, from.port), msg, {addr: from.address, port: from.port}, (ep) => portal.openDatagram(f.to, ep), (data) => sock.send(data, from.port, from.address))
  })
  sock.once('close', () => flows.closeAll('-U listener closed'))
  return sock
}
