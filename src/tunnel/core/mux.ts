import {encodeHeader, HEADER_LEN} from '../codec/frame.js'
import {encodeUsher, UsherType, type UsherRecord} from '../codec/usher.js'
import {ACK_BATCH, MAX_ACK, MAX_SEND, MAX_SESSION_ID, MIN_WINDOW, TUNNEL_CAP, WINDOW} from './flow.js'
import {nextState, type SessionEvent, type SessionState} from './session-state.js'
import {unmapIPv4} from '../../lib/net/ip.js'

/** With early data, portal-opened sessions use ids below HALF and gate-opened ones above. */
const HALF = 0x4000

/** The local side of a TCP session, as the transport gives it to the multiplexer. */
export interface StreamEndpoint {
  /** The open this side asked for succeeded or failed; reason is "<code>: detail" on failure. */
  opened(ok: boolean, reason?: string): void
  /** Write peer data to the local socket; done() once it is handed to the kernel. */
  /** more: further pieces of the same record follow at once (flush after the last). */
  write(data: Buffer, done: () => void, more?: boolean): void
  /** The peer has finished writing: shut down our write side once queued data is flushed. */
  end(): void
  pause(): void
  resume(): void
  destroy(reason: string): void
}

/** The local side of a UDP session. */
export interface DatagramEndpoint {
  opened(ok: boolean, reason?: string): void
  deliver(data: Buffer, from: {addr: string; port: number}): void
  destroy(reason: string): void
}

export interface OpenRequest {
  protocol: 'tcp' | 'udp'
  host: string
  port: number
}

/**
 * Early data (a tunkit extension, negotiated in REQUEST/RESPONSE): both sides use the same id for
 * a session, chosen by the opener from its own half of the id space (portal below 0x4000, gate
 * above), so the opener may send UsherSend right after UsherOpen, without waiting a round trip
 * for UsherOpenReply. The responder holds such data (at most one window) until the open succeeds.
 */
export interface EarlyData {
  /** Which half of the id space our own opens use. */
  half: 'low' | 'high'
}

export interface MuxHooks {
  /** Bytes for the tunnel, in order. */
  write(chunks: Buffer[]): void
  /** The peer asks us to open a connection; answer with session.accept*() or session.reject(). */
  onOpen(req: OpenRequest, session: Session): void
  /** The peer broke the protocol in a way that makes the tunnel unusable. */
  onFatal(reason: string): void
  /** len is the record's body length on the wire. */
  trace?(dir: 'in' | 'out', rec: UsherRecord, len: number): void
  /** Called whenever a session ends (for counters and logs). */
  onSessionEnd?(session: Session, reason: string): void
  /** Bytes queued for the tunnel but not yet sent; datagrams are dropped when it is high. */
  backlog?(): number
  /** Early data held for pending sessions, beyond each session's window: take n bytes or refuse. */
  takeEarly?(n: number): boolean
  giveEarly?(n: number): void
}

/** Above this tunnel backlog UDP datagrams are dropped rather than queued: UDP may lose packets. */
export const DATAGRAM_DROP_BACKLOG = 4 * 1024 * 1024

export class Session {
  state: SessionState = 'pending'
  remoteId = -1
  /** Bytes we sent that the peer has not yet acknowledged. */
  inFlight = 0
  /** Bytes the peer sent that we have not yet acknowledged. */
  recvUnacked = 0
  private ackPending = 0
  private held: Buffer | null = null
  private eofHeld = false
  paused = false
  stream: StreamEndpoint | null = null
  dgram: DatagramEndpoint | null = null
  bytesIn = 0
  bytesOut = 0
  /** Datagrams dropped because the tunnel was backed up. */
  dropped = 0

  constructor(
    private readonly mux: Mux,
    readonly localId: number,
    readonly req: OpenRequest,
    readonly incoming: boolean,
  ) {}

  // ---- called by the transport ----

  /** Accept an incoming TCP open. */
  acceptStream(ep: StreamEndpoint): void {
    this.stream = ep
    this.mux.reply(this, true)
    const q = this.earlyIn
    this.earlyIn = null
    if (q) {
      this.mux.giveEarly(q.bytes)
      for (const d of q.data) this.onData(d)
      if (q.eof) {
        ep.end()
        this.mux.transition(this, 'remote-close', 'closed by both sides')
      }
    }
  }

  acceptDatagram(ep: DatagramEndpoint): void {
    this.dgram = ep
    this.dropEarly()
    this.mux.reply(this, true)
  }

  reject(reason: string): void {
    this.mux.reply(this, false, reason)
  }

  /** Data read from the local socket. Pauses the endpoint when the window is full. */
  send(data: Buffer): void {
    if (this.state !== 'active' && this.state !== 'session-active' && !this.canSendEarly()) return
    if (this.held) {
      this.held = Buffer.concat([this.held, data])
    } else {
      this.held = data
    }
    this.mux.pump(this)
  }

  /** The local socket reached EOF. */
  localEof(): void {
    this.eofHeld = true
    this.mux.pump(this)
  }

  /** The local socket failed or was reset: reset the session. */
  localError(reason: string): void {
    if (this.state === 'inactive') return
    this.mux.sendRecord({kind: 'rst', session: this.remoteId, reason})
    this.mux.finish(this, 'read-error', reason)
  }

  /** A datagram from the local UDP side. */
  sendDatagram(data: Buffer, from: {addr: string; port: number}, to?: {addr: string; port: number}): void {
    if (this.state !== 'active') return
    if (!this.mux.roomForDatagram()) {
      this.dropped++
      return
    }
    this.bytesOut += data.length
    this.mux.sendRecord({
      kind: 'send-udp', session: this.remoteId,
      addr: unmapIPv4(from.addr) ?? '0.0.0.0', port: from.port,
      remoteAddr: (to && unmapIPv4(to.addr)) ?? '0.0.0.0', remotePort: to?.port ?? 0, data,
    })
  }

  /** Close a UDP session or abandon a TCP one, telling the peer. */
  close(reason: string): void {
    if (this.state === 'inactive') return
    if (this.state !== 'pending' || !this.incoming) this.mux.sendRecord({kind: 'end', session: this.remoteId, reason})
    this.mux.finish(this, 'rst', reason)
  }

  // ---- used by the Mux ----

  /** Sends as much held data as the windows allow; returns true when everything went. */
  drain(budget: number): boolean {
    while (this.held && budget > 0) {
      const room = Math.min(WINDOW - this.inFlight, budget, MAX_SEND)
      if (room <= 0) break
      let chunk = this.held
      if (chunk.length > room) {
        this.held = chunk.subarray(room)
        chunk = chunk.subarray(0, room)
      } else this.held = null
      this.inFlight += chunk.length
      this.bytesOut += chunk.length
      budget -= chunk.length
      this.mux.sendData(this.remoteId, chunk)
    }
    if (!this.held && this.eofHeld) {
      this.eofHeld = false
      this.mux.sendRecord({kind: 'close', session: this.remoteId, direction: 'write'})
      this.mux.transition(this, 'local-eof', 'closed by both sides')
    }
    return this.held === null
  }

  /** Our own open, on a tunnel with early data: the peer's id is known before its reply. */
  canSendEarly(): boolean {
    return this.state === 'pending' && !this.incoming && this.mux.early !== null
  }

  /** Early data and an early CLOSE(WRITE) that arrived before we accepted the open. */
  earlyIn: {data: Buffer[]; bytes: number; eof: boolean} | null = null

  /** Hold early data; a refusal says why (over this session's window, or the tunnel's budget). */
  queueEarly(data: Buffer | null): string | null {
    const q = (this.earlyIn ??= {data: [], bytes: 0, eof: false})
    if (data === null) q.eof = true
    else {
      if (q.bytes + data.length > WINDOW) return 'early data over the window'
      if (!this.mux.takeEarly(data.length)) return 'limit: early data over the budget of this tunnel or identity'
      q.bytes += data.length
      q.data.push(Buffer.from(data)) // the frame may be a view of a reused chunk
    }
    return null
  }

  /** Let go of held early data (the session ended or needs none). */
  dropEarly(): void {
    if (!this.earlyIn) return
    this.mux.giveEarly(this.earlyIn.bytes)
    this.earlyIn = null
  }

  onData(data: Buffer, more = false): boolean {
    this.recvUnacked += data.length
    this.bytesIn += data.length
    if (this.recvUnacked > WINDOW) return false
    const n = data.length
    this.stream!.write(data, () => {
      this.ackPending += n
      // Acks only matter once the sender's window runs low (as SSH's window adjusts), so they go
      // in batches. ACK_BATCH <= MIN_WINDOW, so a sender held back by the shared tunnel cap is
      // always acked too.
      if (this.ackPending >= ACK_BATCH) this.flushAck()
    }, more)
    return true
  }

  flushAck(): void {
    if (this.state === 'inactive') return
    while (this.ackPending > 0) {
      const n = Math.min(MAX_ACK, this.ackPending)
      this.ackPending -= n
      this.recvUnacked -= n
      this.mux.sendRecord({kind: 'ack', session: this.remoteId, size: n})
    }
  }
}

/**
 * The Usher multiplexer (seed 001): session table, flow control by UsherAck byte counts, and the
 * session state machine of Fig. 7. Sans-I/O: bytes leave through hooks.write, records arrive
 * through receive(); the endpoints it drives are supplied by the transport.
 */
export class Mux {
  private sessions = new Map<number, Session>()
  private nextId = 0
  private totalInFlight = 0
  private blocked = new Set<Session>()
  private closed = false

  /** Set once the handshake has agreed on early data (before any session exists). */
  early: EarlyData | null = null

  constructor(private readonly hooks: MuxHooks, private readonly maxSessions = 4096) {}

  get size(): number {
    return this.sessions.size
  }

  get inFlight(): number {
    return this.totalInFlight
  }

  list(): Session[] {
    return [...this.sessions.values()]
  }

  /** Ask the peer to open a connection on our behalf. */
  open(req: OpenRequest, ep: StreamEndpoint | DatagramEndpoint): Session | null {
    const id = this.allocId()
    if (id < 0) {
      ep.opened(false, 'limit: too many sessions on this tunnel')
      return null
    }
    // Encoded before the session exists: a target the record cannot carry (a NUL in the name, a
    // zoned IPv6 literal) fails this open, not the caller's socket handler.
    const rec: UsherRecord = {kind: 'open', session: id, protocol: req.protocol, host: req.host, port: req.port}
    let wire: Buffer
    try {
      wire = encodeUsher(rec)
    } catch (e) {
      ep.opened(false, `unreachable: cannot open ${JSON.stringify(req.host.slice(0, 64))}: ${(e as Error).message}`)
      return null
    }
    const s = new Session(this, id, req, false)
    if (this.early) s.remoteId = id
    if (req.protocol === 'tcp') s.stream = ep as StreamEndpoint
    else s.dgram = ep as DatagramEndpoint
    this.sessions.set(id, s)
    if (this.closed) return s
    this.hooks.trace?.('out', rec, wire.length)
    this.hooks.write([wire])
    return s
  }

  /** Feed one decoded Usher record from the tunnel. */
  /** len: the record's body bytes; < 0 marks a later piece of a streamed UsherSend, not traced again. */
  receive(r: UsherRecord, len = 0, more = false): void {
    if (this.closed) return
    if (len >= 0) this.hooks.trace?.('in', r, HEADER_LEN + len)
    if (r.kind === 'open') return this.incomingOpen(r)
    const s = this.sessions.get(r.session)
    if (!s) return // late record for a session already released; harmless
    switch (r.kind) {
      case 'open-reply': {
        if (s.incoming || s.state !== 'pending') return this.hooks.onFatal(`UsherOpenReply for session ${r.session} that is not opening`)
        if (r.rc === -1) {
          this.transition(s, 'open-failed', r.reason ?? 'failed')
          ;(s.stream ?? s.dgram)!.opened(false, r.reason ?? 'failed')
          return
        }
        if (this.early && r.rc !== s.localId) return this.hooks.onFatal(`UsherOpenReply for session ${r.session} gives id ${r.rc}, not the mirrored id`)
        s.remoteId = r.rc
        this.transition(s, 'open-ok', '')
        ;(s.stream ?? s.dgram)!.opened(true)
        return
      }
      case 'send':
        if (s.state === 'pending' && s.incoming && this.early) {
          const refused = s.queueEarly(r.data)
          if (refused) this.refuseEarly(s, refused)
          return
        }
        if (!s.stream || (s.state !== 'active' && s.state !== 'write-active')) return
        if (!s.onData(r.data, more)) {
          this.sendRecord({kind: 'rst', session: s.remoteId, reason: 'flow control window exceeded'})
          this.finish(s, 'rst', 'peer exceeded the flow-control window')
        }
        return
      case 'send-udp':
        if (s.dgram && s.state === 'active') {
          s.bytesIn += r.data.length
          s.dgram.deliver(r.data, {addr: r.addr, port: r.port})
        }
        return
      case 'ack': {
        const n = Math.min(r.size, s.inFlight)
        s.inFlight -= n
        this.totalInFlight -= n
        this.pump(s)
        if (this.blocked.size > 0) for (const b of [...this.blocked]) this.pump(b)
        return
      }
      case 'close':
        if (s.state === 'pending' && s.incoming && this.early && r.direction === 'write') {
          s.queueEarly(null)
          return
        }
        if (r.direction === 'read' || r.direction === 'both') {
          // The peer stopped reading: nothing more may be sent, so stop reading locally.
          s.stream?.pause()
          s.paused = true
        }
        if (r.direction === 'write' || r.direction === 'both') {
          s.stream?.end()
          this.transition(s, 'remote-close', 'closed by both sides')
        }
        if (r.direction === 'both') this.finish(s, 'rst', 'closed by peer')
        return
      case 'end':
      case 'rst':
        this.finish(s, 'rst', r.reason || (r.kind === 'rst' ? 'reset by peer' : 'ended by peer'))
        return
    }
  }

  /** The tunnel is gone: every session dies with it. */
  shutdown(reason: string): void {
    this.closed = true
    for (const s of [...this.sessions.values()]) this.finish(s, 'rst', reason)
  }

  // ---- internals used by Session ----

  takeEarly(n: number): boolean {
    return this.hooks.takeEarly?.(n) ?? true
  }

  giveEarly(n: number): void {
    this.hooks.giveEarly?.(n)
  }

  roomForDatagram(): boolean {
    return (this.hooks.backlog?.() ?? 0) < DATAGRAM_DROP_BACKLOG
  }

  sendRecord(r: UsherRecord): void {
    if (this.closed) return
    const wire = encodeUsher(r)
    this.hooks.trace?.('out', r, wire.length)
    this.hooks.write([wire])
  }

  sendData(remoteId: number, data: Buffer): void {
    this.hooks.trace?.('out', {kind: 'send', session: remoteId, data}, HEADER_LEN + data.length)
    this.totalInFlight += data.length
    this.hooks.write([encodeHeader(UsherType.SEND, remoteId, data.length), data])
  }

  /** Move held data of one session into the tunnel as far as the windows allow. */
  pump(s: Session): void {
    if (this.closed || s.state === 'inactive' || (s.state === 'pending' && !s.canSendEarly())) return
    const shared = TUNNEL_CAP - this.totalInFlight
    const budget = Math.max(shared, MIN_WINDOW - s.inFlight)
    const done = s.drain(budget)
    if (done) {
      this.blocked.delete(s)
      if (s.paused && (s.state as SessionState) !== 'inactive') {
        s.paused = false
        s.stream?.resume()
      }
    } else {
      if (s.inFlight < WINDOW) this.blocked.add(s)
      if (!s.paused) {
        s.paused = true
        s.stream?.pause()
      }
    }
  }

  reply(s: Session, ok: boolean, reason?: string): void {
    if (s.state !== 'pending') return
    if (ok) {
      this.sendRecord({kind: 'open-reply', session: s.remoteId, rc: s.localId})
      this.transition(s, 'open-ok', '')
    } else {
      this.sendRecord({kind: 'open-reply', session: s.remoteId, rc: -1, reason})
      this.finish(s, 'open-failed', reason ?? 'rejected')
    }
  }

  transition(s: Session, e: SessionEvent, reason: string): void {
    s.state = nextState(s.state, e)
    if (s.state === 'inactive') this.release(s, reason)
  }

  finish(s: Session, e: SessionEvent, reason: string): void {
    if (s.state === 'inactive') return
    s.state = nextState(s.state, e)
    ;(s.stream ?? s.dgram)?.destroy(reason)
    this.release(s, reason)
  }

  private release(s: Session, reason: string): void {
    if (this.sessions.get(s.localId) !== s) return
    this.sessions.delete(s.localId)
    this.blocked.delete(s)
    s.dropEarly()
    this.totalInFlight -= s.inFlight
    s.inFlight = 0
    this.hooks.onSessionEnd?.(s, reason)
  }

  private incomingOpen(r: Extract<UsherRecord, {kind: 'open'}>): void {
    const id = this.early ? this.mirrorId(r.session) : this.allocId()
    if (id < 0) {
      this.sendRecord({kind: 'open-reply', session: r.session, rc: -1, reason: 'limit: too many sessions on this tunnel'})
      return
    }
    const s = new Session(this, id, {protocol: r.protocol, host: r.host, port: r.port}, true)
    s.remoteId = r.session
    this.sessions.set(id, s)
    this.hooks.onOpen(s.req, s)
  }

  /**
   * Ids count up and wrap, so an id is not reused until many later opens: late records stay
   * harmless. With early data our opens take ids from our half of the space only.
   */
  private allocId(): number {
    const [base, mask] = !this.early ? [0, MAX_SESSION_ID] : [this.early.half === 'low' ? 0 : HALF, HALF - 1]
    if (this.sessions.size >= this.maxSessions || this.sessions.size > mask) return -1
    for (let tries = 0; tries <= mask; tries++) {
      const id = base + (this.nextId & mask)
      this.nextId = (this.nextId + 1) & mask
      if (!this.sessions.has(id)) return id
    }
    return -1
  }

  /** With early data the responder takes the opener's id, which must lie in the opener's half. */
  private mirrorId(id: number): number {
    const peerLow = this.early!.half === 'high'
    if ((id < HALF) !== peerLow || this.sessions.has(id) || this.sessions.size >= this.maxSessions) return -1
    return id
  }

  private refuseEarly(s: Session, reason: string): void {
    this.sendRecord({kind: 'rst', session: s.remoteId, reason})
    this.finish(s, 'rst', `peer sent too much early data: ${reason}`)
  }
}
