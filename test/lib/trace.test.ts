import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {traceKind, traceKinds} from '../../src/lib/trace/registry.js'
import {Tracer} from '../../src/lib/trace/tracer.js'
import {encodeTunnel} from '../../src/tunnel/codec/tunnel.js'
import {encodeUsher, type UsherRecord} from '../../src/tunnel/codec/usher.js'
import {TUNNEL_TRACE, USHER_TRACE} from '../../src/tunnel/trace.js'
import {STUN_TRACE} from '../../src/stun/trace.js'
import {ETHERNET_TRACE} from '../../src/inet/trace.js'
import {decodeStun, encodeStun} from '../../src/stun/codec/message.js'

const both = (): {text: string[]; json: string[]; t: Tracer; j: Tracer} => {
  const text: string[] = []
  const json: string[] = []
  return {text, json, t: new Tracer('text', (l) => text.push(l)), j: new Tracer('json', (l) => json.push(l))}
}

test('every protocol registers its renderer under one name', () => {
  for (const k of [TUNNEL_TRACE, USHER_TRACE, STUN_TRACE, ETHERNET_TRACE]) assert.is(traceKind(k.name), k)
  assert.ok(['tunnel', 'usher', 'stun', 'ethernet'].every((n) => traceKinds().includes(n)))
})

test('text and JSON come from one record: peer an address, identity its own field, len the wire size', () => {
  const {text, json, t, j} = both()
  const r: UsherRecord = {kind: 'open', session: 3, protocol: 'tcp', host: 'intranet.example', port: 443}
  const wire = encodeUsher(r)
  for (const tr of [t, j]) tr.trace('in', '[::1]:4433', USHER_TRACE, r, wire.length, 'alice')
  const rec = JSON.parse(json[0])
  assert.equal({...rec, time: 'T'}, {time: 'T', dir: 'in', peer: '[::1]:4433', type: 'UsherOpen', len: wire.length, identity: 'alice', session: 3, proto: 'tcp', addr: 'intranet.example', port: 443})
  assert.match(text[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z /)
  assert.is(text[0].slice(text[0].indexOf(' ') + 1), `<- [::1]:4433 UsherOpen len=${wire.length} identity=alice session=3 proto=tcp addr=intranet.example port=443`)
})

test('len means the same in every protocol: the whole message, header included', () => {
  const {json, j} = both()
  const close = {kind: 'close' as const, status: 2, reason: 'no'}
  j.trace('out', '127.0.0.1:1', TUNNEL_TRACE, close, encodeTunnel(close).length)
  const stun = encodeStun({method: 1, klass: 'request', transactionId: Buffer.alloc(12, 1), cookie: true})
  j.trace('out', '127.0.0.1:3478', STUN_TRACE, decodeStun(stun), stun.length)
  const [c, s] = json.map((l) => JSON.parse(l))
  assert.is(c.len, 8 + 2 + 3, 'CLOSE: 8-byte header, status, reason with its NUL')
  assert.is(s.len, 20, 'STUN Binding request without attributes: its 20-byte header')
  assert.is(s.type, 'Binding request')
})

test.run()
