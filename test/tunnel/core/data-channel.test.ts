import {randomBytes} from 'node:crypto'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../../src/lib/errors.js'
import {decodeData} from '../../../src/tunnel/codec/data-frame.js'
import {DATA_MACS, DataReceiver, DataSender, IntegrityError, referenceDigest, referenceMac, splitKeys} from '../../../src/tunnel/core/data-channel.js'
import {tryNative} from '../../../src/lib/io/native.js'
import {dataMac} from '../../../src/tunnel/io/data-mac.js'
import {fuzz, mutate, refusesOnly} from '../../helpers/fuzz.js'

const body = (frame: Buffer): Buffer => frame.subarray(8)

test('frames open in order; an altered, replayed, dropped or foreign-key frame fails', () => {
  const keys = splitKeys(randomBytes(64), 'portal')
  const gate = splitKeys(Buffer.concat([keys.send, keys.receive]), 'gate')
  assert.equal(gate.receive, keys.send)
  const tx = new DataSender(dataMac(keys.send))
  const f1 = tx.frame(0x0800, Buffer.from('first'))
  const f2 = tx.frame(0x0800, Buffer.from('second'))
  const f3 = tx.frame(0x0800, Buffer.from('third'))
  const rx = new DataReceiver(dataMac(gate.receive))
  assert.is(rx.open(body(f1)).datagram.toString(), 'first')
  const isIntegrity = (e: Error): boolean => e instanceof IntegrityError
  assert.throws(() => rx.open(body(f1)), isIntegrity, 'a replay fails')
  const altered = Buffer.from(f2)
  altered[altered.length - 1] ^= 1
  assert.throws(() => rx.open(body(altered)), isIntegrity, 'a flipped bit fails')
  assert.throws(() => rx.open(body(f3)), isIntegrity, 'skipping a frame fails')
  assert.is(rx.open(body(f2)).datagram.toString(), 'second')
  assert.throws(() => new DataReceiver(dataMac(randomBytes(32))).open(body(f1)), isIntegrity, 'another key fails')
})

test('fuzz: mutated DATA frames raise only CodecError or IntegrityError', () => {
  const key = randomBytes(32)
  const good = body(new DataSender(dataMac(key)).frame(0x0800, randomBytes(60)))
  fuzz('DATA receiver on mutated frames', (r) => {
    const b = mutate(r, good)
    refusesOnly('DataReceiver.open', b, () => new DataReceiver(dataMac(key)).open(b), [CodecError, IntegrityError])
  })
})

test('the digest is HMAC-SHA-256-128 over datagram and u64 counter, from the native addon', () => {
  assert.ok(tryNative(), 'the native addon is built')
  const key = randomBytes(32)
  const tx = new DataSender(dataMac(key))
  for (let i = 0; i < 300; i++) {
    const d = randomBytes(i * 5)
    assert.equal(decodeData(body(tx.frame(0x0800, d))).digest, referenceDigest(key, d, i), `frame ${i}`)
  }
})

test('the reference MAC and the native one open each other\'s frames', () => {
  const key = randomBytes(32)
  const native = new DataSender(dataMac(key))
  const reference = new DataSender(referenceMac(key))
  const rxNative = new DataReceiver(dataMac(key))
  const rxReference = new DataReceiver(referenceMac(key))
  for (let i = 0; i < 50; i++) {
    const d = randomBytes(i * 7)
    assert.equal(rxReference.open(body(native.frame(0x0800, d))).datagram, d)
    assert.equal(rxNative.open(body(reference.frame(0x0800, d))).datagram, d)
  }
})

test('both digests, with and without offload flags: native and reference agree, and the flags are covered', () => {
  const isIntegrity = (e: Error): boolean => e instanceof IntegrityError
  for (const alg of DATA_MACS) {
    const key = randomBytes(32)
    const native = new DataSender(dataMac(key, alg))
    const rxReference = new DataReceiver(referenceMac(key, alg))
    const rxNative = new DataReceiver(dataMac(key, alg))
    for (let i = 0; i < 40; i++) {
      const d = randomBytes(i * 97)
      const flags = i % 3 === 0 ? 0 : i % 3 === 1 ? 0x4000 : 0xc000 | (100 + i)
      const f = native.frame(0x0800, d, flags)
      assert.equal(decodeData(body(f)).digest, referenceDigest(key, d, i, flags, alg), `${alg} frame ${i}`)
      assert.equal(rxReference.open(body(f)), {protocol: 0x0800, flags, datagram: d})
      assert.is(rxNative.open(body(f)).flags, flags)
    }
    // The flags field altered in flight: the digest no longer matches.
    const tx = new DataSender(dataMac(key, alg))
    const f = tx.frame(0x0800, randomBytes(100), 0xc000 | 1448)
    f.writeUInt16BE(0xc000 | 64, 10)
    assert.throws(() => new DataReceiver(dataMac(key, alg)).open(body(f)), isIntegrity, `${alg}: altered flags fail`)
    const g = new DataSender(dataMac(key, alg)).frame(0x0800, randomBytes(100), 0)
    g.writeUInt16BE(0x4000, 10)
    assert.throws(() => new DataReceiver(dataMac(key, alg)).open(body(g)), isIntegrity, `${alg}: flags added in flight fail`)
  }
  // The two digests are not interchangeable.
  const key = randomBytes(32)
  const f = new DataSender(dataMac(key, 'aes256-gmac')).frame(0x0800, randomBytes(10))
  assert.throws(() => new DataReceiver(dataMac(key, 'hmac-sha256-128')).open(body(f)), isIntegrity)
})

test.run()
