import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {FrameSplitter} from '../../../src/tunnel/codec/frame.js'
import {decodeUsher, encodeUsher, type UsherRecord} from '../../../src/tunnel/codec/usher.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

// Byte-exact vectors for every record type (docs/protocol.md; seed 001 layouts).
const vectors: [string, UsherRecord, string][] = [
  ['UsherOpen IPv4', {kind: 'open', session: 1, protocol: 'tcp', host: '198.18.0.1', port: 22}, '0000000a 0001 0001  0006 0001 0016 c6120001'],
  ['UsherOpen hostname', {kind: 'open', session: 2, protocol: 'tcp', host: 'ab', port: 80}, '00000009 0001 0002  0006 0002 0050 616200'],
  ['UsherOpen IPv6', {kind: 'open', session: 3, protocol: 'tcp', host: '2001:db8::1', port: 443}, '00000016 0001 0003  0006 0003 01bb 20010db8000000000000000000000001'],
  ['UsherOpen UDP', {kind: 'open', session: 4, protocol: 'udp', host: '198.18.0.53', port: 53}, '0000000a 0001 0004  0011 0001 0035 c6120035'],
  ['UsherOpenReply ok', {kind: 'open-reply', session: 1, rc: 5}, '00000002 ffff 0001  0005'],
  ['UsherOpenReply failed', {kind: 'open-reply', session: 1, rc: -1, reason: 'refused: x'}, '0000000d ffff 0001  ffff 726566757365643a207800'],
  ['UsherClose READ', {kind: 'close', session: 3, direction: 'read'}, '00000002 0002 0003  0000'],
  ['UsherClose WRITE', {kind: 'close', session: 3, direction: 'write'}, '00000002 0002 0003  0001'],
  ['UsherClose BOTH', {kind: 'close', session: 3, direction: 'both'}, '00000002 0002 0003  0002'],
  ['UsherSend', {kind: 'send', session: 7, data: Buffer.from('hi')}, '00000002 0003 0007  6869'],
  ['UsherSendUdp', {kind: 'send-udp', session: 2, addr: '198.18.0.1', port: 53, remoteAddr: '198.18.0.2', remotePort: 5353, data: Buffer.from('q')}, '0000000d 0004 0002  c6120001 0035 c6120002 14e9 71'],
  ['UsherAck', {kind: 'ack', session: 9, size: 65535}, '00000002 0005 0009  ffff'],
  ['UsherEnd', {kind: 'end', session: 1, reason: 'bye'}, '00000004 0006 0001  62796500'],
  ['UsherRST', {kind: 'rst', session: 1, reason: 'x'}, '00000002 0007 0001  7800'],
]

for (const [name, rec, bytes] of vectors) {
  test(`${name}: encodes byte-exact and decodes back`, () => {
    const wire = encodeUsher(rec)
    assert.is(wire.toString('hex'), hex(bytes).toString('hex'))
    const [f] = new FrameSplitter(1 << 16).push(wire)
    const back = decodeUsher(f)
    assert.equal({...back, ...('data' in back ? {data: back.data.toString('hex')} : {})}, {...rec, ...('data' in rec ? {data: rec.data.toString('hex')} : {})})
  })
}

test('the splitter reassembles frames cut at every byte boundary', () => {
  const wire = Buffer.concat(vectors.map(([, r]) => encodeUsher(r)))
  for (let cut = 1; cut < wire.length; cut++) {
    const s = new FrameSplitter(1 << 16)
    const frames = [...s.push(wire.subarray(0, cut)), ...s.push(wire.subarray(cut))]
    assert.is(frames.length, vectors.length, `cut at ${cut}`)
    assert.is(s.buffered, 0)
  }
})

test('streamed UsherSend bodies come out in pieces that add up to the record, at every cut', () => {
  const data = Buffer.from(Array.from({length: 300}, (_, i) => i & 255))
  const wire = Buffer.concat([encodeUsher({kind: 'ack', session: 1, size: 5}), encodeUsher({kind: 'send', session: 4, data}), encodeUsher({kind: 'rst', session: 1, reason: 'x'})])
  for (let cut = 1; cut < wire.length; cut += 7) {
    const s = new FrameSplitter(1 << 16, new Set([3]))
    const frames = [...s.push(wire.subarray(0, cut)), ...s.push(wire.subarray(cut, cut + 100)), ...s.push(wire.subarray(cut + 100))]
    const pieces = frames.filter((f) => f.type === 3)
    assert.equal(Buffer.concat(pieces.map((p) => p.body)), data, `cut at ${cut}`)
    assert.ok(pieces.slice(0, -1).every((p) => p.more) && !pieces[pieces.length - 1].more)
    if (pieces.length > 1) assert.is(pieces[0].total, 300)
    assert.ok(pieces.slice(1).every((p) => p.continued))
    assert.equal(frames.map((f) => f.type).filter((t) => t !== 3), [5, 7])
  }
})

test('the splitter refuses an oversized frame before buffering it', () => {
  const s = new FrameSplitter(100)
  assert.throws(() => s.push(hex('00000065 0003 0001')), (e: Error) => e.name === 'CodecError' && /exceeds/.test(e.message))
})

test('IPv6 addresses are compressed as RFC 5952 says', () => {
  const [f] = new FrameSplitter(1 << 16).push(encodeUsher({kind: 'open', session: 1, protocol: 'tcp', host: '2001:db8:0:0:1:0:0:1', port: 1}))
  assert.is((decodeUsher(f) as {host: string}).host, '2001:db8::1:0:0:1')
})

test.run()
