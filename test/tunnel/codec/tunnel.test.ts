import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {FrameSplitter} from '../../../src/tunnel/codec/frame.js'
import {decodeKv, decodeTunnel, encodeKv, encodeTunnel, type TunnelFrame} from '../../../src/tunnel/codec/tunnel.js'

const hex = (s: string): string => s.replace(/\s+/g, '')

const vectors: [string, TunnelFrame, string][] = [
  ['RELAY', {kind: 'relay', origin: 'a', path: ['g']}, '0000000a 0010 0001  0000 0001 0002 61006700'],
  ['RELAY two hops', {kind: 'relay', origin: 'a', path: ['r', 'g']}, '0000000e 0010 0001  0000 0002 0002 0004 610072006700'],
  // HOPS after the string buffer: as the portal sends it, and as relay r forwards it (docs/protocol.md).
  ['RELAY with HOPS 0', {kind: 'relay', origin: 'a', path: ['r', 'g'], hops: 0}, '0000000f 0010 0001  0000 0002 0002 0004 610072006700 00'],
  ['RELAY with HOPS 1', {kind: 'relay', origin: 'a', path: ['r', 'g'], hops: 1}, '0000000f 0010 0001  0000 0002 0002 0004 610072006700 01'],
  ['REQUEST', {kind: 'request', user: 'u', destination: 'd', keyExchange: 'k', transforms: 1, flags: 0, clientData: 's=1'},
    '00000016 0011 0001  0000 0002 0004 0001 0000 0006 7500 6400 6b00 733d3100'],
  ['RESPONSE', {kind: 'response', keyExchange: 'k', transforms: 1, flags: 0, clientData: 'i=a', keyLifetime: 3600},
    '00000012 0012 0001  0000 0001 0000 0002 00000e10 6b00 693d6100'],
  ['CLOSE', {kind: 'close', status: 2, reason: 'no'}, '00000005 0014 0001  0002 6e6f00'],
  ['PING', {kind: 'ping', nonce: Buffer.from('0102030405060708', 'hex')}, '00000008 0015 0001  0102030405060708'],
  ['PONG', {kind: 'pong', nonce: Buffer.from('0102030405060708', 'hex')}, '00000008 0016 0001  0102030405060708'],
]

for (const [name, frame, bytes] of vectors) {
  test(`${name}: encodes byte-exact and decodes back`, () => {
    const wire = encodeTunnel(frame)
    assert.is(wire.toString('hex'), hex(bytes))
    const [raw] = new FrameSplitter(4096).push(wire)
    const back = decodeTunnel(raw)
    const norm = (f: TunnelFrame): unknown => ('nonce' in f ? {...f, nonce: f.nonce.toString('hex')} : f)
    assert.equal(norm(back), norm(frame))
  })
}

test('a frame with another protocol version is refused with a VERSION error', () => {
  assert.throws(() => decodeTunnel({type: 20, id: 2, body: Buffer.from('000000', 'hex')}), (e: Error & {code?: string}) => e.code === 'VERSION')
})

test('RELAY paths longer than 8 nodes are refused both ways', () => {
  assert.throws(() => encodeTunnel({kind: 'relay', origin: 'a', path: Array(9).fill('x')}))
  const body = Buffer.concat([Buffer.from('00000009', 'hex'), Buffer.alloc(18), Buffer.from('6100', 'hex')])
  assert.throws(() => decodeTunnel({type: 16, id: 1, body}), /1 to 8/)
})

test('RELAY HOPS: found after the string that ends last, whatever the offsets order; more than one byte is refused', () => {
  // Origin stored after the path strings: the buffer still ends with the last NUL.
  const body = Buffer.from('0002 0001 0000 6700 6100 05'.replace(/ /g, ''), 'hex')
  assert.equal(decodeTunnel({type: 16, id: 1, body}), {kind: 'relay', origin: 'a', path: ['g'], hops: 5})
  const two = Buffer.concat([body, Buffer.from([0])])
  assert.throws(() => decodeTunnel({type: 16, id: 1, body: two}), (e: Error & {code?: string}) => e.code === 'BAD_PATH')
  for (const hops of [-1, 256, 1.5]) assert.throws(() => encodeTunnel({kind: 'relay', origin: 'a', path: ['g'], hops}))
})

test('client data key=value lines round-trip and refuse newlines in values', () => {
  const pairs: [string, string][] = [['service', 'stream'], ['remote-forward', '127.0.0.1:8080']]
  assert.equal(decodeKv(encodeKv(pairs)), pairs)
  assert.throws(() => encodeKv([['a', 'b\nc']]))
})

test.run()
