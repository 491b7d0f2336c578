import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {decodeStun, encodeStun, StunMethod} from '../../../src/stun/codec/message.js'
import {Admission, answer, AnswerBudget, RateLimiter, RecentSources, Responder, type ServerConfig} from '../../../src/stun/core/responder.js'
import {fuzz, mutate} from '../../helpers/fuzz.js'

const cfg: ServerConfig = {primary: {address: '203.0.113.10', port: 3478}, alternate: {address: '198.51.100.10', port: 3479}, software: 'tunkit'}
const client = {address: '203.0.113.1', port: 40000}
const P = {altIp: false, altPort: false}
const req = (extra: object = {}, cookie = true, fingerprint = true): Buffer =>
  encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId: Buffer.alloc(12, 7), cookie, ...extra}, {fingerprint})

test('a plain Binding request is answered from the same socket with XOR-MAPPED-ADDRESS and OTHER-ADDRESS only', () => {
  const a = answer(cfg, req(), client, P)!
  assert.equal(a.via, P)
  assert.equal(a.to, client)
  const m = decodeStun(a.data)
  assert.is(m.klass, 'success')
  assert.equal(m.xorMapped, client)
  assert.equal(m.otherAddress, cfg.alternate, 'test I of RFC 5780 learns the other address from a plain request')
  assert.is(m.mapped, undefined)
  assert.is(m.responseOrigin, undefined)
  assert.is(m.software, 'tunkit', 'configured')
  assert.ok(m.fingerprint)
  assert.is(decodeStun(answer(cfg, req({}, true, false), client, P)!.data).fingerprint, undefined, 'FINGERPRINT only for a request with one')
  assert.is(decodeStun(answer({primary: cfg.primary}, req(), client, P)!.data).software, undefined, 'no SOFTWARE unless configured')
})

// docs/nat-discover.md, "Answer sizes": each request kind, its bytes, the answer's bytes (IPv4, no SOFTWARE).
const sizes: [string, ServerConfig, Buffer, number, number][] = [
  ['Binding', {primary: cfg.primary}, req({}, true, false), 20, 32],
  ['Binding + FINGERPRINT', {primary: cfg.primary}, req(), 28, 40],
  ['Binding, --alt', {...cfg, software: undefined}, req({}, true, false), 20, 44],
  ['Binding + FINGERPRINT, --alt', {...cfg, software: undefined}, req(), 28, 52],
  ['CHANGE-REQUEST, --alt', {...cfg, software: undefined}, req({changeRequest: {ip: true, port: true}}, true, false), 28, 56],
  ['RESPONSE-PORT, --alt', {...cfg, software: undefined}, req({responsePort: 5555}, true, false), 28, 56],
  ['classic', {primary: cfg.primary}, req({}, false, false), 20, 32],
  ['classic, --alt', {...cfg, software: undefined}, req({}, false, false), 20, 44],
  ['classic CHANGE-REQUEST, --alt', {...cfg, software: undefined}, req({changeRequest: {ip: false, port: true}}, false, false), 28, 56],
  ['CHANGE-REQUEST without --alt (420)', {primary: cfg.primary}, req({changeRequest: {ip: true, port: false}}, true, false), 28, 36],
  ['another method (400)', {primary: cfg.primary}, encodeStun({method: 0x002, klass: 'request', transactionId: Buffer.alloc(12), cookie: true}), 20, 28],
]
for (const [kind, c, q, reqBytes, ansBytes] of sizes) {
  test(`answer size: ${kind}: ${reqBytes} -> ${ansBytes} bytes`, () => {
    assert.is(q.length, reqBytes)
    assert.is(answer(c, q, client, P)!.data.length, ansBytes)
    assert.is(new Responder(c).answer(q, client, P)!.data.length, ansBytes, 'the fast path too')
  })
}

test('CHANGE-REQUEST selects the socket that answers', () => {
  const both = answer(cfg, req({changeRequest: {ip: true, port: true}}), client, P)!
  assert.equal(both.via, {altIp: true, altPort: true})
  assert.equal(decodeStun(both.data).responseOrigin, cfg.alternate)
  const port = answer(cfg, req({changeRequest: {ip: false, port: true}}), client, P)!
  assert.equal(port.via, {altIp: false, altPort: true})
  assert.equal(decodeStun(port.data).responseOrigin, {address: cfg.primary.address, port: cfg.alternate!.port})
  // Asked on the alternate socket, "change IP" flips back to the primary IP.
  const fromAlt = answer(cfg, req({changeRequest: {ip: true, port: false}}), client, {altIp: true, altPort: false})!
  assert.equal(fromAlt.via, {altIp: false, altPort: false})
})

test('without an alternate address CHANGE-REQUEST gets error 420', () => {
  const a = answer({primary: cfg.primary}, req({changeRequest: {ip: true, port: false}}), client, P)!
  assert.is(decodeStun(a.data).error?.code, 420)
})

test('RESPONSE-PORT moves the port, never the address; port 0 is not answered', () => {
  const a = answer(cfg, req({responsePort: 5555}), client, P)!
  assert.equal(a.to, {address: client.address, port: 5555})
  assert.is(answer(cfg, req({responsePort: 0}), client, P), null)
})

test('PADDING never makes the answer larger than the request', () => {
  const padded = req({padding: 400})
  const a = answer(cfg, padded, client, P)!
  assert.ok(a.data.length <= padded.length, `${a.data.length} <= ${padded.length}`)
  assert.ok((decodeStun(a.data).padding ?? 0) > 0)
  const small = answer(cfg, req({padding: 4}), client, P)!
  assert.is(decodeStun(small.data).padding, undefined)
})

test('a classic RFC 3489 request gets MAPPED-ADDRESS and CHANGED-ADDRESS (SOURCE-ADDRESS with CHANGE-REQUEST), and its whole 16-byte id back', () => {
  const classic = req({}, false, false)
  classic.write('\x02abc', 4, 'latin1') // Vovida's client keeps its test number in the first byte
  const wire = answer(cfg, classic, client, P)!.data
  assert.is(wire.subarray(4, 20).toString('hex'), classic.subarray(4, 20).toString('hex'))
  const m = decodeStun(wire)
  assert.is(m.software, undefined)
  assert.equal(m.mapped, client)
  assert.is(m.xorMapped, undefined)
  assert.is(m.sourceAddress, undefined)
  assert.equal(m.changedAddress, cfg.alternate)
  const changed = decodeStun(answer(cfg, req({changeRequest: {ip: true, port: false}}, false, false), client, P)!.data)
  assert.equal(changed.sourceAddress, {address: cfg.alternate!.address, port: cfg.primary.port})
})

test('unknown comprehension-required attributes get 420 with UNKNOWN-ATTRIBUTES; garbage and responses get nothing', () => {
  const wire = Buffer.from('000100082112a442070707070707070707070707003100040000000000', 'hex').subarray(0, 28)
  const a = answer(cfg, wire, client, P)!
  assert.equal(decodeStun(a.data).unknown, [0x31])
  assert.is(answer(cfg, Buffer.from('hello, world, this is not STUN'), client, P), null)
  assert.is(answer(cfg, encodeStun({method: StunMethod.BINDING, klass: 'success', transactionId: Buffer.alloc(12), cookie: true}), client, P), null)
})

test('the rate limiter allows a burst, then the configured rate, per source', () => {
  const r = new RateLimiter(10, 5)
  let ok = 0
  for (let i = 0; i < 20; i++) if (r.allow('a', 1000)) ok++
  assert.is(ok, 5)
  assert.ok(r.allow('b', 1000), 'another source has its own bucket')
  assert.ok(r.allow('a', 1100), 'one token back after 100 ms at 10/s')
  assert.not.ok(r.allow('a', 1100))
})

test('the global budget: a burst, then its rate, whatever the source', () => {
  const b = new AnswerBudget(10, 5)
  let ok = 0
  for (let i = 0; i < 20; i++) if (b.allow(1000)) ok++
  assert.is(ok, 5)
  assert.ok(b.allow(1100), 'one token back after 100 ms at 10/s')
  assert.not.ok(b.allow(1100))
  assert.not.ok(b.allow(1050), 'a clock that steps back gives nothing')
})

test('issue 9 flood: 100 000 spoofed sources, 10 000 plain Binding requests a second for 10 s, against a server with --alt', () => {
  const limits = {rate: 50, burst: 100, globalRate: 1000, globalBurst: 2000}
  const server = new Admission({...cfg, software: undefined}, limits)
  // Wire bytes: the payload plus 28 (IPv4 and UDP headers), as the issue measured them.
  let inBytes = 0
  let outBytes = 0
  let answers = 0
  let overBudget = 0
  const perSecond = new Map<number, number>()
  const N = 100000
  for (let i = 0; i < N; i++) {
    const now = i / 10 // ms: 10 000 requests a second
    const from = {address: `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: 1024 + (i % 60000)}
    const q = Buffer.alloc(20)
    q.writeUInt16BE(0x0001, 0)
    q.writeUInt32BE(0x2112a442, 4)
    q.writeUInt32BE(i, 16)
    inBytes += q.length + 28
    const a = server.decide(q, from, P, now)
    if (a === 'over-budget') overBudget++
    if (typeof a === 'string') continue
    answers++
    outBytes += a.data.length + 28
    assert.is(a.data.length, 44)
    const s = Math.floor(now / 1000)
    perSecond.set(s, (perSecond.get(s) ?? 0) + 1)
  }
  // The burst, then the rate: 2 000 + 1 000 a second over the 9.9999 s between first and last request.
  assert.is(answers, 2000 + 9999)
  assert.is(answers + overBudget, N)
  for (const [s, n] of perSecond) assert.ok(n <= (s === 0 ? 2000 + 1000 : 1000), `second ${s}: ${n} answers`)
  // Each answer is 72/48 = 1.5 times its request on the wire; the flood as a whole gets 0.18 out per byte in.
  assert.is((outBytes / inBytes).toFixed(2), '0.18')
  assert.is(((44 + 28) / (20 + 28)).toFixed(2), '1.50')
})

test('issue 9 flood: a client that used the server before keeps being answered; spoofed sources do not get in', () => {
  const server = new Admission({...cfg, software: undefined}, {rate: 50, burst: 100, globalRate: 1000, globalBurst: 2000})
  const binding = (i: number): Buffer => {
    const q = Buffer.alloc(20)
    q.writeUInt16BE(0x0001, 0)
    q.writeUInt32BE(0x2112a442, 4)
    q.writeUInt32BE(i, 16)
    return q
  }
  const known = {address: '198.18.200.1', port: 40000}
  assert.type(server.decide(binding(0), known, P, 0), 'object', 'answered before the flood')
  assert.type(server.decide(binding(0), known, P, 1000), 'object')
  let knownAnswered = 0
  let spoofedAnswered = 0
  for (let i = 0; i < 100000; i++) {
    const now = 1001 + i / 10 // 10 000 spoofed requests a second for 10 s, each source new
    if (typeof server.decide(binding(i), {address: `198.${19 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: 1024}, P, now) === 'object') spoofedAnswered++
    // The known client asks twice a second, from a new port each time (a discovery's requests).
    if (i % 5000 === 0 && typeof server.decide(binding(i), {...known, port: 40000 + i / 5000}, P, now) === 'object') knownAnswered++
  }
  assert.is(knownAnswered, 20, 'every request of the known client')
  assert.is(spoofedAnswered, 2000 + 9999, 'the spoofed flood gets the other budget only: its burst and 1 000 a second')
})

test('recent sources: returning from a second after the first answer until a minute after the last; least recent forgotten first', () => {
  const r = new RecentSources(60_000, 2, 1000)
  r.touch('a', 0)
  assert.not.ok(r.has('a', 10), 'a burst of repeats is not returning')
  r.touch('a', 10)
  assert.ok(r.has('a', 1000))
  assert.ok(r.has('a', 60_009))
  assert.not.ok(r.has('a', 60_010), 'a minute after the last answer')
  r.touch('a', 70_000)
  assert.not.ok(r.has('a', 70_500), 'after expiry it starts over')
  r.touch('b', 70_001)
  r.touch('a', 70_002)
  r.touch('c', 70_003)
  assert.is(r.size, 2)
  assert.not.ok(r.has('b', 80_000), 'b was the least recently answered')
  assert.ok(r.has('a', 80_000) && r.has('c', 80_000))
})

test('fuzz: mutated requests never throw and never get an answer larger than needed', () => {
  const seeds = [req(), req({changeRequest: {ip: true, port: true}}), req({responsePort: 9}), req({padding: 64}), req({}, false, false)]
  fuzz('responder on mutated requests', (r) => {
    const a = answer(cfg, mutate(r, r.pick(seeds)), client, P)
    if (a) assert.ok(a.data.length <= 200, `answer of ${a.data.length} bytes`)
  })
})

test('the template fast path gives exactly the bytes of the general path', () => {
  const r = new Responder(cfg)
  for (const fp of [false, true]) {
    for (const via of [P, {altIp: true, altPort: true}, {altIp: false, altPort: true}]) {
      for (const from of [client, {address: '198.18.255.1', port: 1}, {address: '0.0.0.1', port: 65535}]) {
        const q = encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId: Buffer.from('0123456789ab'), cookie: true}, {fingerprint: fp})
        assert.is(r.answer(q, from, via)!.data.toString('hex'), answer(cfg, q, from, via)!.data.toString('hex'), `fp=${fp} ${from.address}`)
      }
    }
  }
  const v6 = r.answer(req(), {address: '2001:db8::1', port: 5}, P)!
  assert.equal(decodeStun(v6.data).xorMapped, {address: '2001:db8::1', port: 5}, 'IPv6 clients take the general path')
})

test.run()
