import type {VpnConfig} from '../../tunnel/core/handshake.js'
import type {Logger} from '../../lib/log.js'
import type {Link} from '../../tunnel/io/link.js'
import {CloseStatus} from '../../tunnel/codec/tunnel.js'
import {TunDevice} from '../../lib/io/tun.js'
import {carriesIpv4, decodeEth, encodeEth, ETH_HEADER, EtherType} from '../../inet/codec/ethernet.js'
import {isIpv4Packet} from '../../inet/codec/ipv4.js'
import {finish} from '../../inet/codec/offload.js'
import {emulate, GATEWAY_MAC, type AdapterConfig} from '../core/emulators.js'
import {ethFields} from '../../inet/trace.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {openChannel, type Channel, type KeyExporter} from './channel.js'
import {setUpPortalDevice} from './netconfig.js'
import {acceptVpnConfig, type Cidr} from '../core/pushed.js'

/**
 * The portal's pseudo network adapter. TUN: IP packets both ways, and the portal sets the address
 * and routes itself. TAP (seed 000 Fig. 15): the host's own DHCP client gets the address, router
 * and routes from the DHCP server emulator, its ARP learns the gate's reserved MAC from the ARP
 * server emulator, and Ethernet headers are stripped on the way out and rebuilt on the way in.
 * The device, its address and routes outlive a tunnel, so a reconnect keeps them.
 */
export class PortalVpn {
  private dev: TunDevice | null = null
  private current: Channel | null = null
  private configured = ''
  private adapter: AdapterConfig | null = null
  /** TAP: the host side's MAC, learned from the frames it sends. */
  private hostMac: string | null = null

  /** accept: --accept-routes (null: the default policy of core/pushed.ts). */
  /** offload: open a TUN device with TSO and checksum offload (when the kernel agrees). */
  constructor(private readonly devName: string, private readonly installRoutes: boolean, private readonly log: Logger, private readonly mode: 'tun' | 'tap' = 'tun', private readonly tracer?: Tracer, private readonly accept: Cidr[] | null = null, private readonly offload = true) {}

  /** What REQUEST says: whether this portal's device will take super-packets and partial checksums.
   * Said before the device is open; should the kernel refuse them, the device finishes them itself. */
  get offers(): boolean {
    return this.offload && this.mode === 'tun'
  }

  /** avoid: the first hop's address, which no pushed route may cover. Throws on a configuration it refuses. */
  attach(pushed: VpnConfig, link: Link, tls: KeyExporter, avoid: string[] = []): void {
    // Checked before anything touches the device: the gate is trusted with traffic, not with this host's routing table.
    const cfg = acceptVpnConfig(pushed, {accept: this.accept, avoid})
    if (!this.dev) {
      this.dev = TunDevice.open(this.devName, this.mode, this.offers)
      this.dev.on('packets', (ps: Buffer[], flags?: number[]) => (this.mode === 'tap' ? this.fromTap(ps) : this.send(ps, flags)))
      this.dev.on('error', (e: Error) => this.deviceFailed(e))
    }
    const dev = this.dev
    const key = `${cfg.address}/${cfg.prefix} ${cfg.gateway} ${cfg.routes.join(',')}`
    if (this.configured !== key) {
      for (const r of cfg.refused) {
        this.log.log('info', `VPN: refused ${r.kind} ${JSON.stringify(r.value)} pushed by the gate: ${r.reason}`)
        this.log.event('vpn-refused', {kind: r.kind, value: r.value, reason: r.reason})
      }
      setUpPortalDevice(dev.name, this.mode, cfg, this.installRoutes ? cfg.routes : [])
      if (this.installRoutes && this.mode === 'tun') {
        for (const r of cfg.routes) {
          this.log.log('info', `VPN: route ${r} via ${cfg.gateway} dev ${dev.name} installed`)
          this.log.event('vpn-route', {route: r, gateway: cfg.gateway, dev: dev.name})
        }
      }
      this.adapter = {address: cfg.address, prefix: cfg.prefix, gateway: cfg.gateway, routes: this.installRoutes ? cfg.routes : [], dns: cfg.dns, leaseSec: 3600}
      this.configured = key
      this.log.log('info', this.mode === 'tun'
        ? `VPN: ${dev.name} ${cfg.address}/${cfg.prefix}, gateway ${cfg.gateway}${this.installRoutes ? `, routes ${cfg.routes.join(', ') || 'none'}` : ''}${dev.offload ? ', offloads on' : ''}`
        : `VPN: TAP ${dev.name}; its DHCP client will get ${cfg.address}/${cfg.prefix}, router ${cfg.gateway}`)
    }
    dev.pause(false) // a hold for the tunnel before this one
    this.current = openChannel(link, tls, 'portal', (d, flags) => this.toDevice(d, flags), {peerOffload: pushed.offload === true, dataMac: pushed.dataMac})
  }

  /** The device failed (its interface was deleted, say): it is closed with the tunnel, and the next
   * tunnel opens and configures it again. */
  private deviceFailed(e: Error): void {
    this.log.log('error', `VPN: ${e.message}; closing the tunnel`, {code: (e as {code?: string}).code})
    this.close()
    this.configured = ''
    const c = this.current
    this.current = null
    if (c && !c.link.isClosed) c.link.close(CloseStatus.SHUTDOWN, 'the VPN device failed')
  }

  private send(packets: Buffer[], flags?: number[]): void {
    const c = this.current
    if (!c || c.link.isClosed) return
    // IPv4 only: the kernel also sends IPv6 (router solicitations, MLD) on the device, which the
    // gate would only drop.
    for (let i = 0; i < packets.length; i++) if (isIpv4Packet(packets[i])) c.send(packets[i], flags ? flags[i] : 0)
    // The device waits while the tunnel's send queue drains (docs/vpn.md).
    if (c.congested && this.dev && !this.dev.paused) {
      this.dev.pause(true)
      c.link.whenDrained(() => this.dev?.pause(false))
    }
  }

  private fromTap(frames: Buffer[]): void {
    const out: Buffer[] = []
    for (const f of frames) {
      const r = this.adapter ? emulate(this.adapter, f) : {handled: false as const}
      if (r.handled) {
        const peer = `adapter ${this.devName}`
        this.tracer?.emit('in', peer, {type: 'ETHERNET', len: f.length, ...ethFields(f)})
        for (const reply of r.replies) {
          this.tracer?.emit('out', peer, {type: 'ETHERNET', len: reply.length, ...ethFields(reply)})
          this.dev?.write(reply)
        }
        continue
      }
      if (carriesIpv4(f)) {
        this.hostMac = decodeEth(f).src
        out.push(f.subarray(ETH_HEADER))
      }
    }
    if (out.length) this.send(out)
  }

  private toDevice(datagram: Buffer, flags: number): void {
    if (this.mode === 'tun') return void this.dev?.write(datagram, flags)
    if (!this.hostMac) return
    // TAP offers no offloads: a gate that sends them anyway has them finished here.
    for (const d of flags ? finish(flags, datagram) : [datagram]) this.dev?.write(encodeEth({dst: this.hostMac, src: GATEWAY_MAC, type: EtherType.IPV4, payload: d}))
  }

  close(): void {
    this.dev?.close()
    this.dev = null
  }
}
