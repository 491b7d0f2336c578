import type {Socket} from 'node:net'
import {CodecError} from '../../lib/errors.js'
import {HEADER_LEN} from '../codec/frame.js'
import {decodeTunnel, TunnelType, type TunnelFrame} from '../codec/tunnel.js'

export const MAX_RELAY_FRAME = 4096

export interface ReadFrame {
  frame: TunnelFrame
  /** The frame's bytes exactly as received (relays forward them unchanged). */
  wire: Buffer
  /** Bytes that followed the frame in the same reads. */
  rest: Buffer
}

/**
 * Reads one clear tunnel frame (RELAY, or a CLOSE answering one) from a socket before TLS starts.
 * Rejects with a CodecError for anything else; leaves the socket paused with no 'data' listener.
 */
export function readClearFrame(sock: Socket, accept: number[], what: string): Promise<ReadFrame> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0)
    const done = (err: Error | null, r?: ReadFrame): void => {
      sock.removeListener('data', onData)
      sock.removeListener('end', onEnd)
      sock.removeListener('close', onEnd)
      sock.pause()
      if (err) reject(err)
      else resolve(r!)
    }
    const onEnd = (): void => done(new CodecError('CLOSED', `connection closed before the ${what}`))
    const onData = (chunk: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
      try {
        if (buf[0] === 0x16) throw new CodecError('NO_RELAY', 'peer started TLS without a RELAY frame (not a tunkit portal?)')
        if (buf.length < HEADER_LEN) return
        const len = buf.readUInt32BE(0)
        if (len > MAX_RELAY_FRAME) throw new CodecError('FRAME_TOO_LARGE', `${what} of ${len} bytes is over the ${MAX_RELAY_FRAME}-byte limit`)
        const type = buf.readInt16BE(4)
        if (!accept.includes(type)) throw new CodecError('NO_RELAY', `expected a ${what}, got frame type ${type}`)
        if (buf.length < HEADER_LEN + len) return
        const frame = decodeTunnel({type, id: buf.readUInt16BE(6), body: buf.subarray(HEADER_LEN, HEADER_LEN + len)})
        done(null, {frame, wire: buf.subarray(0, HEADER_LEN + len), rest: buf.subarray(HEADER_LEN + len)})
      } catch (e) {
        done(e as Error)
      }
    }
    sock.on('data', onData)
    sock.once('end', onEnd)
    sock.once('close', onEnd)
    sock.resume()
  })
}


/** A path entry ("host:port" or a name) names a node when it equals its name or its host does. */
export function nodeMatches(entry: string, name: string): boolean {
  if (entry === name) return true
  const i = entry.lastIndexOf(':')
  const host = i > 0 && /^\d+$/.test(entry.slice(i + 1)) ? entry.slice(0, i).replace(/^\[|\]$/g, '') : entry
  return host === name
}
