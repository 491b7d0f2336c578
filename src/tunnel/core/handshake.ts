import {TunkitError} from '../../lib/errors.js'
import {decodeKv, encodeKv, type TunnelFrame} from '../codec/tunnel.js'
import {DATA_MACS, type DataMacAlgorithm} from './data-channel.js'

/**
 * What travels in REQUEST and RESPONSE (seed 000 Figs. 7-8) for the stream services. TLS 1.3
 * has already exchanged keys; the "key exchange" string binds the REQUEST to this TLS session
 * with an exporter value (RFC 8446 section 7.5), so a REQUEST cannot be replayed on another one.
 */
export const TRANSFORM_TLS13 = 1
/** REQUEST/RESPONSE flags bit: VPN mode (DATA frames through a pseudo network adapter). */
export const FLAG_VPN = 1
export const EXPORTER_LABEL = 'EXPORTER-tunkit-request'
export const DEFAULT_KEY_LIFETIME = 0 // seconds; 0 = no forced rekey for stream tunnels

export interface RemoteForward {
  bind: string
  port: number
}

export interface TunnelRequest {
  user: string
  destination: string
  binding: string
  remoteForwards: RemoteForward[]
  /** The portal can send UsherSend before UsherOpenReply (core/mux.ts, EarlyData). */
  earlyData: boolean
  vpn?: boolean
  /** VPN mode: the portal's device takes TCP super-packets and partial checksums (DATA flags). */
  vpnOffload?: boolean
  /** VPN mode: DATA digests the portal can use besides HMAC-SHA-256-128, preferred first. */
  dataMacs?: DataMacAlgorithm[]
  /** The portal offers the native data path (`data-path=native`; docs/protocol.md). */
  nativeDataPath?: boolean
}

export function requestFrame(r: TunnelRequest): Extract<TunnelFrame, {kind: 'request'}> {
  return {
    kind: 'request',
    user: r.user,
    destination: r.destination,
    keyExchange: `tls13;exporter=${r.binding}`,
    transforms: TRANSFORM_TLS13,
    flags: r.vpn ? FLAG_VPN : 0,
    clientData: encodeKv([
      ['service', 'stream'],
      ...(r.earlyData ? [['early-data', '1'] as [string, string]] : []),
      ...(r.vpn && r.vpnOffload ? [['vpn-offload', '1'] as [string, string]] : []),
      ...(r.vpn ? (r.dataMacs ?? []).map((m) => ['data-mac', m] as [string, string]) : []),
      ...(r.nativeDataPath ? [['data-path', 'native'] as [string, string]] : []),
      ...r.remoteForwards.map((f) => ['remote-forward', `${f.bind}:${f.port}`] as [string, string]),
    ]),
  }
}

/** A REQUEST or RESPONSE the gate or portal cannot accept: the tunnel is not authorised. */
export class HandshakeError extends TunkitError {
  override name = 'HandshakeError'
  constructor(message: string) {
    super('TK_NOT_AUTHORIZED', message)
  }
}

function parseBindPort(s: string): RemoteForward {
  const i = s.lastIndexOf(':')
  const port = Number(s.slice(i + 1))
  let bind = s.slice(0, i)
  if (bind.startsWith('[') && bind.endsWith(']')) bind = bind.slice(1, -1)
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new HandshakeError(`bad remote forward "${s}"`)
  return {bind, port}
}

export function parseTunnelRequest(f: Extract<TunnelFrame, {kind: 'request'}>): TunnelRequest {
  const m = f.keyExchange.match(/^tls13;exporter=([0-9a-f]{64})$/)
  if (!m) throw new HandshakeError('REQUEST key exchange data is not a TLS 1.3 exporter binding')
  const remoteForwards: RemoteForward[] = []
  let earlyData = false
  let vpnOffload = false
  let nativeDataPath = false
  const dataMacs: DataMacAlgorithm[] = []
  for (const [k, v] of decodeKv(f.clientData)) {
    if (k === 'remote-forward') remoteForwards.push(parseBindPort(v))
    else if (k === 'early-data') earlyData = v === '1'
    else if (k === 'vpn-offload') vpnOffload = v === '1'
    else if (k === 'data-path') nativeDataPath ||= v === 'native'
    // Unknown digests are skipped: a newer portal may offer more.
    else if (k === 'data-mac' && DATA_MACS.includes(v as DataMacAlgorithm) && !dataMacs.includes(v as DataMacAlgorithm)) dataMacs.push(v as DataMacAlgorithm)
  }
  if (remoteForwards.length > 64) throw new HandshakeError('too many remote forwards requested')
  return {user: f.user, destination: f.destination, binding: m[1], remoteForwards, earlyData, vpn: (f.flags & FLAG_VPN) !== 0, vpnOffload, dataMacs, nativeDataPath}
}

/** Client data of Fig. 23: what the portal's pseudo adapter needs. */
export interface VpnConfig {
  address: string
  prefix: number
  gateway: string
  routes: string[]
  dns: string[]
  /** The gate's device takes TCP super-packets and partial checksums (DATA flags). */
  offload?: boolean
  /** The DATA digest both ends use (absent: HMAC-SHA-256-128). */
  dataMac?: DataMacAlgorithm
}

export interface TunnelGrant {
  identity: string
  /** `asked`: the wildcard the portal asked for, when the gate bound loopback instead. */
  remoteForwards: {bind: string; port: number; error?: string; asked?: string}[]
  earlyData: boolean
  vpn?: VpnConfig
  /** Both sides switch to the native data path after the SWITCH frames (docs/protocol.md). */
  nativeDataPath?: boolean
}

export function responseFrame(g: TunnelGrant, keyLifetime = DEFAULT_KEY_LIFETIME): Extract<TunnelFrame, {kind: 'response'}> {
  const pairs: [string, string][] = [['identity', g.identity]]
  if (g.earlyData) pairs.push(['early-data', '1'])
  if (g.nativeDataPath) pairs.push(['data-path', 'native'])
  if (g.vpn) {
    pairs.push(['vpn-address', `${g.vpn.address}/${g.vpn.prefix}`], ['vpn-gateway', g.vpn.gateway])
    for (const r of g.vpn.routes) pairs.push(['route', r])
    for (const d of g.vpn.dns) pairs.push(['dns', d])
    if (g.vpn.offload) pairs.push(['vpn-offload', '1'])
    if (g.vpn.dataMac && g.vpn.dataMac !== 'hmac-sha256-128') pairs.push(['data-mac', g.vpn.dataMac])
  }
  for (const f of g.remoteForwards) {
    pairs.push(f.error ? ['remote-forward-error', `${f.bind}:${f.port} ${f.error}`] : ['remote-forward', `${f.bind}:${f.port}${f.asked ? ` asked=${f.asked}` : ''}`])
  }
  return {kind: 'response', keyExchange: 'tls13', transforms: TRANSFORM_TLS13, flags: g.vpn ? FLAG_VPN : 0, clientData: encodeKv(pairs), keyLifetime}
}

export function parseResponse(f: Extract<TunnelFrame, {kind: 'response'}>): TunnelGrant {
  const g: TunnelGrant = {identity: '', remoteForwards: [], earlyData: false}
  for (const [k, v] of decodeKv(f.clientData)) {
    if (k === 'identity') g.identity = v
    else if (k === 'early-data') g.earlyData = v === '1'
    else if (k === 'data-path') {
      if (v !== 'native') throw new HandshakeError(`the gate chose data path "${v}", which this portal does not have`)
      g.nativeDataPath = true
    } else if (k === 'vpn-address') {
      const [address, prefix] = v.split('/')
      g.vpn = {address, prefix: Number(prefix), gateway: g.vpn?.gateway ?? '', routes: g.vpn?.routes ?? [], dns: g.vpn?.dns ?? []}
    } else if (k === 'vpn-gateway' && g.vpn) g.vpn.gateway = v
    else if (k === 'route' && g.vpn) g.vpn.routes.push(v)
    else if (k === 'dns' && g.vpn) g.vpn.dns.push(v)
    else if (k === 'vpn-offload' && g.vpn) g.vpn.offload = v === '1'
    else if (k === 'data-mac' && g.vpn) {
      if (!DATA_MACS.includes(v as DataMacAlgorithm)) throw new HandshakeError(`the gate chose DATA digest "${v}", which this portal does not have`)
      g.vpn.dataMac = v as DataMacAlgorithm
    }
    else if (k === 'remote-forward') {
      const [where, asked] = v.split(' asked=')
      g.remoteForwards.push({...parseBindPort(where), ...(asked ? {asked} : {})})
    }
    else if (k === 'remote-forward-error') {
      const sp = v.indexOf(' ')
      g.remoteForwards.push({...parseBindPort(sp < 0 ? v : v.slice(0, sp)), error: sp < 0 ? 'failed' : v.slice(sp + 1)})
    }
  }
  return g
}
