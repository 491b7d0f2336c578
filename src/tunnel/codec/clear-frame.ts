import {CodecError} from '../../lib/errors.js'
import {decodeHeader, HEADER_LEN} from './frame.js'
import {decodeTunnel, type TunnelFrame} from './tunnel.js'

/** The largest clear frame body accepted: a RELAY path of at most MAX_PATH names fits easily. */
export const MAX_RELAY_FRAME = 4096

/** A TLS record's first byte when it carries a handshake: a ClientHello from a peer that skipped RELAY. */
const TLS_HANDSHAKE = 0x16

export interface ClearFrame {
  frame: TunnelFrame
  /** The frame's bytes exactly as received (relays forward them unchanged). */
  wire: Buffer
  /** Bytes that followed the frame. */
  rest: Buffer
}

/**
 * The clear tunnel frame (RELAY, or a CLOSE answering one) at the start of the bytes received before
 * TLS starts: null while more bytes are needed, else the frame and what follows it. Throws
 * CodecError for a TLS record, a body over MAX_RELAY_FRAME or a type not in `accept` as soon as
 * the header shows it, so a peer cannot make the reader buffer more than the limit.
 */
export function parseClearFrame(buf: Buffer, accept: readonly number[], what: string): ClearFrame | null {
  if (buf[0] === TLS_HANDSHAKE) throw new CodecError('NO_RELAY', 'peer started TLS without a RELAY frame (not a tunkit portal?)')
  if (buf.length < HEADER_LEN) return null
  const {length, type, id} = decodeHeader(buf)
  if (length > MAX_RELAY_FRAME) throw new CodecError('FRAME_TOO_LARGE', `${what} of ${length} bytes is over the ${MAX_RELAY_FRAME}-byte limit`)
  if (!accept.includes(type)) throw new CodecError('NO_RELAY', `expected a ${what}, got frame type ${type}`)
  const end = HEADER_LEN + length
  if (buf.length < end) return null
  const frame = decodeTunnel({type, id, body: buf.subarray(HEADER_LEN, end)})
  return {frame, wire: buf.subarray(0, end), rest: buf.subarray(end)}
}
