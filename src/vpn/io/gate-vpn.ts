import type {VpnConfig} from '../../tunnel/core/handshake.js'
import type {DataMacAlgorithm} from '../../tunnel/core/data-channel.js'
import type {Logger} from '../../lib/log.js'
import type {Link} from '../../tunnel/io/link.js'
import {CloseStatus} from '../../tunnel/codec/tunnel.js'
import {TunDevice} from '../../lib/io/tun.js'
import {ipv4Dst, ipv4Src, isIpv4Packet} from '../../inet/codec/ipv4.js'
import {LeasePool} from '../core/leases.js'
import {openChannel, type Channel, type KeyExporter} from './channel.js'
import {setUpGateDevice} from './netconfig.js'

/** The gate's side of VPN mode: one TUN device, addresses leased by identity from the pool. */
export class GateVpn {
  private pool: LeasePool
  private byIp = new Map<string, Channel>()
  readonly gateway: string
  readonly prefix: number

  private constructor(private readonly dev: TunDevice, pool: string, private readonly routes: string[], private readonly dns: string[], private readonly log: Logger) {
    this.pool = new LeasePool(pool)
    this.prefix = this.pool.prefix
    this.gateway = this.pool.gateway
    dev.on('packets', (ps: Buffer[], flags?: number[]) => {
      for (let i = 0; i < ps.length; i++) {
        const p = ps[i]
        if (!isIpv4Packet(p)) continue
        this.byIp.get(ipv4Dst(p))?.send(p, flags ? flags[i] : 0)
      }
    })
    dev.on('error', (e: Error) => this.deviceFailed(e))
  }

  /** The device failed (its interface was deleted, say): VPN mode ends, the gate's other services
   * go on; the tunnels using it are closed rather than left carrying nothing. */
  private deviceFailed(e: Error): void {
    this.log.log('error', `VPN: ${e.message}; VPN mode stops`, {code: (e as {code?: string}).code})
    this.dev.close()
    const links = [...this.byIp.values()].map((c) => c.link)
    this.byIp.clear()
    for (const l of links) if (!l.isClosed) l.close(CloseStatus.SHUTDOWN, 'the gate\'s VPN device failed')
  }

  /** offload: open the device with TSO and checksum offload (when the kernel agrees). */
  static open(pool: string, routes: string[], dns: string[], devName: string, log: Logger, offload = true): GateVpn {
    const dev = TunDevice.open(devName, 'tun', offload)
    const v = new GateVpn(dev, pool, routes, dns, log)
    setUpGateDevice(dev.name, v.gateway, v.prefix)
    log.log('info', `VPN: device ${dev.name} with ${v.gateway}/${v.prefix}${dev.offload ? ', offloads on' : ''}; routes for clients: ${routes.join(', ') || 'none'}`)
    return v
  }

  /** The same identity gets the same address after a reconnect. dataMacs: the DATA digests the
   * portal offers besides the default, preferred first; the gate has them all and takes the first. */
  lease(identity: string, dataMacs: DataMacAlgorithm[] = []): VpnConfig | null {
    const a = this.pool.lease(identity)
    if (!a) return null
    return {address: a, prefix: this.prefix, gateway: this.gateway, routes: this.routes, dns: this.dns, offload: this.dev.offload, dataMac: dataMacs[0]}
  }

  /** cfg: what lease() gave this portal; peerOffload: its device takes super-packets and partial checksums. */
  attach(cfg: VpnConfig, link: Link, tls: KeyExporter, peerOffload = false): void {
    const address = cfg.address
    this.byIp.set(address, openChannel(link, tls, 'gate', (d, flags) => {
      // A client may only send from its own address.
      if (ipv4Src(d) === address) this.dev.write(d, flags)
    }, {peerOffload, dataMac: cfg.dataMac}))
  }

  detach(address: string, link: Link): void {
    if (this.byIp.get(address)?.link === link) this.byIp.delete(address)
  }

  close(): void {
    this.dev.close()
  }
}
