import type {Socket} from 'node:net'
import {CodecError} from '../../lib/errors.js'
import {parseClearFrame, type ClearFrame} from '../codec/clear-frame.js'

export {MAX_RELAY_FRAME} from '../codec/clear-frame.js'

export type ReadFrame = ClearFrame

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
        const r = parseClearFrame(buf, accept, what)
        if (r) done(null, r)
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
