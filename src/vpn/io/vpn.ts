import {execFileSync} from 'node:child_process'
import ipaddr from 'ipaddr.js'
import {CodecError} from '../../lib/errors.js'
import {CloseStatus} from '../../tunnel/codec/tunnel.js'
import {DATA_EXPORTER_LABEL, DataReceiver, DataSender, IntegrityError, splitKeys} from '../../tunnel/core/data-channel.js'
import type {VpnConfig} from '../../tunnel/core/handshake.js'
import type {Logger} from '../../lib/log.js'
import type {Link} from '../../tunnel/io/link.js'
import {TunDevice} from '../../lib/io/tun.js'
import {decodeEth, encodeEth, ETH_HEADER, EtherType} from '../../inet/codec/ethernet.js'
import {emulate, GATEWAY_MAC, type AdapterConfig} from '../core/emulators.js'
import {HEADER_LEN} from '../../tunnel/codec/frame.js'
import {formatIPv4, ipv4FromU32} from '../../lib/net/ip.js'
import {ethFields, ipFields} from '../../inet/trace.js'
import type {Tracer} from '../../lib/trace/tracer.js'

const IPV4 = 0x0800

function ip(cmd: string[]): void {
  try {
    execFileSync('ip', cmd, {stdio: ['ignore', 'ignore', 'pipe']})
  } catch (e) {
    throw new Error(`ip ${cmd.join(' ')}: ${String((e as {stderr?: Buffer}).stderr ?? e).trim()}`)
  }
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`
const dst = (p: Buffer): string => formatIPv4(p, 16)
const src = (p: Buffer): string => formatIPv4(p, 12)

/** One tunnel's DATA channel: sends a datagram, and has the link hand received ones to onDatagram. */
type Channel = {link: Link; send(datagram: Buffer): void}

/** Keys for this tunnel's DATA frames, from the TLS exporter (docs/protocol.md). */
function channel(link: Link, tls: {exportKeyingMaterial(n: number, l: string, c: Buffer): Buffer}, role: 'portal' | 'gate', onDatagram: (d: Buffer) => void): Channel {
  const keys = splitKeys(tls.exportKeyingMaterial(64, DATA_EXPORTER_LABEL, Buffer.alloc(0)), role)
  const rx = new DataReceiver(keys.receive)
  const tx = new DataSender(keys.send)
  link.onDataFrame = (body) => {
    try {
      const {protocol, datagram} = rx.open(body)
      if (link.tracing) link.trace('in', {type: 'DATA', len: body.length, proto: hex4(protocol), ...ipFields(datagram)})
      if (protocol === IPV4 && datagram.length >= 20 && datagram[0] >> 4 === 4) onDatagram(datagram)
    } catch (e) {
      if (e instanceof IntegrityError) return link.close(CloseStatus.INTEGRITY_FAILURE, e.message)
      if (e instanceof CodecError) return link.close(CloseStatus.PROTOCOL_ERROR, e.message)
      throw e
    }
  }
  return {
    link,
    send(datagram) {
      const frame = tx.frame(IPV4, datagram)
      if (link.tracing) link.trace('out', {type: 'DATA', len: frame.length - HEADER_LEN, proto: hex4(IPV4), ...ipFields(datagram)})
      link.sendRaw(frame)
    },
  }
}

/** The gate's side of VPN mode: one TUN device, addresses leased by identity from the pool. */
export class GateVpn {
  private leases = new Map<string, string>()
  private used = new Set<string>()
  private byIp = new Map<string, Channel>()
  readonly gateway: string
  readonly prefix: number
  private first: number
  private last: number

  private constructor(private readonly dev: TunDevice, pool: string, private readonly routes: string[], private readonly dns: string[], private readonly log: Logger) {
    const [net, prefix] = ipaddr.IPv4.parseCIDR(pool)
    const base = net.toByteArray().reduce((n, b) => n * 256 + b, 0) & (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0)
    this.prefix = prefix
    this.first = base + 2
    this.last = base + 2 ** (32 - prefix) - 2
    this.gateway = ipv4FromU32(base + 1)
    dev.on('packets', (ps: Buffer[]) => {
      for (const p of ps) {
        if (p.length < 20 || p[0] >> 4 !== 4) continue
        this.byIp.get(dst(p))?.send(p)
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

  static open(pool: string, routes: string[], dns: string[], devName: string, log: Logger): GateVpn {
    const dev = TunDevice.open(devName, 'tun')
    const v = new GateVpn(dev, pool, routes, dns, log)
    ip(['addr', 'add', `${v.gateway}/${v.prefix}`, 'dev', dev.name])
    ip(['link', 'set', dev.name, 'up'])
    log.log('info', `VPN: device ${dev.name} with ${v.gateway}/${v.prefix}; routes for clients: ${routes.join(', ') || 'none'}`)
    return v
  }

  /** The same identity gets the same address after a reconnect. */
  lease(identity: string): VpnConfig | null {
    let a = this.leases.get(identity)
    if (!a) {
      for (let n = this.first; n <= this.last; n++) {
        const cand = ipv4FromU32(n)
        if (!this.used.has(cand)) { a = cand; break }
      }
      if (!a) return null
      this.leases.set(identity, a)
      this.used.add(a)
    }
    return {address: a, prefix: this.prefix, gateway: this.gateway, routes: this.routes, dns: this.dns}
  }

  attach(address: string, link: Link, tls: Parameters<typeof channel>[1]): void {
    this.byIp.set(address, channel(link, tls, 'gate', (d) => {
      // A client may only send from its own address.
      if (src(d) === address) this.dev.write(d)
    }))
  }

  detach(address: string, link: Link): void {
    if (this.byIp.get(address)?.link === link) this.byIp.delete(address)
  }

  close(): void {
    this.dev.close()
  }
}

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

  constructor(private readonly devName: string, private readonly installRoutes: boolean, private readonly log: Logger, private readonly mode: 'tun' | 'tap' = 'tun', private readonly tracer?: Tracer) {}

  attach(cfg: VpnConfig, link: Link, tls: Parameters<typeof channel>[1]): void {
    if (!this.dev) {
      this.dev = TunDevice.open(this.devName, this.mode)
      this.dev.on('packets', (ps: Buffer[]) => (this.mode === 'tap' ? this.fromTap(ps) : this.send(ps)))
      this.dev.on('error', (e: Error) => this.deviceFailed(e))
    }
    const dev = this.dev
    const key = `${cfg.address}/${cfg.prefix} ${cfg.gateway} ${cfg.routes.join(',')}`
    if (this.configured !== key) {
      // Up first: a route via the gateway needs the device's connected route to exist.
      if (this.mode === 'tun') {
        ip(['addr', 'flush', 'dev', dev.name])
        ip(['addr', 'add', `${cfg.address}/${cfg.prefix}`, 'dev', dev.name])
      }
      ip(['link', 'set', dev.name, 'up'])
      if (this.mode === 'tun' && this.installRoutes) for (const r of cfg.routes) ip(['route', 'replace', r, 'via', cfg.gateway, 'dev', dev.name])
      this.adapter = {address: cfg.address, prefix: cfg.prefix, gateway: cfg.gateway, routes: this.installRoutes ? cfg.routes : [], dns: cfg.dns, leaseSec: 3600}
      this.configured = key
      this.log.log('info', this.mode === 'tun'
        ? `VPN: ${dev.name} ${cfg.address}/${cfg.prefix}, gateway ${cfg.gateway}${this.installRoutes ? `, routes ${cfg.routes.join(', ') || 'none'}` : ''}`
        : `VPN: TAP ${dev.name}; its DHCP client will get ${cfg.address}/${cfg.prefix}, router ${cfg.gateway}`)
    }
    this.current = channel(link, tls, 'portal', (d) => this.toDevice(d))
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

  private send(packets: Buffer[]): void {
    const c = this.current
    // IPv4 only: the kernel also sends IPv6 (router solicitations, MLD) on the device, which the
    // gate would only drop.
    if (c && !c.link.isClosed) for (const p of packets) if (p.length >= 20 && p[0] >> 4 === 4) c.send(p)
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
      if (f.length > ETH_HEADER && f.readUInt16BE(12) === EtherType.IPV4) {
        this.hostMac = decodeEth(f).src
        out.push(f.subarray(ETH_HEADER))
      }
    }
    if (out.length) this.send(out)
  }

  private toDevice(datagram: Buffer): void {
    if (this.mode === 'tun') return void this.dev?.write(datagram)
    if (this.hostMac) this.dev?.write(encodeEth({dst: this.hostMac, src: GATEWAY_MAC, type: EtherType.IPV4, payload: datagram}))
  }

  close(): void {
    this.dev?.close()
    this.dev = null
  }
}
