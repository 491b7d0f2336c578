import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {classifyUdp, espOpen, espSeal, espSuite, NextHeader} from '../../../src/esp/codec/esp.js'
import {Encr, Integ} from '../../../src/ike/codec/constants.js'
import {CodecError} from '../../../src/lib/errors.js'
import {CASES, fuzz, mutate, refusesOnly} from '../../helpers/fuzz.js'
import {ipv4, suites} from '../suites.js'

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f()
    return undefined
  } catch (e) {
    if (!(e instanceof CodecError)) throw e
    return e.code
  }
}

for (const c of suites()) {
  test(`${c.name}: seal and open round-trip for every length of a padding cycle; layout, padding and ICV as RFC 4303 §2 says`, () => {
    const info = espSuite(c.suite)
    for (let len = 28; len < 68; len++) {
      const inner = ipv4('198.18.1.10', '198.18.200.5', Buffer.alloc(len - 28, len))
      const p = espSeal(c, {spi: 0x01020304, seq: len, payload: inner})
      assert.equal(p.subarray(0, 8), Buffer.from([1, 2, 3, 4, 0, 0, 0, len]), 'SPI and sequence number in clear')
      const ct = p.length - 8 - info.ivLen - info.icvLen
      assert.is(ct % info.block, 0, 'whole blocks / words')
      assert.ok(ct - inner.length - 2 < info.block, 'the least padding')
      const o = espOpen(c, p)
      assert.equal(o.payload, inner)
      assert.is(o.nextHeader, NextHeader.IPV4)
      assert.is(o.seq, len)
    }
  })

  test(`${c.name}: every flipped byte fails the ICV (or names the SPI/sequence it changed), every cut is refused`, () => {
    const p = espSeal(c, {spi: 0x01020304, seq: 9, payload: ipv4('198.18.1.10', '198.18.200.5')})
    for (let at = 0; at < p.length; at++) {
      const bad = Buffer.from(p)
      bad[at] ^= 1
      assert.is(codeOf(() => espOpen(c, bad)), 'INTEGRITY', `byte ${at}`)
    }
    for (let len = 0; len < p.length; len++) assert.ok(codeOf(() => espOpen(c, p.subarray(0, len))), `cut at ${len}`)
    assert.is(codeOf(() => espOpen(c.reverse, p)), 'INTEGRITY', 'the other direction\'s keys')
  })
}

test('padding checks: contents other than 1, 2, 3… and a pad length beyond the plaintext are BAD_PADDING', () => {
  const c = suites()[0]
  const inner = ipv4('198.18.1.10', '198.18.200.5', Buffer.alloc(2))
  assert.is(codeOf(() => espOpen(c, espSeal(c, {spi: 1000, seq: 1, payload: inner, padding: Buffer.from([1, 3])}))), 'BAD_PADDING')
  assert.is(codeOf(() => espOpen(c, espSeal(c, {spi: 1000, seq: 1, payload: inner, padLength: 250}))), 'BAD_PADDING')
  assert.equal(espOpen(c, espSeal(c, {spi: 1000, seq: 1, payload: inner, extraPad: 8})).payload, inner, 'more padding than needed is fine')
  assert.is(espOpen(c, espSeal(c, {spi: 1000, seq: 1, payload: Buffer.alloc(0), nextHeader: NextHeader.DUMMY})).nextHeader, 59)
})

test('suites: the ones issue 11 lists, nothing else (AEAD with an integrity algorithm, CBC without, 3DES, 192-bit AES)', () => {
  assert.is(espSuite({encr: Encr.AES_GCM_16, encrKeyBits: 128}).keyLen, 20, 'AES-GCM: key and 4-byte salt')
  assert.is(espSuite({encr: Encr.CHACHA20_POLY1305}).keyLen, 36)
  assert.equal([Integ.HMAC_SHA1_96, Integ.HMAC_SHA2_256_128, Integ.HMAC_SHA2_384_192, Integ.HMAC_SHA2_512_256].map((integ) => espSuite({encr: Encr.AES_CBC, encrKeyBits: 128, integ}).icvLen), [12, 16, 24, 32], 'RFC 4868 truncation')
  for (const s of [{encr: Encr.AES_GCM_16, encrKeyBits: 256, integ: Integ.HMAC_SHA2_256_128}, {encr: Encr.AES_CBC, encrKeyBits: 256}, {encr: Encr.TRIPLE_DES}, {encr: Encr.AES_CBC, encrKeyBits: 192, integ: Integ.HMAC_SHA1_96}]) {
    assert.is(codeOf(() => espSuite(s)), 'UNSUPPORTED', JSON.stringify(s))
  }
})

test('UDP encapsulation (RFC 3948): the non-ESP marker is IKE, 0xFF alone a keepalive, else ESP with its SPI first', () => {
  assert.equal(classifyUdp(Buffer.from([0xff])), {kind: 'keepalive'})
  assert.equal(classifyUdp(Buffer.from('00000000abcd', 'hex')), {kind: 'ike', data: Buffer.from('abcd', 'hex')})
  assert.equal(classifyUdp(Buffer.from('c0000001000000070102', 'hex')), {kind: 'esp', spi: 0xc0000001, seq: 7})
  for (const d of ['', 'fe', 'ffff', '000000', 'c0000001000000']) assert.equal(classifyUdp(Buffer.from(d, 'hex')), {kind: 'malformed'}, d)
})

const cs = suites()
const samples = cs.map((c, i) => espSeal(c, {spi: 0x1000 + i, seq: 3, payload: ipv4('198.18.1.10', '198.18.200.5')}))
test(`fuzz: espOpen and classifyUdp on ${CASES} mutated packets of every suite: a CodecError or a result, and no mutation opens`, () => fuzz('esp codec', (r) => {
  const i = r.below(cs.length)
  const d = r.chance(0.1) ? r.bytes(r.length(120)) : mutate(r, samples[i])
  classifyUdp(d)
  const o = refusesOnly('espOpen', d, () => espOpen(cs[i], d))
  if (o && !d.equals(samples[i])) throw new Error(`a mutation opened: ${d.toString('hex')}`)
}))

test.run()
