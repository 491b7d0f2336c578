import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../../src/lib/errors.js'
import {MAX_RELAY_FRAME, parseClearFrame} from '../../../src/tunnel/codec/clear-frame.js'
import {decodeHeader, encodeFrame} from '../../../src/tunnel/codec/frame.js'
import {encodeTunnel, TunnelType} from '../../../src/tunnel/codec/tunnel.js'

const RELAY = [TunnelType.RELAY]
const relay = encodeTunnel({kind: 'relay', origin: 'portal', path: ['198.51.100.7:4433', 'gate']})
const code = (c: string) => (e: Error & {code?: string}): boolean => e instanceof CodecError && e.code === c

test('decodeHeader reads length, type and id', () => {
  assert.equal(decodeHeader(Buffer.from('0000000a0010000199', 'hex')), {length: 10, type: 16, id: 1})
  assert.equal(decodeHeader(Buffer.from('ff0000000affec0002', 'hex'), 1), {length: 10, type: -20, id: 2})
})

test('a RELAY frame and the bytes after it, from every split point', () => {
  const tail = Buffer.from('\x16\x03\x01rest', 'latin1')
  const all = Buffer.concat([relay, tail])
  for (let cut = 0; cut < relay.length; cut++) assert.is(parseClearFrame(all.subarray(0, cut), RELAY, 'RELAY frame'), null, `need more at ${cut}`)
  const r = parseClearFrame(all, RELAY, 'RELAY frame')!
  assert.equal(r.frame, {kind: 'relay', origin: 'portal', path: ['198.51.100.7:4433', 'gate']})
  assert.equal(r.wire, relay)
  assert.equal(r.rest, tail)
})

test('a TLS ClientHello instead of a RELAY frame is refused at its first byte', () => {
  assert.throws(() => parseClearFrame(Buffer.from([0x16]), RELAY, 'RELAY frame'), code('NO_RELAY'))
})

test('a body over the limit is refused from the header alone', () => {
  const head = encodeFrame(TunnelType.RELAY, 1, Buffer.alloc(MAX_RELAY_FRAME + 1)).subarray(0, 8)
  assert.throws(() => parseClearFrame(head, RELAY, 'RELAY frame'), (e: Error) => code('FRAME_TOO_LARGE')(e) && /4097 bytes/.test(e.message))
  assert.is(parseClearFrame(encodeFrame(TunnelType.RELAY, 1, Buffer.alloc(MAX_RELAY_FRAME)).subarray(0, 8), RELAY, 'RELAY frame'), null)
})

test('a type not accepted is refused from the header alone; CLOSE when accepted', () => {
  const close = encodeTunnel({kind: 'close', status: 2, reason: 'no'})
  assert.throws(() => parseClearFrame(close.subarray(0, 8), RELAY, 'RELAY frame'), (e: Error) => code('NO_RELAY')(e) && /got frame type 20/.test(e.message))
  assert.equal(parseClearFrame(close, [TunnelType.RELAY, TunnelType.CLOSE], 'answer')!.frame, {kind: 'close', status: 2, reason: 'no'})
})

test('a malformed body raises the tunnel codec\'s CodecError', () => {
  assert.throws(() => parseClearFrame(encodeFrame(TunnelType.RELAY, 1, Buffer.from('0000', 'hex')), RELAY, 'RELAY frame'), (e: Error) => e instanceof CodecError)
  assert.throws(() => parseClearFrame(encodeFrame(TunnelType.RELAY, 2, relay.subarray(8)), RELAY, 'RELAY frame'), code('VERSION'))
})

test.run()
