import {createHash, createHmac} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../../src/lib/errors.js'
import {decodeStun, encodeStun, HEADER, looksLikeStun, mappedOf, StunMethod} from '../../../src/stun/codec/message.js'

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

// ---- RFC 5769 test vectors (test/vectors/stun/) ----

const vector = (name: string): Buffer => readFileSync(`test/vectors/stun/rfc5769-${name}.bin`)
const TXID = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex')
const SHORT_TERM_PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt'

/**
 * The codec has no MESSAGE-INTEGRITY: it is checked here, with node:crypto, to prove the bytes
 * and the codec's framing. HMAC-SHA1 over the message up to the attribute, with the header's
 * length counting up to the end of it (RFC 8489 section 14.5).
 */
function integrityOk(b: Buffer, key: Buffer | string): boolean {
  let off = HEADER
  while (off + 24 <= b.length && b.readUInt16BE(off) !== 0x0008) off += 4 + ((b.readUInt16BE(off + 2) + 3) & ~3)
  if (off + 24 > b.length || b.readUInt16BE(off + 2) !== 20) return false
  const signed = Buffer.from(b.subarray(0, off))
  signed.writeUInt16BE(off + 24 - HEADER, 2)
  return createHmac('sha1', key).update(signed).digest().equals(b.subarray(off + 4, off + 24))
}

test('RFC 5769 2.1 sample request: decodes, FINGERPRINT and MESSAGE-INTEGRITY verify; PRIORITY, USERNAME, MESSAGE-INTEGRITY are unknown here', () => {
  const b = vector('2.1-request')
  const m = decodeStun(b)
  assert.equal([m.method, m.klass, m.cookie, m.transactionId], [StunMethod.BINDING, 'request', true, TXID])
  assert.is(m.software, 'STUN test client')
  assert.is(m.fingerprint, true)
  // A server without ICE answers these with 420 (RFC 8489 section 7.3.1); ICE-CONTROLLED is optional.
  assert.equal(m.unknownRequired, [0x0024, 0x0006, 0x0008])
  assert.ok(integrityOk(b, SHORT_TERM_PASSWORD))
  assert.is(b.toString('latin1', 64, 73), 'evtj:h6vY', 'USERNAME, read by hand')
})

for (const [name, family, address] of [['2.2-response-ipv4', 1, '192.0.2.1'], ['2.3-response-ipv6', 2, '2001:db8:1234:5678:11:2233:4455:6677']] as const) {
  test(`RFC 5769 ${name}: XOR-MAPPED-ADDRESS ${address} port 32853, FINGERPRINT and MESSAGE-INTEGRITY verify; the codec XORs the same bytes`, () => {
    const b = vector(name)
    const m = decodeStun(b)
    assert.equal([m.method, m.klass, m.transactionId], [StunMethod.BINDING, 'success', TXID])
    assert.is(m.software, 'test vector')
    assert.equal(m.xorMapped, {address, port: 32853})
    assert.equal(m.unknownRequired, [0x0008])
    assert.is(m.fingerprint, true)
    assert.ok(integrityOk(b, SHORT_TERM_PASSWORD))
    // Encoding the same address gives the vector's attribute byte for byte (it follows the 16-byte SOFTWARE).
    const attr = b.subarray(HEADER + 16, HEADER + 16 + (family === 1 ? 12 : 24))
    const ours = encodeStun({method: StunMethod.BINDING, klass: 'success', transactionId: TXID, cookie: true, xorMapped: {address, port: 32853}})
    assert.equal(ours.subarray(HEADER), attr)
  })
}

test('RFC 5769 2.4 long-term credentials: decodes; MESSAGE-INTEGRITY verifies with MD5(user:realm:SASLprep(password)); the codec knows neither USERNAME, NONCE, REALM nor SASLprep', () => {
  const b = vector('2.4-request-long-term')
  const m = decodeStun(b)
  assert.equal([m.method, m.klass, m.transactionId], [StunMethod.BINDING, 'request', Buffer.from('78ad3433c6ad72c029da412e', 'hex')])
  assert.equal(m.unknownRequired, [0x0006, 0x0015, 0x0014, 0x0008])
  assert.is(m.fingerprint, undefined)
  // The RFC's password has a soft hyphen (mapped to nothing, RFC 4013 B.1) and U+00AA (NFKC: "a").
  const password = 'The\u00adM\u00aatrIX'.replace(/\u00ad/g, '').normalize('NFKC')
  assert.is(password, 'TheMatrIX')
  const key = createHash('md5').update(`\u30de\u30c8\u30ea\u30c3\u30af\u30b9:example.org:${password}`).digest()
  assert.ok(integrityOk(b, key))
})

test('RFC 5769 vectors: any changed bit is a CodecError (FINGERPRINT), or at least breaks MESSAGE-INTEGRITY', () => {
  const b = vector('2.1-request')
  for (let i = 0; i < (b.length - 8) * 8; i++) {
    const bad = Buffer.from(b)
    bad[i >> 3] ^= 1 << (i & 7)
    let decoded = false
    try {
      decodeStun(bad)
      decoded = true
    } catch (e) {
      assert.instance(e, CodecError)
    }
    if (decoded) assert.not.ok(integrityOk(bad, SHORT_TERM_PASSWORD), `bit ${i}`)
  }
})

// Hostile datagrams: test/fuzz/codecs.test.ts ("STUN decoder refuses bad bytes only with CodecError").

test.run()
