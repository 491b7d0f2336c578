import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {FrameSplitter} from '../../../src/tunnel/codec/frame.js'
import {decodeUsher, encodeUsher} from '../../../src/tunnel/codec/usher.js'
import {ACK_BATCH, MIN_WINDOW, TUNNEL_CAP, WINDOW} from '../../../src/tunnel/core/flow.js'
import {Mux, type Session, type StreamEndpoint} from '../../../src/tunnel/core/mux.js'
import {nextState} from '../../../src/tunnel/core/session-state.js'

/** A fake local socket: records what the mux does to it; write completion is controllable. */
class FakeEndpoint implements StreamEndpoint {
  written: Buffer[] = []
  pending: (() => void)[] = []
  ended = false
  paused = false
  destroyed: string | null = null
  openResult: [boolean, string | undefined] | null = null
  constructor(public autoFlush = true) {}
  opened(ok: boolean, reason?: string): void { this.openResult = [ok, reason] }
  write(data: Buffer, done: () => void): void {
    this.written.push(Buffer.from(data))
    if (this.autoFlush) done()
    else this.pending.push(done)
  }
  end(): void { this.ended = true }
  pause(): void { this.paused = true }
  resume(): void { this.paused = false }
  destroy(reason: string): void { this.destroyed = reason }
  get bytes(): number { return this.written.reduce((n, b) => n + b.length, 0) }
}

/** Two multiplexers joined by an in-memory pipe that goes through the real codecs. */
function pair(onOpen: (s: Session) => void) {
  const queue: [Mux, Buffer][] = []
  const deliver = (to: () => Mux) => (chunks: Buffer[]) => { for (const c of chunks) queue.push([to(), c]) }
  const splitters = new Map<Mux, FrameSplitter>()
  const a: Mux = new Mux({write: deliver(() => b), onOpen: () => assert.unreachable('portal got an open'), onFatal: (r) => assert.unreachable(r)})
  const b: Mux = new Mux({write: deliver(() => a), onOpen: (_req, s) => onOpen(s), onFatal: (r) => assert.unreachable(r)})
  splitters.set(a, new FrameSplitter(1 << 20)).set(b, new FrameSplitter(1 << 20))
  const flush = (): void => {
    while (queue.length) {
      const [to, c] = queue.shift()!
      for (const f of splitters.get(to)!.push(c)) to.receive(decodeUsher(f))
    }
  }
  return {a, b, flush}
}

test('open, data both ways, acks bring in-flight back to zero, half-close ends the session', () => {
  const far: FakeEndpoint[] = []
  const {a, b, flush} = pair((s) => { const ep = new FakeEndpoint(); far.push(ep); s.acceptStream(ep) })
  const near = new FakeEndpoint()
  const s = a.open({protocol: 'tcp', host: 'intranet.example', port: 22}, near)!
  flush()
  assert.equal(near.openResult, [true, undefined])
  s.send(Buffer.alloc(4 * ACK_BATCH, 1))
  flush()
  assert.is(far[0].bytes, 4 * ACK_BATCH)
  assert.is(s.inFlight, 0, 'all acknowledged')
  s.send(Buffer.alloc(100))
  flush()
  assert.is(s.inFlight, 100, 'small amounts wait for a full ack batch')
  const farSession = b.list()[0]
  farSession.send(Buffer.from('reply'))
  flush()
  assert.is(Buffer.concat(near.written).toString(), 'reply')
  s.localEof()
  flush()
  assert.is(s.state, 'write-active')
  assert.ok(far[0].ended, 'the far socket is shut down for writing')
  farSession.localEof()
  flush()
  assert.is(a.size, 0)
  assert.is(b.size, 0)
})

test('a stalled session stops at its window while another keeps flowing', () => {
  const eps: FakeEndpoint[] = []
  const {a, flush} = pair((s) => { const ep = new FakeEndpoint(eps.length > 0); eps.push(ep); s.acceptStream(ep) })
  const stalledNear = new FakeEndpoint()
  const stalled = a.open({protocol: 'tcp', host: 'slow.example', port: 1}, stalledNear)!
  const fastNear = new FakeEndpoint()
  const fast = a.open({protocol: 'tcp', host: 'fast.example', port: 1}, fastNear)!
  flush()
  for (let i = 0; i < 64; i++) stalled.send(Buffer.alloc(64 * 1024))
  flush()
  assert.is(stalled.inFlight, WINDOW, 'exactly one window in flight')
  assert.ok(stalledNear.paused, 'the stalled local socket is paused')
  for (let i = 0; i < 256; i++) {
    fast.send(Buffer.alloc(64 * 1024))
    flush()
  }
  assert.is(eps[1].bytes, 256 * 64 * 1024, 'the other session moved 16 MiB')
  assert.not.ok(fastNear.paused)
  for (let round = 0; round < 3; round++) {
    for (const p of eps[0].pending.splice(0)) p()
    flush()
  }
  assert.is(eps[0].bytes, 64 * 64 * 1024, 'once the consumer drains, the rest follows')
  assert.is(stalled.inFlight, 0)
})

test('a peer that ignores the window gets its session reset', () => {
  const far = new FakeEndpoint(false)
  const records: string[] = []
  const b = new Mux({write: (cs) => cs.forEach((c) => records.push(decodeUsher(new FrameSplitter(1 << 20).push(c)[0]).kind)), onOpen: (_r, s) => s.acceptStream(far), onFatal: () => {}})
  const push = (buf: Buffer): void => { for (const f of new FrameSplitter(1 << 20).push(buf)) b.receive(decodeUsher(f)) }
  push(encodeUsher({kind: 'open', session: 0, protocol: 'tcp', host: 'x.example', port: 1}))
  for (let i = 0; i <= WINDOW / 65536; i++) push(encodeUsher({kind: 'send', session: 0, data: Buffer.alloc(65536)}))
  assert.ok(records.includes('rst'))
  assert.is(far.destroyed, 'peer exceeded the flow-control window')
  assert.is(b.size, 0)
})

test('a refused open reports the reason and frees the session', () => {
  const {a, flush} = pair((s) => s.reject('refused: connect ECONNREFUSED'))
  const ep = new FakeEndpoint()
  a.open({protocol: 'tcp', host: '198.18.0.9', port: 9}, ep)
  flush()
  assert.equal(ep.openResult, [false, 'refused: connect ECONNREFUSED'])
  assert.is(a.size, 0)
})

test('the session limit refuses further opens with a "limit" reason', () => {
  const b = new Mux({write: () => {}, onOpen: () => {}, onFatal: () => {}}, 2)
  const ep = new FakeEndpoint()
  b.open({protocol: 'tcp', host: 'a', port: 1}, new FakeEndpoint())
  b.open({protocol: 'tcp', host: 'a', port: 1}, new FakeEndpoint())
  assert.is(b.open({protocol: 'tcp', host: 'a', port: 1}, ep), null)
  assert.match(ep.openResult![1]!, /^limit:/)
})

test('with the tunnel cap used up by stalled sessions, a new session still flows', () => {
  const eps: FakeEndpoint[] = []
  const {a, flush} = pair((s) => { const ep = new FakeEndpoint(eps.length >= 20); eps.push(ep); s.acceptStream(ep) })
  const stalled = Array.from({length: 20}, () => a.open({protocol: 'tcp', host: 'slow.example', port: 1}, new FakeEndpoint())!)
  flush()
  for (const s of stalled) for (let i = 0; i < 40; i++) s.send(Buffer.alloc(64 * 1024))
  flush()
  assert.ok(a.inFlight <= TUNNEL_CAP + 20 * MIN_WINDOW, `in flight ${a.inFlight} stays near the cap`)
  const fast = a.open({protocol: 'tcp', host: 'fast.example', port: 1}, new FakeEndpoint())!
  flush()
  for (let i = 0; i < 64; i++) {
    fast.send(Buffer.alloc(64 * 1024))
    flush()
  }
  assert.is(eps[20].bytes, 64 * 64 * 1024)
})

test('Fig. 7 transitions', () => {
  assert.is(nextState('pending', 'open-ok'), 'active')
  assert.is(nextState('pending', 'open-failed'), 'inactive')
  assert.is(nextState('active', 'local-eof'), 'write-active')
  assert.is(nextState('active', 'remote-close'), 'session-active')
  assert.is(nextState('write-active', 'remote-close'), 'inactive')
  assert.is(nextState('session-active', 'local-eof'), 'inactive')
  for (const s of ['active', 'write-active', 'session-active'] as const) {
    assert.is(nextState(s, 'rst'), 'inactive')
    assert.is(nextState(s, 'write-error'), 'inactive')
  }
})


function earlyPair(onOpen: (s: Session) => void) {
  const p = pair(onOpen)
  p.a.early = {half: 'low'}
  p.b.early = {half: 'high'}
  return p
}

test('early data: the opener sends before the reply; the responder holds it until it accepts', () => {
  let pending: Session | null = null
  const far = new FakeEndpoint()
  const {a, b, flush} = earlyPair((s) => (pending = s))
  const near = new FakeEndpoint()
  const s = a.open({protocol: 'tcp', host: 'x.example', port: 1}, near)!
  assert.ok(s.canSendEarly())
  s.send(Buffer.from('early '))
  s.send(Buffer.from('bird'))
  s.localEof()
  flush()
  assert.is(pending!.localId, s.localId, 'the responder mirrors the id')
  assert.is(far.bytes, 0, 'nothing is written before the open is accepted')
  pending!.acceptStream(far)
  flush()
  assert.is(Buffer.concat(far.written).toString(), 'early bird')
  assert.ok(far.ended, 'the early CLOSE(WRITE) is applied after the data')
  assert.equal(near.openResult, [true, undefined])
  assert.is(b.list()[0].state, 'session-active')
})

test('early data: a refused open drops the held data and tells the opener', () => {
  let pending: Session | null = null
  const {a, b, flush} = earlyPair((s) => (pending = s))
  const near = new FakeEndpoint()
  const s = a.open({protocol: 'tcp', host: 'x.example', port: 1}, near)!
  s.send(Buffer.alloc(1000))
  flush()
  pending!.reject('refused: nobody home')
  flush()
  assert.equal(near.openResult, [false, 'refused: nobody home'])
  assert.is(a.size, 0)
  assert.is(b.size, 0)
  assert.is(a.inFlight, 0, 'the window is released')
})

test('early data: an open with an id from the wrong half, or more early data than a window, is refused', () => {
  const replies: string[] = []
  const b = new Mux({write: (cs) => cs.forEach((c) => { const r = decodeUsher(new FrameSplitter(1 << 20).push(c)[0]); replies.push(r.kind === 'open-reply' ? `reply ${r.rc}` : r.kind) }), onOpen: () => {}, onFatal: () => {}})
  b.early = {half: 'high'}
  const push = (buf: Buffer): void => { for (const f of new FrameSplitter(1 << 20).push(buf)) b.receive(decodeUsher(f)) }
  push(encodeUsher({kind: 'open', session: 0x4001, protocol: 'tcp', host: 'x.example', port: 1}))
  assert.equal(replies, ['reply -1'], 'a portal may not use the gate\'s half')
  push(encodeUsher({kind: 'open', session: 7, protocol: 'tcp', host: 'x.example', port: 1}))
  for (let i = 0; i <= WINDOW / 65536; i++) push(encodeUsher({kind: 'send', session: 7, data: Buffer.alloc(65536)}))
  assert.ok(replies.includes('rst'))
  assert.is(b.size, 0)
})

test('early data: the tunnel\'s budget caps what all pending sessions hold; it comes back when they end', () => {
  const sent: string[] = []
  let held = 0
  const budget = 3 * 65536
  const b = new Mux({
    write: (cs) => cs.forEach((c) => { const r = decodeUsher(new FrameSplitter(1 << 20).push(c)[0]); sent.push(r.kind === 'rst' ? `rst ${r.session} ${r.reason}` : r.kind) }),
    onOpen: () => {}, onFatal: (r) => assert.unreachable(r),
    takeEarly: (n) => (held + n <= budget ? ((held += n), true) : false),
    giveEarly: (n) => (held -= n),
  })
  b.early = {half: 'high'}
  const push = (buf: Buffer): void => { for (const f of new FrameSplitter(1 << 20).push(buf)) b.receive(decodeUsher(f)) }
  for (const id of [1, 2]) {
    push(encodeUsher({kind: 'open', session: id, protocol: 'tcp', host: 'x.example', port: 1}))
    push(encodeUsher({kind: 'send', session: id, data: Buffer.alloc(65536)}))
    push(encodeUsher({kind: 'send', session: id, data: Buffer.alloc(65536)}))
  }
  assert.is(held, 2 * 65536, 'the fourth piece did not fit; its session gave back the third')
  assert.equal(sent, ['rst 2 limit: early data over the budget of this tunnel or identity'])
  assert.is(b.size, 1, 'only the session over the budget is reset')
  const [s] = b.list()
  s.reject('timeout: connect timed out')
  assert.is(held, 0, 'a refused open gives its early data back')
  push(encodeUsher({kind: 'open', session: 3, protocol: 'tcp', host: 'x.example', port: 1}))
  push(encodeUsher({kind: 'send', session: 3, data: Buffer.alloc(1000)}))
  b.list()[0].acceptStream(new FakeEndpoint())
  assert.is(held, 0, 'so does an accepted one')
})

test('datagrams are dropped, not queued, while the tunnel is backed up', () => {
  let backlog = 0
  const sent: string[] = []
  const m = new Mux({write: (cs) => cs.forEach((c) => sent.push(decodeUsher(new FrameSplitter(1 << 20).push(c)[0]).kind)), onOpen: (_r, s) => s.acceptDatagram({opened() {}, deliver() {}, destroy() {}}), onFatal: () => {}, backlog: () => backlog})
  for (const f of new FrameSplitter(1 << 20).push(encodeUsher({kind: 'open', session: 3, protocol: 'udp', host: '198.18.0.53', port: 53}))) m.receive(decodeUsher(f))
  const s = m.list()[0]
  s.sendDatagram(Buffer.from('a'), {addr: '198.18.0.53', port: 53})
  backlog = 64 * 1024 * 1024
  s.sendDatagram(Buffer.from('b'), {addr: '198.18.0.53', port: 53})
  assert.equal(sent, ['open-reply', 'send-udp'])
  assert.is(s.dropped, 1)
})

test('an open the UsherOpen record cannot carry fails cleanly: no throw, no session, nothing sent', () => {
  const wrote: Buffer[][] = []
  const m = new Mux({write: (c) => wrote.push(c), onOpen: () => {}, onFatal: (r) => assert.unreachable(r)})
  for (const host of ['a\0b', '\u00e9'.repeat(200), 'fe80::1%a:b:c:d:e:f:1:2:3', '']) {
    const ep = new FakeEndpoint()
    assert.is(m.open({protocol: 'tcp', host, port: 80}, ep), null)
    assert.is(ep.openResult?.[0], false)
    assert.match(ep.openResult?.[1] ?? '', /^unreachable: /)
  }
  assert.is(m.size, 0)
  assert.is(wrote.length, 0)
  assert.ok(m.open({protocol: 'tcp', host: 'example.test', port: 80}, new FakeEndpoint()), 'a good open still works')
})

test.run()
