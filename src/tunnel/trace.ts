import type {UsherRecord} from './codec/usher.js'
import {CLOSE_STATUS_NAMES, type TunnelFrame} from './codec/tunnel.js'
import {registerTrace, type Rendered} from '../lib/trace/registry.js'
import {hostPort} from '../lib/io/connect.js'

export type {TraceFields} from '../lib/trace/registry.js'

const USHER_NAMES: Record<UsherRecord['kind'], string> = {
  'open': 'UsherOpen', 'open-reply': 'UsherOpenReply', 'close': 'UsherClose', 'send': 'UsherSend',
  'send-udp': 'UsherSendUdp', 'ack': 'UsherAck', 'end': 'UsherEnd', 'rst': 'UsherRST',
}

export function usherFields(r: UsherRecord): Rendered {
  const f: Rendered = {type: USHER_NAMES[r.kind], session: r.session}
  switch (r.kind) {
    case 'open': Object.assign(f, {proto: r.protocol, addr: r.host, port: r.port}); break
    case 'open-reply': f.rc = r.rc; if (r.reason) f.reason = r.reason; break
    case 'close': f.direction = r.direction; break
    case 'send-udp': Object.assign(f, {data: r.data.length, from: hostPort(r.addr, r.port), to: hostPort(r.remoteAddr, r.remotePort)}); break
    case 'ack': f.acked = r.size; break
    case 'end': case 'rst': f.reason = r.reason; break
  }
  return f
}

export function tunnelFields(t: TunnelFrame): Rendered {
  switch (t.kind) {
    case 'relay': return {type: 'RELAY', origin: t.origin, path: t.path, ...(t.hops === undefined ? {} : {hops: t.hops})}
    case 'request': return {type: 'REQUEST', user: t.user, destination: t.destination, transforms: t.transforms, flags: t.flags, clientData: t.clientData.split('\n').filter(Boolean)}
    case 'response': return {type: 'RESPONSE', transforms: t.transforms, flags: t.flags, keyLifetime: t.keyLifetime, clientData: t.clientData.split('\n').filter(Boolean)}
    case 'close': return {type: 'CLOSE', status: t.status, statusName: CLOSE_STATUS_NAMES[t.status] ?? 'unknown', reason: t.reason}
    case 'ping': case 'pong': return {type: t.kind.toUpperCase(), nonce: t.nonce.toString('hex')}
    case 'switch': return {type: 'SWITCH'}
  }
}

/** Seed-000 tunnel frames (RELAY, REQUEST, RESPONSE, CLOSE, PING, PONG). */
export const TUNNEL_TRACE = registerTrace('tunnel', tunnelFields)
/** Seed-001 Usher records. */
export const USHER_TRACE = registerTrace('usher', usherFields)
