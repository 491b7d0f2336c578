import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {decodeStun, encodeStun, StunMethod} from '../../src/stun/codec/message.js'
import {answer, Responder, type ServerConfig, type Via} from '../../src/stun/core/responder.js'
import {fuzz, mutate, type Rng} from '../helpers/fuzz.js'
import {ipv6, stunMessage} from './generators.js'

/**
 * The STUN server's fast path (Responder: per-socket templates patched in place) against the
 * general answer(): for any datagram from any client, on any socket, the same answer byte for
 * byte; never an exception; and PADDING (RFC 5780 section 7.6) never makes an answer larger than its request.
 */
const t = suite('fuzz: STUN responder fast path')

const configs: ServerConfig[] = [
  {primary: {address: '203.0.113.10', port: 3478}, alternate: {address: '198.51.100.10', port: 3479}, software: 'tunkit'},
  {primary: {address: '203.0.113.10', port: 3478}, alternate: {address: '198.51.100.10', port: 3479}},
  {primary: {address: '203.0.113.10', port: 3478}, software: 'odd'},
  {primary: {address: '2001:db8::10', port: 3478}, alternate: {address: '2001:db8::11', port: 3479}, software: 'x'},
]

/** Mostly what the fast path takes (a plain Binding request, maybe with FINGERPRINT), else anything. */
function datagram(r: Rng): Buffer {
  const plain = encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId: r.bytes(12), cookie: true}, {fingerprint: r.chance(0.5)})
  switch (r.below(5)) {
    case 0: case 1: return plain
    case 2: return mutate(r, plain)
    case 3: return encodeStun({...stunMessage(r), klass: r.chance(0.8) ? 'request' : 'success'}, {fingerprint: r.chance(0.5)})
    default: return mutate(r, encodeStun(stunMessage(r), {fingerprint: r.chance(0.5)}))
  }
}

t('Responder.answer equals answer() for every datagram, client and socket', () => {
  const responders = configs.map((c) => new Responder(c))
  fuzz('stun fast path equals answer()', (r) => {
    const k = r.below(configs.length)
    const d = datagram(r)
    // The client's address as the socket reports it: dotted quad, or IPv6 on a dual-stack socket.
    const from = {address: r.chance(0.8) ? r.ipv4() : r.chance(0.5) ? `::ffff:${r.ipv4()}` : ipv6(r), port: r.int(1, 65535)}
    const on: Via = {altIp: r.chance(0.3), altPort: r.chance(0.3)}
    const fast = responders[k].answer(d, from, on)
    assert.equal(fast, answer(configs[k], d, from, on))
    if (!fast) return
    const m = decodeStun(fast.data)
    const req = decodeStun(d) // answered, so it decodes
    assert.is(m.klass === 'success' || m.klass === 'error', true)
    assert.equal(m.transactionId, req.transactionId)
    if (m.padding) assert.ok(req.padding && fast.data.length <= d.length, 'PADDING is echoed only within the size of the request')
  })
})

t.run()
