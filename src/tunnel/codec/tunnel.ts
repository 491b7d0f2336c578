import {CodecError, cString, need, readCString} from '../../lib/errors.js'
import {encodeFrame, HEADER_LEN, type RawFrame} from './frame.js'

/**
 * Tunnel frames of seed 000 (Figs. 6-10) plus keepalives. They share the Usher 8-byte header;
 * the 16-bit field after the type is the protocol version. Type numbers start at 16 so they
 * never collide with Usher records (-1..7). Layouts: docs/protocol.md.
 */
export const TunnelType = {
  RELAY: 16,
  REQUEST: 17,
  RESPONSE: 18,
  DATA: 19,
  CLOSE: 20,
  PING: 21,
  PONG: 22,
  /** Native data path: after this frame, the sender's records are the addon's (docs/protocol.md). */
  SWITCH: 23,
} as const

export const TUNNEL_VERSION = 1
export const MAX_PATH = 8
/** The RELAY frame's HOPS trailer is one byte. */
export const MAX_HOPS_FIELD = 0xff

/** CLOSE status codes (Fig. 10). Stable: documented in docs/protocol.md. */
export const CloseStatus = {
  NORMAL: 0,
  PROTOCOL_ERROR: 1,
  NOT_AUTHORIZED: 2,
  INTEGRITY_FAILURE: 3,
  KEY_EXPIRED: 4,
  SHUTDOWN: 5,
  TIMEOUT: 6,
  RESOURCE_LIMIT: 7,
  VERSION_MISMATCH: 8,
  HOP_NOT_ALLOWED: 16,
  HOP_UNRESOLVABLE: 17,
  HOP_UNREACHABLE: 18,
  NO_HEALTHY_GATE: 19,
  BAD_RELAY_FRAME: 20,
  HOP_LIMIT: 21,
  HOP_LOOP: 22,
} as const

export const CLOSE_STATUS_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(CloseStatus).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, '-')]),
)

export type TunnelFrame =
  /**
   * hops: how many relays have forwarded the frame (the HOPS trailer, docs/protocol.md). Absent on
   * the wire from senders that predate it, which a relay counts as 0; encoded only when set.
   */
  | {kind: 'relay'; origin: string; path: string[]; hops?: number}
  | {kind: 'request'; user: string; destination: string; keyExchange: string; transforms: number; flags: number; clientData: string}
  | {kind: 'response'; keyExchange: string; transforms: number; flags: number; clientData: string; keyLifetime: number}
  | {kind: 'close'; status: number; reason: string}
  | {kind: 'ping'; nonce: Buffer}
  | {kind: 'pong'; nonce: Buffer}
  | {kind: 'switch'}

export function isTunnelType(type: number): boolean {
  return type >= TunnelType.RELAY && type <= TunnelType.SWITCH
}

/** A string buffer: NUL-terminated strings, addressed by their offset from the buffer start. */
function stringBuffer(strings: string[]): {buf: Buffer; offsets: number[]} {
  const parts = strings.map(cString)
  const offsets: number[] = []
  let o = 0
  for (const p of parts) { offsets.push(o); o += p.length }
  if (o > 0xffff) throw new CodecError('TOO_LARGE', 'string buffer over 64 KiB')
  return {buf: Buffer.concat(parts), offsets}
}

function stringAt(strings: Buffer, offset: number, what: string): string {
  if (offset >= strings.length) throw new CodecError('BAD_OFFSET', `${what}: offset ${offset} outside the string buffer`)
  return readCString(strings, offset, what)[0]
}

function fixed(fields: number[], extra = 0): Buffer {
  const b = Buffer.allocUnsafe(fields.length * 2 + extra)
  fields.forEach((v, i) => b.writeUInt16BE(v, i * 2))
  return b
}

export function encodeTunnel(f: TunnelFrame): Buffer {
  switch (f.kind) {
    case 'relay': {
      if (f.path.length === 0 || f.path.length > MAX_PATH) throw new CodecError('BAD_PATH', `a path has 1 to ${MAX_PATH} nodes`)
      const {buf, offsets} = stringBuffer([f.origin, ...f.path])
      const head = fixed([offsets[0], f.path.length, ...offsets.slice(1)])
      if (f.hops === undefined) return encodeFrame(TunnelType.RELAY, TUNNEL_VERSION, Buffer.concat([head, buf]))
      if (!Number.isInteger(f.hops) || f.hops < 0 || f.hops > MAX_HOPS_FIELD) throw new CodecError('BAD_HOPS', `RELAY hop count ${f.hops} is not 0 to ${MAX_HOPS_FIELD}`)
      return encodeFrame(TunnelType.RELAY, TUNNEL_VERSION, Buffer.concat([head, buf, Buffer.from([f.hops])]))
    }
    case 'request': {
      const {buf, offsets} = stringBuffer([f.user, f.destination, f.keyExchange, f.clientData])
      const head = fixed([offsets[0], offsets[1], offsets[2], f.transforms, f.flags, offsets[3]])
      return encodeFrame(TunnelType.REQUEST, TUNNEL_VERSION, Buffer.concat([head, buf]))
    }
    case 'response': {
      const {buf, offsets} = stringBuffer([f.keyExchange, f.clientData])
      const head = fixed([offsets[0], f.transforms, f.flags, offsets[1]], 4)
      head.writeUInt32BE(f.keyLifetime, 8)
      return encodeFrame(TunnelType.RESPONSE, TUNNEL_VERSION, Buffer.concat([head, buf]))
    }
    case 'close':
      return encodeFrame(TunnelType.CLOSE, TUNNEL_VERSION, Buffer.concat([fixed([f.status]), cString(f.reason)]))
    case 'ping':
    case 'pong':
      if (f.nonce.length !== 8) throw new CodecError('BAD_NONCE', 'keepalive nonce is 8 bytes')
      return encodeFrame(f.kind === 'ping' ? TunnelType.PING : TunnelType.PONG, TUNNEL_VERSION, f.nonce)
    case 'switch':
      return encodeFrame(TunnelType.SWITCH, TUNNEL_VERSION, Buffer.alloc(0))
  }
}

export function decodeTunnel(f: RawFrame): TunnelFrame {
  if (f.id !== TUNNEL_VERSION) throw new CodecError('VERSION', `tunnel protocol version ${f.id} not supported (want ${TUNNEL_VERSION})`)
  const b = f.body
  switch (f.type) {
    case TunnelType.RELAY: {
      need(b, 0, 4, 'RELAY')
      const originOff = b.readUInt16BE(0)
      const count = b.readUInt16BE(2)
      if (count === 0 || count > MAX_PATH) throw new CodecError('BAD_PATH', `RELAY: path of ${count} nodes (1 to ${MAX_PATH} allowed)`)
      need(b, 4, count * 2, 'RELAY path indexes')
      const strings = b.subarray(4 + count * 2)
      const offsets = [originOff]
      for (let i = 0; i < count; i++) offsets.push(b.readUInt16BE(4 + i * 2))
      const [origin, ...path] = offsets.map((o, i) => stringAt(strings, o, i ? 'RELAY node name' : 'RELAY origin'))
      if (path.some((p) => p.length === 0)) throw new CodecError('BAD_PATH', 'RELAY: empty node name')
      // The string buffer ends with the NUL of the string that ends last; older decoders never read
      // past it, so the HOPS byte behind it is invisible to them (docs/protocol.md).
      const end = Math.max(...offsets.map((o) => strings.indexOf(0, o) + 1))
      const trailer = strings.length - end
      if (trailer > 1) throw new CodecError('BAD_PATH', `RELAY: ${trailer} bytes after the string buffer (at most the HOPS byte)`)
      return trailer ? {kind: 'relay', origin, path, hops: strings[end]} : {kind: 'relay', origin, path}
    }
    case TunnelType.REQUEST: {
      need(b, 0, 12, 'REQUEST')
      const s = b.subarray(12)
      return {
        kind: 'request',
        user: stringAt(s, b.readUInt16BE(0), 'REQUEST user'),
        destination: stringAt(s, b.readUInt16BE(2), 'REQUEST destination'),
        keyExchange: stringAt(s, b.readUInt16BE(4), 'REQUEST key exchange'),
        transforms: b.readUInt16BE(6),
        flags: b.readUInt16BE(8),
        clientData: stringAt(s, b.readUInt16BE(10), 'REQUEST client data'),
      }
    }
    case TunnelType.RESPONSE: {
      need(b, 0, 12, 'RESPONSE')
      const s = b.subarray(12)
      return {
        kind: 'response',
        keyExchange: stringAt(s, b.readUInt16BE(0), 'RESPONSE key exchange'),
        transforms: b.readUInt16BE(2),
        flags: b.readUInt16BE(4),
        clientData: stringAt(s, b.readUInt16BE(6), 'RESPONSE client data'),
        keyLifetime: b.readUInt32BE(8),
      }
    }
    case TunnelType.CLOSE: {
      need(b, 0, 2, 'CLOSE')
      const [reason] = b.length > 2 ? readCString(b, 2, 'CLOSE reason') : ['']
      return {kind: 'close', status: b.readUInt16BE(0), reason}
    }
    case TunnelType.PING:
    case TunnelType.PONG:
      if (b.length !== 8) throw new CodecError('BAD_NONCE', 'keepalive frame body must be 8 bytes')
      return {kind: f.type === TunnelType.PING ? 'ping' : 'pong', nonce: b}
    case TunnelType.SWITCH:
      if (b.length !== 0) throw new CodecError('BAD_SWITCH', 'SWITCH frame body must be empty')
      return {kind: 'switch'}
    default:
      throw new CodecError('BAD_TYPE', `unknown tunnel frame type ${f.type}`)
  }
}

/**
 * A RELAY frame's bytes with its HOPS byte set, appended when the sender did not write one: what a
 * relay forwards. Everything else stays byte for byte as received. `wire` is exactly the frame.
 */
export function withRelayHops(wire: Buffer, frame: {hops?: number}, hops: number): Buffer {
  if (!Number.isInteger(hops) || hops < 0 || hops > MAX_HOPS_FIELD) throw new CodecError('BAD_HOPS', `RELAY hop count ${hops} is not 0 to ${MAX_HOPS_FIELD}`)
  const out = frame.hops === undefined ? Buffer.concat([wire, Buffer.from([hops])]) : Buffer.from(wire)
  out[out.length - 1] = hops
  out.writeUInt32BE(out.length - HEADER_LEN, 0)
  return out
}

/** Client data and services travel as "key=value" lines (Figs. 7, 8, 23). */
export function encodeKv(pairs: [string, string][]): string {
  for (const [k, v] of pairs) {
    if (/[=\n\0]/.test(k) || /[\n\0]/.test(v)) throw new CodecError('BAD_STRING', `bad client data entry ${k}`)
  }
  return pairs.map(([k, v]) => `${k}=${v}`).join('\n')
}

export function decodeKv(s: string): [string, string][] {
  if (s === '') return []
  return s.split('\n').map((line) => {
    const i = line.indexOf('=')
    if (i <= 0) throw new CodecError('BAD_STRING', `client data line without key: "${line.slice(0, 40)}"`)
    return [line.slice(0, i), line.slice(i + 1)]
  })
}
