import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../../src/lib/errors.js'
import {decodeData, encodeData} from '../../../src/tunnel/codec/data-frame.js'

const body = (frame: Buffer): Buffer => frame.subarray(8)
const hex = (s: string): string => s.replace(/\s+/g, '')

test('DATA frame layout is byte-exact', () => {
  const f = encodeData({protocol: 0x0800, flags: 0, digest: Buffer.from('aabb', 'hex'), datagram: Buffer.from('45', 'hex'), padding: 1})
  assert.is(f.toString('hex'), hex('0000000c 0013 0001  0800 0000 0001 01 02  aabb 45 00'))
  assert.equal(decodeData(body(f)), {protocol: 0x0800, flags: 0, digest: Buffer.from('aabb', 'hex'), datagram: Buffer.from('45', 'hex'), padding: 1})
  assert.throws(() => decodeData(body(f).subarray(0, 10)), (e: Error) => e instanceof CodecError)
})

// Round trips and hostile input: test/fuzz/codecs.test.ts.

test.run()
