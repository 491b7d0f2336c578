import {readdirSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {setFlagsFromString} from 'node:v8'
import {runInNewContext} from 'node:vm'

/** The native addon (native/*.c, built by node-gyp at install): TUN/TAP I/O, the DATA digest, malloc
 * tuning and kernel splicing for relays. A call given the wrong arguments throws (a TypeError, code
 * ERR_INVALID_ARG_TYPE), one that fails throws an Error with a code (ETUN, EPERM, ESPLICE, EMAC,
 * ENAPI naming the failed N-API call): none returns undefined instead. */
/** Room the TUN reader leaves in front of every packet (native/tun.c HEADROOM). */
export const READ_HEADROOM = 32

export interface Native {
  open(name: string, tap: boolean, offload: boolean): [number, string, boolean]
  write(fd: number, packet: Buffer, vnetHeader?: Buffer): number
  /** `err`: a read that failed for good (code EBADFD once the interface is deleted), reported
   * once, after the packets read before it; reading has then stopped. */
  /** Each packet Buffer starts with READ_HEADROOM bytes that are not part of it. */
  startReading(fd: number, cb: (err: {errno: number; code: string; message: string} | null, packets: Buffer[]) => void): object
  stopReading(handle: object): void
  pauseReading(handle: object, paused: boolean): void
  close(fd: number): void
  macKey(key: Buffer, gmac?: boolean): object
  macSign(handle: object, data: Buffer, counter: number, out: Buffer, offset: number, flags?: number): void
  macCheck(handle: object, data: Buffer, counter: number, digest: Buffer, offset: number, flags?: number): boolean
  setMmapThreshold(bytes: number): boolean
  raiseFdLimit(): number
  mallocTrim(): boolean
  splice(fdA: number, fdB: number, done: (err: string | null, aToB: number, bToA: number) => void): object
  spliceAbort(handle: object): void
  /** A non-blocking listening TCP socket on an IP literal: [fd, bound port]; errors carry the errno name as code. */
  acceptListen(address: string, port: number, backlog: number, v6only: boolean): [number, number]
  /** Accepts on `fd` in the addon; a connection for which `cb` does not return true is reset and closed there. */
  acceptStart(fd: number, cb: (fd: number, address: string, port: number) => boolean): object
  acceptStop(handle: object): void
  /** The native data path (native/datapath.c) on a duplicate of `fd`; cb(0, Buffer) plaintext,
   * cb(1) the peer's end of stream, cb(2, message, code) a failure (then the path has ended). */
  dpOpen(fd: number, txKey: Buffer, txIv: Buffer, rxKey: Buffer, rxIv: Buffer, holdTx: boolean, cb: (kind: number, a: Buffer | string | null, code: string | null) => void): object
  /** Seals the chunks and sends what the kernel takes; returns the bytes still waiting. */
  dpWrite(handle: object, chunks: Buffer[]): number
  /** Sends one empty record (the SWITCH acknowledgement). */
  dpAck(handle: object): void
  /** op 0 pause reading, 1 resume, 2 end, 3 close now, 4 nothing: [bytesIn, bytesOut, backlog] before it, null once ended. */
  dpControl(handle: object, op: number): [number, number, number] | null
  dpSeal(key: Buffer, iv: Buffer, seq: number, plaintext: Buffer): Buffer
  dpDecoder(key: Buffer, iv: Buffer): object
  /** Plaintext of the records completed; throws (code EOVERSIZE, EBADTAG) on a bad record, and after. */
  dpFeed(decoder: object, bytes: Buffer): Buffer[]
}

let native: Native | Error | undefined

/** The addon, or null with the reason in `nativeError()` when it was not built. */
export function tryNative(): Native | null {
  if (native === undefined) {
    try {
      native = createRequire(import.meta.url)('../../../../build/Release/tunkit_tun.node') as Native
    } catch (e) {
      native = e as Error
    }
  }
  return native instanceof Error ? null : native
}

export function nativeBinding(): Native {
  const n = tryNative()
  if (!n) throw new Error(`the native addon is not built (run "npm ci" or "npx node-gyp rebuild"): ${(native as Error).message}`)
  return n
}

/**
 * Settings for long-running servers that carry bulk streams and many connections (gate, relay),
 * skipped without the addon:
 * - allocations above 128 KiB are served by mmap and go back to the OS when freed (glibc kept the
 *   freed pages after a traffic burst); the 64 KiB socket reads and TLS write buffers stay on the
 *   heap: at a 32 KiB threshold each was a fresh mmap whose pages faulted in, 15 % of the gate's
 *   time when it sent bulk data (perf), and the download direction ran 8–15 % slower than upload.
 *   What a burst leaves on the heap, watchMemory hands back (a full GC and malloc_trim);
 * - the soft descriptor limit goes up to the hard one (a spliced tunnel holds six descriptors).
 */
export function tuneServerProcess(): void {
  const n = tryNative()
  n?.setMmapThreshold(128 * 1024)
  n?.raiseFdLimit()
  watchMemory()
}

/** How often a server checks whether a burst left memory behind, how much growth counts, and
 * how long a plateau must wait before it is collected again. */
const MEMORY_CHECK_MS = 2000
const MEMORY_SLACK = 16 * 1024 * 1024
const MEMORY_RETRY_MS = 10_000

/**
 * After a burst (a flood of early data or of opens), an idle server would keep its memory: V8
 * collects only when it allocates, and glibc keeps freed heap pages. When RSS sits well above
 * the least seen and has stopped growing, a full collection and malloc_trim hand it back (a
 * hostile-load target: RSS back within 20 % of idle). Under steady load RSS stays up however
 * often that runs, so it runs again only after MEMORY_RETRY_MS, or sooner if RSS grew by the
 * slack since: a full collection every 10 s at most, not every check, on a busy server.
 */
function watchMemory(): void {
  let gc: (() => void) | undefined
  try {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  } catch { /* no collector handle: malloc_trim alone */ }
  let floor = process.memoryUsage.rss()
  let last = floor
  let trimmed = {at: 0, rss: 0}
  setInterval(() => {
    const rss = process.memoryUsage.rss()
    floor = Math.min(floor, rss)
    const settled = rss <= last
    last = rss
    if (!settled || rss < floor + MEMORY_SLACK) return
    const now = Date.now()
    if (now - trimmed.at < MEMORY_RETRY_MS && rss < trimmed.rss + MEMORY_SLACK) return
    gc?.()
    tryNative()?.mallocTrim()
    last = process.memoryUsage.rss()
    trimmed = {at: now, rss: last}
  }, MEMORY_CHECK_MS).unref()
}

/**
 * The descriptor soft limit (after tuneServerProcess raised it) and how many are open now, from
 * /proc; where that cannot be read, the common default limit and a guess.
 */
export function descriptors(): {limit: number; open: number} {
  let limit = 1024
  let open = 32
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    if (m) limit = m[1] === 'unlimited' ? 1 << 20 : Number(m[1])
    open = readdirSync('/proc/self/fd').length
  } catch { /* not Linux: keep the guesses */ }
  return {limit, open}
}
