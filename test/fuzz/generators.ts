import {isIP} from 'node:net'
import {formatIPv6} from '../../src/lib/net/ip.js'
import type {encodeStun, TransportAddress} from '../../src/stun/codec/message.js'
import type {DataFrame} from '../../src/tunnel/codec/data-frame.js'
import type {TunnelFrame} from '../../src/tunnel/codec/tunnel.js'
import type {UsherRecord} from '../../src/tunnel/codec/usher.js'
import type {TunnelGrant, TunnelRequest} from '../../src/tunnel/core/handshake.js'
import type {DataMacAlgorithm} from '../../src/tunnel/core/data-channel.js'
import type {Rng} from '../helpers/fuzz.js'

/** Generators of valid values for each codec, shared by the fuzz suites. */
export const ipv6 = (r: Rng): string => formatIPv6(r.chance(0.3) ? Buffer.concat([Buffer.alloc(r.below(16)), r.bytes(16)]).subarray(0, 16) : r.bytes(16), 0)
export const ip = (r: Rng): string => (r.chance(0.7) ? r.ipv4() : ipv6(r))
export const address = (r: Rng): TransportAddress => ({address: ip(r), port: r.port()})
export const u16 = (r: Rng): number => r.pick([0, 1, 0x7fff, 0x8000, 0xffff, r.below(0x10000)])
export const u32 = (r: Rng): number => r.pick([0, 1, 0xffffffff, r.u32()])
/** A name that is not an IP address, so an encoder does not take it for one. */
export function hostname(r: Rng, max: number, alphabet?: string): string {
  for (;;) {
    const h = r.text(max, alphabet)
    if (h.length > 0 && !isIP(h)) return h
  }
}
export const LATIN1 = 'abcdefghijklmnopqrstuvwxyz0123456789-.:éÿ'
export const nonEmpty = (r: Rng, max: number): string => r.text(max) || 'x'

export function tunnelFrame(r: Rng): TunnelFrame {
  switch (r.below(6)) {
    case 0: {
      const f: TunnelFrame = {kind: 'relay', origin: r.text(40), path: Array.from({length: r.int(1, 8)}, () => nonEmpty(r, 40))}
      return r.chance(0.5) ? {...f, hops: r.pick([0, 1, 8, 255, r.below(256)])} : f
    }
    case 1: return {kind: 'request', user: r.text(40), destination: r.text(40), keyExchange: r.text(80), transforms: u16(r), flags: u16(r), clientData: r.text(200)}
    case 2: return {kind: 'response', keyExchange: r.text(80), transforms: u16(r), flags: u16(r), clientData: r.text(200), keyLifetime: u32(r)}
    case 3: return {kind: 'close', status: u16(r), reason: r.text(100)}
    default: return r.chance(0.15) ? {kind: 'switch'} : {kind: r.chance(0.5) ? 'ping' : 'pong', nonce: r.bytes(8)}
  }
}

export function usherRecord(r: Rng): UsherRecord {
  const session = u16(r)
  switch (r.below(8)) {
    case 0: return {kind: 'open', session, protocol: r.pick(['tcp', 'udp'] as const), host: r.chance(0.5) ? ip(r) : hostname(r, 60), port: r.port()}
    case 1: return r.chance(0.5) ? {kind: 'open-reply', session, rc: -1, reason: r.text(80)} : {kind: 'open-reply', session, rc: r.pick([0, 1, 0x7fff, r.below(0x8000)])}
    case 2: return {kind: 'close', session, direction: r.pick(['read', 'write', 'both'] as const)}
    case 3: return {kind: 'send', session, data: r.bytes(r.length(300))}
    case 4: return {kind: 'send-udp', session, addr: r.ipv4(), port: r.port(), remoteAddr: r.ipv4(), remotePort: r.port(), data: r.bytes(r.length(300))}
    case 5: return {kind: 'ack', session, size: u16(r)}
    default: return {kind: r.chance(0.5) ? 'end' : 'rst', session, reason: r.text(80)}
  }
}

export function dataFrame(r: Rng): DataFrame {
  const big = r.chance(0.01)
  return {
    protocol: r.pick([0x0800, 0x86dd, 0x6558, u16(r)]),
    flags: u16(r),
    digest: r.bytes(r.length(255)),
    datagram: big ? Buffer.alloc(0xffff, r.below(256)) : r.bytes(r.length(1500)),
    padding: r.length(255),
  }
}

export const kvText = (r: Rng, max: number): string => r.text(max, 'abcdefghijklmnopqrstuvwxyz0123456789-_.:/ =é日')
export const bind = (r: Rng): string => r.pick(['127.0.0.1', '0.0.0.0', '::1', 'localhost', nonEmpty(r, 20).replace(/[\n[\] ]/g, 'b')]).replace(/^$/, 'b')

export function tunnelRequest(r: Rng): TunnelRequest {
  return {
    user: r.text(30), destination: r.text(30), binding: r.bytes(32).toString('hex'),
    remoteForwards: Array.from({length: r.chance(0.02) ? 64 : r.length(6)}, () => ({bind: bind(r), port: r.port()})),
    earlyData: r.chance(0.5), nativeDataPath: r.chance(0.5), ...(r.chance(0.5) ? {vpn: true, vpnOffload: r.chance(0.5), dataMacs: r.pick([[], ['aes256-gmac'], ['aes256-gmac', 'hmac-sha256-128']] as DataMacAlgorithm[][])} : {vpn: false, vpnOffload: false, dataMacs: []}),
  }
}

export function tunnelGrant(r: Rng): TunnelGrant {
  const g: TunnelGrant = {
    identity: kvText(r, 40).replace(/\n/g, ''), earlyData: r.chance(0.5),
    remoteForwards: Array.from({length: r.length(6)}, () => (r.chance(0.5) ? {bind: bind(r), port: r.port()} : {bind: bind(r), port: r.port(), error: nonEmpty(r, 30).replace(/\n/g, ' ')})),
  }
  if (r.chance(0.3)) g.nativeDataPath = true
  if (r.chance(0.5)) {
    g.vpn = {address: r.ipv4(), prefix: r.int(0, 32), gateway: r.ipv4(), routes: Array.from({length: r.length(8)}, () => `${r.ipv4()}/${r.int(0, 32)}`), dns: Array.from({length: r.length(4)}, () => ip(r))}
    if (r.chance(0.5)) g.vpn.offload = true
    if (r.chance(0.5)) g.vpn.dataMac = 'aes256-gmac'

  }
  return g
}

export type StunIn = Parameters<typeof encodeStun>[0]
export function stunMessage(r: Rng): StunIn {
  const cookie = r.chance(0.9)
  const m: StunIn = {method: r.chance(0.8) ? 1 : r.below(0x1000), klass: r.pick(['request', 'indication', 'success', 'error'] as const), transactionId: r.bytes(12), cookie}
  if (!cookie) m.txidHead = Buffer.from([r.below(256), r.below(256), r.below(256), 0x41]) // never the magic cookie
  const maybe = (): boolean => r.chance(0.4)
  if (maybe()) m.xorMapped = address(r)
  if (maybe()) m.mapped = address(r)
  if (maybe()) m.responseOrigin = address(r)
  if (maybe()) m.otherAddress = address(r)
  if (maybe()) m.sourceAddress = address(r)
  if (maybe()) m.changedAddress = address(r)
  if (maybe()) m.changeRequest = {ip: r.chance(0.5), port: r.chance(0.5)}
  if (maybe()) m.responsePort = r.port()
  if (maybe()) m.padding = r.int(1, 128)
  if (maybe()) m.software = r.text(60)
  if (maybe()) m.error = {code: r.int(300, 699), reason: r.text(60)}
  if (maybe()) m.unknown = Array.from({length: r.int(1, 8)}, () => u16(r))
  return m
}
