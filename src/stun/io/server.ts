import {createSocket, type Socket} from 'node:dgram'
import {decodeStun, type TransportAddress} from '../codec/message.js'
import type {Logger} from '../../lib/log.js'
import {Admission, type ServerConfig, type Via} from '../core/responder.js'
import {STUN_TRACE, stunFields} from '../trace.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {hostPort} from '../../lib/io/connect.js'
import {startListener} from '../../lib/io/listen.js'

/** The STUN server's tunables; the nat-discover --serve flags show these. */
export const STUN_SERVER_DEFAULTS = {
  primary: {address: '0.0.0.0', port: 3478},
  /** Answers per second per source address, and the burst allowed above it. */
  rate: 50,
  burst: 100,
  /**
   * Answers per second from the whole server, and the burst above it: with spoofed sources the
   * per-source limit never bites. 1 000 answers of at most 72 bytes (IPv4, on the wire) is under
   * 0.6 Mbit/s of amplified traffic; a NAT discovery takes about ten.
   */
  globalRate: 1000,
  globalBurst: 2000,
}

export type StunServerConfig = Omit<StunServerOptions, keyof typeof STUN_SERVER_DEFAULTS> & Partial<typeof STUN_SERVER_DEFAULTS>

export interface StunServerOptions extends ServerConfig {
  rate: number
  burst: number
  globalRate: number
  globalBurst: number
  log: Logger
  tracer?: Tracer
}

/** An RFC 5780 STUN server: one UDP socket per (address, port) pair it serves. */
export class StunServer {
  private sockets = new Map<string, Socket>()
  private admission: Admission
  answered = 0
  dropped = 0
  /** Of the dropped: well-formed requests not answered because the global budget was spent. */
  overBudget = 0

  private readonly o: StunServerOptions

  constructor(config: StunServerConfig) {
    const o = (this.o = {...STUN_SERVER_DEFAULTS, ...config})
    this.admission = new Admission(o, o)
  }

  private static key(v: Via): string {
    return `${v.altIp ? 'A' : 'P'}${v.altPort ? 'A' : 'P'}`
  }

  async listen(): Promise<TransportAddress[]> {
    const vias: Via[] = this.o.alternate
      ? [{altIp: false, altPort: false}, {altIp: false, altPort: true}, {altIp: true, altPort: false}, {altIp: true, altPort: true}]
      : [{altIp: false, altPort: false}]
    const bound: TransportAddress[] = []
    for (const via of vias) {
      const alt = this.o.alternate ?? this.o.primary
      const address = via.altIp ? alt.address : this.o.primary.address
      const port = via.altPort ? alt.port : this.o.primary.port
      const s = createSocket({type: address.includes(':') ? 'udp6' : 'udp4'})
      const b = await startListener(s, address, port, this.o.log)
      this.sockets.set(StunServer.key(via), s)
      s.on('message', (msg, rinfo) => this.onMessage(msg, {address: rinfo.address, port: rinfo.port}, via, hostPort(address, port)))
      bound.push({address, port: b.port})
    }
    return bound
  }

  close(): void {
    for (const s of this.sockets.values()) s.close()
    this.sockets.clear()
  }

  private onMessage(msg: Buffer, from: TransportAddress, on: Via, local: string): void {
    const a = this.admission.decide(msg, from, on, Date.now())
    const tracer = this.o.tracer
    if (tracer && a !== 'not-stun' && a !== 'source-rate') {
      try { tracer.emit('in', hostPort(from.address, from.port), {...stunFields(decodeStun(msg)), len: msg.length, local}) } catch { /* not answered */ }
    }
    if (typeof a === 'string') {
      if (a === 'over-budget') this.overBudget++
      return void this.dropped++
    }
    const sock = this.sockets.get(StunServer.key(a.via))
    if (!sock) return void this.dropped++
    this.answered++
    if (tracer) {
      const via = sock.address()
      tracer.emit('out', hostPort(a.to.address, a.to.port), {...stunFields(decodeStun(a.data)), len: a.data.length, local: hostPort(via.address, via.port)})
    }
    sock.send(a.data, a.to.port, a.to.address)
  }
}
