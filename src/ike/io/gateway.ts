import {hostPort} from '../../lib/io/connect.js'
import {tuneServerProcess} from '../../lib/io/native.js'
import type {Logger} from '../../lib/log.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {LeasePool} from '../../vpn/core/leases.js'
import {idToString} from '../codec/id.js'
import type {Action} from '../core/exchange.js'
import {suiteText} from '../core/describe.js'
import {IkeResponder, type ResponderConfig} from '../core/responder.js'
import {IKE_PORT, IkeDriver} from './driver.js'
import type {EspEngine} from '../../esp/io/engine.js'
import {IpsecDevice} from './tun.js'

export interface GatewayOptions {
  listen: string
  port?: number
  /** The responder's configuration without the address and leases (those are the gateway's). */
  responder: Omit<ResponderConfig, 'local' | 'lease'>
  pool: string
  dev: string
  plane: EspEngine
  log: Logger
  tracer?: Tracer
  on?(a: Action): void
}

/**
 * `key-exchange --respond`: the responder for every client, one TUN device holding the pool's
 * first address (its connected route brings replies for every leased address back to the device),
 * and each CHILD_SA in the ESP plane. Leases are by identity: a client gets its address back.
 */
export class IkeGateway {
  private machine!: IkeResponder
  private driver!: IkeDriver
  private dev: IpsecDevice | undefined
  private readonly pool: LeasePool
  /** Established IKE_SAs (initiator SPI, hex), for the DELETEs at shutdown. */
  private readonly up = new Map<string, Buffer>()

  constructor(private readonly o: GatewayOptions) {
    this.pool = new LeasePool(o.pool)
  }

  async start(): Promise<void> {
    const o = this.o
    // A server, as gate and relay: memory a burst of handshakes left behind goes back to the system.
    tuneServerProcess()
    this.dev = IpsecDevice.open(o.dev)
    this.dev.configure(this.pool.gateway, this.pool.prefix)
    o.plane.attachTun(this.dev.fd)
    // As the client does (client.ts), we claim a port we do not use in NAT_DETECTION_SOURCE_IP, so
    // a client without NAT still floats to 4500 and carries ESP in UDP.
    this.machine = new IkeResponder({...o.responder, local: {address: o.listen, port: 0}, lease: (id) => this.pool.lease(idToString(id)) ?? undefined, onPlain: o.tracer && ((...a) => this.driver.onPlain(...a))}, {spiInUse: (spi) => this.driver.installed.has(spi.toString('hex'))})
    const m = this.machine
    this.driver = new IkeDriver({receive: (raw, from, now) => m.receive(raw, from, now), tick: (now) => m.tick(now), sa: (spiI) => m.ikeSa(spiI)}, o.plane, {role: 'responder', log: o.log, tracer: o.tracer, on: (a) => this.onAction(a)})
    await this.driver.listen(o.listen, o.port ?? IKE_PORT)
  }

  private onAction(a: Action): void {
    const log = this.o.log
    switch (a.type) {
      case 'established': {
        const sa = a.sa
        this.up.set(sa.spiI.toString('hex'), sa.spiI)
        log.log('info', `IKE_SA up with ${sa.peerId} at ${hostPort(sa.peer.address, sa.peer.port)}: ${suiteText(sa.ike)}, SPIs ${sa.spiI.toString('hex')}/${sa.spiR.toString('hex')}${sa.vip ? `, address ${sa.vip}` : ''}`)
        log.log('info', IkeDriver.childLine(sa.child, 'responder'))
        break
      }
      case 'rekeyed':
        log.log('info', `rekeyed: ${IkeDriver.childLine(a.child, 'responder')}`)
        break
      case 'ike-rekeyed':
        this.up.delete(a.oldSpiI.toString('hex'))
        this.up.set(a.sa.spiI.toString('hex'), a.sa.spiI)
        log.log('info', `IKE_SA ${a.oldSpiI.toString('hex')} rekeyed: SPIs ${a.sa.spiI.toString('hex')}/${a.sa.spiR.toString('hex')}`)
        break
      case 'failed':
        log.log('warn', a.error.message, {code: a.error.code})
        this.up.delete(a.spiI.toString('hex'))
        break
      case 'deleted':
        if (a.what === 'ike') this.up.delete(a.spiI.toString('hex'))
        log.log('info', `${a.what === 'ike' ? 'IKE_SA' : 'CHILD_SA'} ${a.what === 'ike' ? a.spiI.toString('hex') : a.spis.map((s) => s.toString('hex')).join('/')} deleted by ${a.by === 'us' ? 'us' : 'the peer'}${a.why ? `: ${a.why}` : ''}`)
        break
    }
    this.o.on?.(a)
  }

  get established(): number {
    return this.up.size
  }

  /** IKE_SA_INIT answered, IKE_AUTH not yet (bounded by the responder's maxHalfOpen). */
  get halfOpen(): number {
    return this.machine?.halfOpen ?? 0
  }

  /** DELETE to every client, then waits for their answers at most `graceMs`. */
  async stop(graceMs = 1000): Promise<void> {
    const now = Date.now()
    for (const spiI of this.up.values()) this.driver.run(this.machine.ikeSa(spiI)?.close(now) ?? [])
    const deadline = Date.now() + graceMs
    while (this.up.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    this.driver?.close()
    this.dev?.close()
    this.dev = undefined
  }
}
