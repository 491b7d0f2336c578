import {EventEmitter} from 'node:events'
import type {Socket} from 'node:net'
import type {TLSSocket} from 'node:tls'
import {CodecError} from '../../lib/errors.js'
import {tryNative, type Native} from '../../lib/io/native.js'

/**
 * The native data path (issue 12 item 2, `--data-path native`): after the SWITCH frames the
 * tunnel's bytes are AES-256-GCM records sealed and opened by the addon on the TCP descriptor
 * (native/datapath.c), not TLS records of Node's TLS stack; the frame layer (Link) runs on top
 * unchanged. Protocol: docs/protocol.md, "Native data path".
 */
export type DataPath = 'tls' | 'native'
export const DATA_PATHS: readonly DataPath[] = ['tls', 'native']
/** RFC 5705 exporter label of the record keys; the exporter binds them to this TLS session. */
export const NATIVE_EXPORTER_LABEL = 'EXPORTER-tunkit-native-data-v1'

const fdOf = (s: unknown): number => (s as {_handle?: {fd?: number}} | undefined)?._handle?.fd ?? -1

/** Why this process cannot run the native data path, or null when it can. */
export function nativeDataPathUnavailable(): string | null {
  const n = tryNative()
  if (!n) return 'the native addon is not built'
  if (typeof n.dpOpen !== 'function') return 'the native addon predates the data path (rebuild it: node native/build.mjs)'
  return null
}

/** Whether this tunnel's TLS socket sits directly on a TCP descriptor the addon can take. */
export function hasDescriptor(tls: TLSSocket, raw: Socket): boolean {
  return fdOf(tls) >= 0 || fdOf(raw) >= 0
}

interface DirKeys {key: Buffer; iv: Buffer}

/** 88 exported bytes: portal→gate key, gate→portal key, portal→gate IV, gate→portal IV. */
function exportKeys(tls: TLSSocket, role: 'portal' | 'gate'): {tx: DirKeys; rx: DirKeys; wipe(): void} {
  const m = tls.exportKeyingMaterial(88, NATIVE_EXPORTER_LABEL, Buffer.alloc(0))
  const p2g = {key: m.subarray(0, 32), iv: m.subarray(64, 76)}
  const g2p = {key: m.subarray(32, 64), iv: m.subarray(76, 88)}
  return role === 'portal' ? {tx: p2g, rx: g2p, wipe: () => m.fill(0)} : {tx: g2p, rx: p2g, wipe: () => m.fill(0)}
}

/**
 * Node must never read the descriptor again: TLS would take the peer's records for its own. The
 * handles' readStart is replaced too, because a stream that is resumed (or one that only drops
 * below its high-water mark) calls it again.
 */
function stopNodeReading(tls: TLSSocket, raw: Socket): void {
  tls.pause()
  for (const s of [tls, raw]) {
    const h = (s as unknown as {_handle?: {readStop?(): number; readStart?(): number; reading?: boolean}})._handle
    if (!h) continue
    h.readStop?.()
    h.reading = false
    h.readStart = () => 0
  }
}

/**
 * What Link needs of a socket, over the addon's data path. The TLS socket stays open (paused)
 * until the path ends, then it is destroyed: the addon works on a duplicate of its descriptor.
 */
export class NativeWire extends EventEmitter {
  private h: object | null
  private corks = 0
  private pending: Buffer[] = []
  private pendingBytes = 0
  private ending = false

  constructor(private readonly n: Native, private readonly tls: TLSSocket, private readonly raw: Socket, role: 'portal' | 'gate', holdTx: boolean) {
    super()
    const fd = fdOf(tls) >= 0 ? fdOf(tls) : fdOf(raw)
    if (fd < 0) throw new Error('the tunnel has no descriptor for the native data path')
    stopNodeReading(tls, raw)
    // Decrypted bytes still queued behind the SWITCH: the peer sent TLS after it.
    if (tls.readableLength > 0) throw new CodecError('UNEXPECTED', 'data in TLS after the SWITCH frame')
    const k = exportKeys(tls, role)
    try {
      this.h = n.dpOpen(fd, k.tx.key, k.tx.iv, k.rx.key, k.rx.iv, holdTx, (kind, a, code) => this.onEvent(kind, a, code))
    } finally {
      k.wipe()
    }
    // Whoever destroys the TLS socket (a gate shutting down, say) ends the native path with it.
    tls.once('close', () => this.destroy())
    // Node's socket no longer sees the tunnel's bytes: its counters (metrics, tunnel-down events)
    // go on from where TLS left them with the addon's.
    const base = {read: raw.bytesRead, written: raw.bytesWritten}
    Object.defineProperty(raw, 'bytesRead', {configurable: true, get: () => base.read + this.counters()[0]})
    Object.defineProperty(raw, 'bytesWritten', {configurable: true, get: () => base.written + this.counters()[1]})
  }

  /** [bytes in, bytes out] on the descriptor since the switch (records, not plaintext); kept after the end. */
  private final: [number, number] = [0, 0]
  private counters(): [number, number] {
    const s = this.h ? this.n.dpControl(this.h, 4) : null
    if (s) this.final = [s[0], s[1]]
    return this.final
  }

  setNoDelay(): this {
    return this
  }

  /** The first native record (empty): tells the peer, which holds its records until then, that we read them. */
  ack(): void {
    if (this.h) this.guard(() => this.n.dpAck(this.h!))
  }

  write(chunk: Buffer): boolean {
    if (!this.h || this.ending) return false
    if (this.corks > 0) {
      this.pending.push(chunk)
      this.pendingBytes += chunk.length
    } else this.push([chunk])
    return true
  }

  cork(): void {
    this.corks++
  }

  uncork(): void {
    if (this.corks === 0) return
    if (--this.corks === 0) this.flushPending()
  }

  get writableLength(): number {
    const s = this.h ? this.n.dpControl(this.h, 4) : null
    return (s ? s[2] : 0) + this.pendingBytes
  }

  pause(): this {
    if (this.h) this.n.dpControl(this.h, 0)
    return this
  }

  resume(): this {
    if (this.h) this.n.dpControl(this.h, 1)
    return this
  }

  /** Sends what is queued, then shuts down our direction. */
  end(): this {
    if (!this.h || this.ending) return this
    this.corks = 0
    this.flushPending()
    this.ending = true
    if (this.h) this.n.dpControl(this.h, 2)
    return this
  }

  destroy(): this {
    const h = this.h
    if (!h) return this
    this.h = null
    const s = this.n.dpControl(h, 3)
    if (s) this.final = [s[0], s[1]]
    this.finish()
    return this
  }

  private flushPending(): void {
    const p = this.pending
    this.pending = []
    this.pendingBytes = 0
    // The addon takes at most 4096 chunks a call.
    for (let i = 0; i < p.length && this.h; i += 4096) this.push(p.slice(i, i + 4096))
  }

  private push(chunks: Buffer[]): void {
    this.guard(() => this.n.dpWrite(this.h!, chunks))
  }

  private guard(fn: () => unknown): void {
    try {
      fn()
    } catch (e) {
      // ENOBUFS (the peer does not read), EIO (send failed): the path ends with that error.
      const h = this.h
      this.h = null
      const s = h ? this.n.dpControl(h, 3) : null
      if (s) this.final = [s[0], s[1]]
      this.emit('error', e)
      this.finish()
    }
  }

  private onEvent(kind: number, a: Buffer | string | null, code: string | null): void {
    if (kind === 0) {
      this.emit('data', a as Buffer)
    } else if (kind === 1) {
      // As a socket without allowHalfOpen: the peer's end ends ours once what is queued is sent.
      this.emit('end')
      this.end()
      const started = Date.now()
      const check = (): void => {
        if (!this.h) return
        if (this.writableLength === 0 || Date.now() - started > 2000) this.destroy()
        else setTimeout(check, 20).unref()
      }
      check()
    } else {
      // The addon releases the path when this returns: a bad record, or the descriptor failed.
      this.counters()
      this.h = null
      this.emit('error', Object.assign(new Error(String(a)), {code: code ?? 'EIO'}))
      this.finish()
    }
  }

  private finished = false
  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.tls.destroy()
    this.raw.destroy()
    process.nextTick(() => this.emit('close'))
  }
}

/** The native path on this tunnel's descriptor, from the addon (which the caller checked for). */
export function openNativeWire(tls: TLSSocket, raw: Socket, role: 'portal' | 'gate', holdTx: boolean): NativeWire {
  const n = tryNative()
  if (!n) throw new Error('the native addon is not built')
  return new NativeWire(n, tls, raw, role, holdTx)
}
