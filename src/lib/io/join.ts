import type {Socket} from 'node:net'
import {tryNative, type Native} from './native.js'

const fdOf = (s: Socket): number => (s as unknown as {_handle?: {fd?: number}})._handle?.fd ?? -1

/** How a join ended: bytes moved each way, and the error if one side failed. */
export interface JoinEnd {
  aToB: number
  bToA: number
  error?: string
}

/**
 * Joins two TCP sockets both ways until both directions have ended (half-close is passed on),
 * for a relay that forwards bytes without reading them. With the native addon the kernel moves
 * the bytes (splice(2), native/splice.c) and JavaScript never sees them; otherwise stream pipes.
 * Both sockets must be paused. `first` is written to `b` before anything else. `done` runs once;
 * the returned function tears the join down early. (`native` is a parameter for the tests.)
 */
export function joinSockets(a: Socket, b: Socket, first: Buffer, done: (how: JoinEnd) => void, native: Native | null = tryNative()): () => void {
  let ended = false
  const end = (how: JoinEnd): void => {
    if (!ended) {
      ended = true
      done(how)
    }
  }
  // With stream pipes: what each side's socket read, and so passed on.
  const streamed = (error?: string): JoinEnd => ({aToB: a.bytesRead, bToA: b.bytesRead, ...(error ? {error} : {})})
  let abort = (): void => {
    a.destroy()
    b.destroy()
  }
  const pipes = (): void => {
    a.pipe(b)
    b.pipe(a)
    a.once('close', () => { b.destroy(); end(streamed()) })
    b.once('close', () => { a.destroy(); end(streamed()) })
    a.resume()
  }
  const failed = (err: Error | null | undefined): boolean => {
    if (!err) return false
    abort()
    end(streamed(err.message))
    return true
  }
  b.pause()
  b.write(first, (err) => {
    if (failed(err)) return
    // What b already had buffered (the next hop may have answered at once) goes to a first.
    const early: Buffer[] = []
    for (let c: Buffer | null; (c = b.read() as Buffer | null) !== null;) early.push(c)
    a.write(early.length ? Buffer.concat(early) : Buffer.alloc(0), (err2) => {
      if (failed(err2)) return
      const n = native
      const fa = fdOf(a)
      const fb = fdOf(b)
      if (!n || ended || fa < 0 || fb < 0 || a.readableLength || b.readableLength || a.writableLength || b.writableLength) return pipes()
      let h: object
      try {
        h = n.splice(fa, fb, (error, aToB, bToA) => end({aToB, bToA, ...(error ? {error} : {})}))
      } catch {
        return pipes() // out of descriptors for the pipes, say: the slower way still works
      }
      abort = () => n.spliceAbort(h)
      // The kernel holds the connections through the addon's duplicates: ours can go.
      a.destroy()
      b.destroy()
    })
  })
  return () => {
    if (!ended) abort()
  }
}
