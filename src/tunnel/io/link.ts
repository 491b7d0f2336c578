import {randomBytes} from 'node:crypto'
import type {Socket} from 'node:net'
import {CodecError} from '../../lib/errors.js'
import {FrameSplitter, HEADER_LEN, type RawFrame} from '../codec/frame.js'
import {CloseStatus, CLOSE_STATUS_NAMES, decodeTunnel, encodeTunnel, isTunnelType, TunnelType, type TunnelFrame} from '../codec/tunnel.js'
import {decodeUsher, isUsherType, UsherType} from '../codec/usher.js'
import {MAX_FRAME_BODY, TUNNEL_CAP} from '../core/flow.js'
import type {Logger} from '../../lib/log.js'
import {Mux, type MuxHooks} from '../core/mux.js'
import {closeStatusFor} from '../errors.js'
import {TUNNEL_TRACE, USHER_TRACE, type TraceFields} from '../trace.js'
import type {Dir, Tracer} from '../../lib/trace/tracer.js'

/** Beyond this much unsent data the peer is not reading and the tunnel is dropped. */
const MAX_WRITE_BACKLOG = TUNNEL_CAP + 8 * 1024 * 1024
/** The native wire: a chunk this big is sealed by itself, not batched with the tick's others. */
const DIRECT_WRITE = 16 * 1024
/**
 * On TLS, frames go out packed into buffers of at least this much (or what there is), one buffer
 * per write, the next once the last is with the kernel. Node's TLS seals a single buffer where it
 * lies but first copies several into one new allocation as big as all of them: with sessions
 * outrunning the socket, megabytes per write, fresh pages each time (a fifth of a gate's CPU on 8
 * download streams went to page faults). A pack stays under glibc's mmap threshold (128 KiB: at
 * most this plus one 64 KiB frame), so the heap reuses its memory.
 */
const PACK = 32 * 1024
const EMPTY = Buffer.alloc(0)

export interface LinkOptions {
  socket: Socket
  /** The peer's address (host:port, IPv6 in brackets). */
  peer: string
  /** The peer's authenticated identity, once known (the gate's side). */
  identity?: string
  log: Logger
  tracer?: Tracer
  /** Seconds between keepalive pings, and of silence before the tunnel counts as dead. */
  keepalive: number
  deadAfter: number
  onFrame(f: TunnelFrame): void
  /** status: the CLOSE status sent or received; cause: the socket error that ended it, if any. */
  onClosed(reason: string, status: number | undefined, cause?: Error): void
}

/**
 * What Link needs of its transport: the TLS socket, or after the SWITCH frames the native data
 * path (io/native-path.ts), which looks the same from here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- what EventEmitter and Socket take
type Listener = (...args: any[]) => void

export interface Wire {
  /** cb: once the kernel has the chunk (TLS only: the native wire's writes take none). */
  write(chunk: Buffer, cb?: () => void): unknown
  cork(): void
  uncork(): void
  readonly writableLength: number
  pause(): unknown
  resume(): unknown
  end(): unknown
  destroy(): unknown
  on(event: string, fn: Listener): unknown
  once(event: string, fn: Listener): unknown
  removeListener(event: string, fn: Listener): unknown
}

/** The native data path's switch: off, armed (gate: SWITCH may come), sent (portal: ours went, frames held), native. */
type SwitchState = 'off' | 'armed' | 'sent' | 'native'
/** How long the portal holds its frames waiting for the gate's SWITCH. */
const SWITCH_TIMEOUT_MS = 10_000

/** VPN mode: DATA frame bodies go here (set once the tunnel is authorised). */
export type DataHandler = (body: Buffer) => void

/**
 * One established tunnel (already inside TLS): frames in and out, the Usher multiplexer,
 * keepalive pings and the CLOSE frame. Shared by portal and gate.
 */
export class Link {
  mux: Mux | null = null
  onDataFrame: DataHandler | null = null
  // UsherSend bodies stream through in pieces: no reassembly copy (about +20% throughput).
  private splitter = new FrameSplitter(MAX_FRAME_BODY, new Set([UsherType.SEND]))
  private corked = false
  /** TLS: chunks not yet handed to the socket (see PACK), from index `outHead` on. */
  private out: Buffer[] = []
  private outHead = 0
  private outBytes = 0
  private flushQueued = false
  private readonly flushTick = (): void => {
    this.flushQueued = false
    this.flush()
  }
  /** whenDrained on TLS: called once nothing waits here or in the socket. */
  private drained: Array<() => void> = []
  private readonly afterWrite = (): void => {
    this.flush()
    if (this.drained.length && this.backlog === 0) for (const cb of this.drained.splice(0)) cb()
  }
  private closed = false
  private held = false
  private lastRx = Date.now()
  private timer: NodeJS.Timeout | null = null
  private socket: Wire
  private sw: SwitchState = 'off'
  private openWire: ((holdTx: boolean) => Wire) | null = null
  /** Frames held while the portal waits for the gate's SWITCH (none may follow ours in TLS). */
  private switchQueue: Buffer[] | null = null
  private switchQueued = 0
  private readonly handlers = {
    data: (chunk: Buffer): void => this.onData(chunk),
    error: (err: Error): void => this.teardown(`connection error: ${err.message}`, undefined, err),
    close: (): void => this.teardown('connection closed by peer', undefined),
    end: (): void => this.teardown('connection closed by peer', undefined),
  }

  constructor(private readonly o: LinkOptions) {
    const s = (this.socket = o.socket)
    s.setNoDelay(true)
    this.attach(s)
    if (o.keepalive > 0) {
      this.timer = setInterval(() => this.tick(), o.keepalive * 1000)
      this.timer.unref()
    }
  }

  private attach(w: Wire): void {
    for (const [ev, fn] of Object.entries(this.handlers)) w.on(ev, fn as Listener)
  }

  /** Which transport carries the frames now. */
  get dataPath(): 'tls' | 'native' {
    return this.sw === 'native' ? 'native' : 'tls'
  }

  /**
   * Gate: the RESPONSE about to be sent agrees on the native data path, so the portal's SWITCH
   * may come. `open(holdTx)` makes the native wire (and stops Node reading the descriptor).
   */
  armSwitch(open: (holdTx: boolean) => Wire): void {
    if (this.sw !== 'off') return
    this.sw = 'armed'
    this.openWire = open
  }

  /**
   * Portal, on a RESPONSE that agreed: SWITCH goes out in TLS, then nothing of ours may follow
   * it in TLS (the gate's TLS stack would read it): frames wait until the gate's SWITCH.
   */
  beginSwitch(open: (holdTx: boolean) => Wire): void {
    if (this.sw !== 'off' || this.closed) return
    this.send({kind: 'switch'})
    this.sw = 'sent'
    this.openWire = open
    this.switchQueue = []
    setTimeout(() => {
      if (this.sw === 'sent') this.close(CloseStatus.TIMEOUT, `no SWITCH from the peer within ${SWITCH_TIMEOUT_MS / 1000} s`)
    }, SWITCH_TIMEOUT_MS).unref()
  }

  /** The peer's SWITCH came in TLS, as the last thing it sent there. */
  private onSwitch(): void {
    if (this.sw === 'armed') {
      // Gate: our SWITCH answers in TLS; our records wait in the addon until the portal's first
      // (it reads TLS until our SWITCH, and would take a record sent sooner for TLS).
      this.send({kind: 'switch'})
      this.swap(this.openWire!(true))
    } else if (this.sw === 'sent') {
      // Portal: the gate reads natively already; the wire's first record is the acknowledgement.
      this.swap(this.openWire!(false))
      const q = this.switchQueue ?? []
      this.switchQueue = null
      this.switchQueued = 0
      if (q.length) this.write(q)
    } else {
      throw new CodecError('UNEXPECTED', this.sw === 'native' ? 'a second SWITCH frame' : 'SWITCH frame without an agreed native data path')
    }
  }

  private swap(w: Wire): void {
    const old = this.socket
    // Whatever waits for TLS (our SWITCH) goes out now, before the first native record.
    this.flush(true)
    for (const [ev, fn] of Object.entries(this.handlers)) old.removeListener(ev, fn as Listener)
    // Anything more from TLS broke the protocol: the peer promised SWITCH was its last there.
    old.on('data', () => this.protocolError(new CodecError('UNEXPECTED', 'data in TLS after the SWITCH frame')))
    old.on('error', () => {})
    this.sw = 'native'
    this.openWire = null
    this.socket = w
    this.attach(w)
    this.o.log.log('info', `native data path up with ${this.o.peer}${this.o.identity ? ` (${this.o.identity})` : ''}: AES-256-GCM records in the addon`)
  }

  get isClosed(): boolean {
    return this.closed
  }

  startMux(hooks: Omit<MuxHooks, 'write' | 'onFatal' | 'trace'>, maxSessions?: number): Mux {
    const tracer = this.o.tracer
    this.mux = new Mux({
      ...hooks,
      write: (chunks) => this.write(chunks),
      backlog: () => this.socket.writableLength,
      onFatal: (reason) => this.close(CloseStatus.PROTOCOL_ERROR, reason),
      trace: tracer ? (dir, r, len) => tracer.trace(dir, this.o.peer, USHER_TRACE, r, len, this.o.identity) : undefined,
    }, maxSessions)
    return this.mux
  }

  send(f: TunnelFrame): void {
    const wire = encodeTunnel(f)
    this.o.tracer?.trace('out', this.o.peer, TUNNEL_TRACE, f, wire.length, this.o.identity)
    this.write([wire])
  }

  /** Bytes written but not yet taken by the kernel. */
  get backlog(): number {
    return this.socket.writableLength + this.outBytes
  }

  /** cb once the bytes written so far have all gone to the kernel (never, if the tunnel closes first). */
  whenDrained(cb: () => void): void {
    if (this.backlog === 0) return cb()
    if (this.sw !== 'native') return void this.drained.push(cb)
    // The addon's queue says nothing when it empties: looked at every few milliseconds.
    const look = (): void => {
      if (this.closed) return
      if (this.socket.writableLength === 0) cb()
      else setTimeout(look, 5).unref()
    }
    look()
  }

  /** An already encoded frame (DATA frames are built by the data channel). */
  sendRaw(frame: Buffer): void {
    this.write([frame])
  }

  /**
   * Stop reading this tunnel for a while: TCP flow control then slows a peer that floods us (the
   * gate's open rate), so it costs the gate nothing while other tunnels are served.
   */
  holdReading(ms: number): void {
    if (this.held || this.closed) return
    this.held = true
    this.socket.pause()
    setTimeout(() => {
      this.held = false
      if (!this.closed) this.socket.resume()
    }, ms).unref()
  }

  /** Whether --trace is on: callers on a per-packet path check it before building fields. */
  get tracing(): boolean {
    return this.o.tracer !== undefined
  }

  trace(dir: Dir, fields: TraceFields): void {
    this.o.tracer?.emit(dir, this.o.peer, fields, this.o.identity)
  }

  /** Send CLOSE with a status (Fig. 10) and take the tunnel down. */
  close(status: number, reason: string): void {
    if (this.closed) return
    this.send({kind: 'close', status, reason})
    this.flush(true)
    this.socket.end()
    this.teardown(reason, status)
    // A peer that never acknowledges our FIN must not keep the socket forever.
    setTimeout(() => this.socket.destroy(), 2000).unref()
  }

  private write(chunks: Buffer[]): void {
    if (this.closed) return
    if (this.switchQueue) {
      for (const c of chunks) {
        this.switchQueue.push(c)
        this.switchQueued += c.length
      }
      if (this.switchQueued > MAX_WRITE_BACKLOG) {
        this.teardown('peer is not reading: write backlog over limit', CloseStatus.RESOURCE_LIMIT)
        this.socket.destroy()
      }
      return
    }
    if (this.sw !== 'native') {
      for (const c of chunks) {
        this.out.push(c)
        this.outBytes += c.length
      }
      if (!this.flushQueued) {
        this.flushQueued = true
        process.nextTick(this.flushTick)
      }
    } else if (!this.corked && chunks.length === 1 && chunks[0].length >= DIRECT_WRITE) {
      // The native wire: a lone big chunk is sealed as it is, smaller ones in one batch a tick.
      this.socket.write(chunks[0])
    } else if (!this.corked) {
      this.corked = true
      const s = this.socket
      s.cork()
      process.nextTick(() => {
        this.corked = false
        s.uncork()
      })
    }
    if (this.corked) for (const c of chunks) this.socket.write(c)
    if (this.backlog > MAX_WRITE_BACKLOG) {
      this.teardown('peer is not reading: write backlog over limit', CloseStatus.RESOURCE_LIMIT)
      this.socket.destroy()
    }
  }

  /** TLS: packs go to the socket while it has taken everything before them (all of them: `now`). */
  private flush(now = false): void {
    const s = this.socket
    if (this.closed) {
      this.out = []
      this.outHead = this.outBytes = 0
      return
    }
    while (this.outBytes > 0 && (now || s.writableLength === 0)) s.write(this.pack(), this.afterWrite)
  }

  /** The next chunks out, as one buffer of at least PACK bytes where there are that many. */
  private pack(): Buffer {
    const out = this.out
    let end = this.outHead
    let n = 0
    while (end < out.length && n < PACK) n += out[end++].length
    const one = end - this.outHead === 1 ? out[this.outHead] : undefined
    const buf = one ?? Buffer.allocUnsafe(n)
    if (!one) for (let i = this.outHead, at = 0; i < end; i++) at += out[i].copy(buf, at)
    if (end === out.length) {
      this.out = []
      this.outHead = 0
    } else if (end > 1024 && end > out.length / 2) {
      this.out = out.slice(end)
      this.outHead = 0
    } else {
      for (let i = this.outHead; i < end; i++) out[i] = EMPTY
      this.outHead = end
    }
    this.outBytes -= n
    return buf
  }

  private onData(chunk: Buffer): void {
    this.lastRx = Date.now()
    let frames: RawFrame[]
    try {
      frames = this.splitter.push(chunk)
    } catch (e) {
      return this.protocolError(e)
    }
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]
      if (this.closed) return
      try {
        if (f.type === TunnelType.SWITCH) {
          if (this.sw === 'native') throw new CodecError('UNEXPECTED', 'a second SWITCH frame')
          if (i !== frames.length - 1 || this.splitter.buffered > 0) throw new CodecError('UNEXPECTED', 'data in TLS after the SWITCH frame')
          decodeTunnel(f)
          this.o.tracer?.trace('in', this.o.peer, TUNNEL_TRACE, {kind: 'switch'}, HEADER_LEN + f.body.length, this.o.identity)
          this.onSwitch()
        } else if (f.type === TunnelType.DATA) {
          if (!this.onDataFrame) throw new CodecError('UNEXPECTED', 'DATA frame on a tunnel without VPN mode')
          this.onDataFrame(f.body)
        } else if (isUsherType(f.type)) {
          if (!this.mux) throw new CodecError('UNEXPECTED', 'Usher record before the tunnel was authorised')
          this.mux.receive(decodeUsher(f), f.continued ? -1 : f.total ?? f.body.length, f.more)
        } else if (isTunnelType(f.type)) {
          this.onTunnelFrame(decodeTunnel(f), HEADER_LEN + f.body.length)
        } else throw new CodecError('BAD_TYPE', `unknown frame type ${f.type}`)
      } catch (e) {
        return this.protocolError(e)
      }
    }
  }

  private onTunnelFrame(t: TunnelFrame, len: number): void {
    this.o.tracer?.trace('in', this.o.peer, TUNNEL_TRACE, t, len, this.o.identity)
    if (t.kind === 'ping') return this.send({kind: 'pong', nonce: t.nonce})
    if (t.kind === 'pong') return
    if (t.kind === 'close') {
      const name = CLOSE_STATUS_NAMES[t.status] ?? `status ${t.status}`
      this.socket.end()
      return this.teardown(`peer closed the tunnel (${name}${t.reason ? ': ' + t.reason : ''})`, t.status)
    }
    // A SWITCH is handled in onData (it must end its chunk); none reaches here.
    this.o.onFrame(t)
  }

  /** Malformed input closes this tunnel with a reason; so does a bug, rather than the process. */
  private protocolError(e: unknown): void {
    if (!(e instanceof CodecError)) {
      this.o.log.log('error', `internal error on the tunnel with ${this.o.peer}: ${(e as Error).stack ?? e}`)
      this.close(CloseStatus.PROTOCOL_ERROR, 'internal error')
      return
    }
    this.o.log.log('warn', `protocol error from ${this.o.peer}: ${e.message}`)
    this.close(closeStatusFor(e), e.message)
  }

  private tick(): void {
    const silent = (Date.now() - this.lastRx) / 1000
    if (silent >= this.o.deadAfter) {
      this.close(CloseStatus.TIMEOUT, `no data from peer for ${Math.round(silent)} s`)
      this.socket.destroy()
      return
    }
    this.send({kind: 'ping', nonce: randomBytes(8)})
  }

  private teardown(reason: string, status: number | undefined, cause?: Error): void {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    this.mux?.shutdown(reason)
    this.o.onClosed(reason, status, cause)
  }
}
