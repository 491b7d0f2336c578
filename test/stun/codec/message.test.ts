import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../../src/lib/errors.js'
import {crc32} from '../../../src/lib/crc32.js'
import {decodeStun, encodeStun, looksLikeStun, mappedOf, StunMethod} from '../../../src/stun/codec/message.js'

// Expected bytes were produced by an independent Python implementation (struct + zlib.crc32).
const txid = Buffer.from([...Array(12).keys()])
const base = {method: StunMethod.BINDING, transactionId: txid, cookie: true}

const vectors: [string, Parameters<typeof encodeStun>[0], boolean, string][] = [
  ['Binding success, IPv4, RFC 5780 attributes, SOFTWARE, FINGERPRINT', {
    ...base, klass: 'success',
    xorMapped: {address: '192.0.2.1', port: 32853}, mapped: {address: '192.0.2.1', port: 32853},
    responseOrigin: {address: '198.51.100.10', port: 3478}, otherAddress: {address: '198.51.100.11', port: 3479}, software: 'tunkit',
  }, true, '010100442112a442000102030405060708090a0b002000080001a147e112a6430001000800018055c0000201802b000800010d96c633640a802c000800010d97c633640b8022000674756e6b6974000080280004e5e695ff'],
  ['Binding request with CHANGE-REQUEST (IP and port)', {...base, klass: 'request', changeRequest: {ip: true, port: true}}, true,
    '000100102112a442000102030405060708090a0b000300040000000680280004dbc88c4a'],
  ['Binding success, IPv6 XOR-MAPPED-ADDRESS', {...base, klass: 'success', xorMapped: {address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853}}, true,
    '010100202112a442000102030405060708090a0b002000140002a1470113a9fa1235547b041424344c5c6c7c802800041b23e875'],
  ['Binding error 420 with UNKNOWN-ATTRIBUTES', {...base, klass: 'error', error: {code: 420, reason: 'Unknown Attribute'}, unknown: [0x31]}, false,
    '011100242112a442000102030405060708090a0b0009001500000414556e6b6e6f776e20417474726962757465000000000a000200310000'],
  ['classic RFC 3489 Binding request (no magic cookie)', {...base, klass: 'request', cookie: false}, false,
    '0001000000000000000102030405060708090a0b'],
]

test('CRC-32 matches zlib ("123456789" → cbf43926)', () => {
  assert.is(crc32(Buffer.from('123456789')).toString(16), 'cbf43926')
})

for (const [name, msg, fingerprint, hex] of vectors) {
  test(`${name}: byte-exact both ways`, () => {
    const wire = encodeStun(msg, {fingerprint})
    assert.is(wire.toString('hex'), hex)
    assert.ok(looksLikeStun(wire))
    const back = decodeStun(wire)
    assert.is(back.klass, msg.klass)
    assert.is(back.cookie, msg.cookie)
    assert.equal(back.transactionId, txid)
    assert.equal(mappedOf(back), msg.xorMapped ?? msg.mapped)
    for (const k of ['mapped', 'responseOrigin', 'otherAddress', 'changeRequest', 'software', 'error', 'unknown'] as const) {
      assert.equal(back[k], msg[k], k)
    }
    assert.is(back.fingerprint, fingerprint ? true : undefined)
  })
}

test('a corrupted FINGERPRINT, a bad length and attributes after FINGERPRINT are CodecErrors', () => {
  const wire = encodeStun(vectors[0][1], {fingerprint: true})
  const bad = Buffer.from(wire)
  bad[30] ^= 1
  assert.throws(() => decodeStun(bad), (e: Error) => e instanceof CodecError && /FINGERPRINT/.test(e.message))
  assert.throws(() => decodeStun(wire.subarray(0, wire.length - 4)), (e: Error) => e instanceof CodecError)
  const after = Buffer.concat([wire, Buffer.from('80220000', 'hex')])
  after.writeUInt16BE(after.length - 20, 2)
  assert.throws(() => decodeStun(after), (e: Error) => e instanceof CodecError)
})

test('unknown comprehension-required attributes are reported, optional ones ignored', () => {
  const wire = Buffer.from('000100102112a442000102030405060708090a0b0031000400000000c0ff000400000000', 'hex')
  assert.equal(decodeStun(wire).unknownRequired, [0x31])
})

test(`fuzz: mutated and random datagrams raise only CodecError`, () => {
  let seed = 5780
  const r = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000)
  const seeds = vectors.map(([, m, fp]) => encodeStun(m, {fingerprint: fp}))
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.from(seeds[Math.floor(r() * seeds.length)])
    for (let k = 0; k < 1 + r() * 4; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256)
    const input = r() < 0.2 ? b.subarray(0, Math.floor(r() * b.length)) : b
    try {
      decodeStun(input)
    } catch (e) {
      if (!(e instanceof CodecError)) assert.unreachable(`${(e as Error).name}: ${(e as Error).message} on ${input.toString('hex')}`)
    }
  }
})

test.run()
