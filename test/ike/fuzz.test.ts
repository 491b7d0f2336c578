import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {Exchange, PayloadType as P} from '../../src/ike/codec/constants.js'
import {decodeInner, decodeMessage, encodeInner, encodeMessage} from '../../src/ike/codec/message.js'
import {encodeChain} from '../../src/ike/codec/payload.js'
import {openProtected, openSk, sealSk, type SkKeys} from '../../src/ike/core/crypto.js'
import {fuzz, mutate, refusesOnly} from '../helpers/fuzz.js'
import {capturedMessages, ikeKeySets, keysFor, reconstructSas, saOf} from './fixtures.js'
import {innerPayloads, message, payload, PAYLOAD_KINDS, randomSkKeys, SK_SUITES} from './generators.js'

/**
 * The IKEv2 codec and SK protection on hostile input (seeded; TK_FUZZ_CASES each, 20 000 in CI):
 * decoders throw nothing but CodecError, what decodes re-encodes to the same value, and tampered
 * SK payloads never open.
 */
const t = suite('fuzz: ike')

const captured = capturedMessages()
const sas = reconstructSas(captured, ikeKeySets())
/** The captured SK messages with the keys that open them, and their decrypted inner chains. */
const protectedMsgs = captured.map((c) => ({raw: c.raw, m: decodeMessage(c.raw)})).filter((x) => x.m.exchange !== Exchange.IKE_SA_INIT).map((x) => ({raw: x.raw, keys: keysFor(saOf(sas, x.m), x.m)}))
// SKF fragments carry pieces of a chain; only whole SK chains are mutated as chains.
const innerChains = protectedMsgs.map((x) => openProtected(x.raw, x.keys)).filter((o) => o.encrypted.type === P.SK).map((o) => ({plain: o.plain, first: o.encrypted.inner}))

t('generated messages: decode(encode(m)) = m, and encoding again gives the same bytes', () => {
  fuzz('ike message round trip', (r) => {
    const m = message(r)
    const wire = encodeMessage(m)
    const d = decodeMessage(wire)
    assert.equal(d, m)
    assert.ok(encodeMessage(d).equals(wire))
  })
})

t('generated inner (SK) chains: decodeInner(encodeInner(x)) = x', () => {
  fuzz('ike inner round trip', (r) => {
    const ps = innerPayloads(r)
    const {first, bytes} = encodeInner(ps)
    assert.equal(decodeInner(bytes, first), ps)
  })
})

t('mutated captured and generated messages: CodecError or a message that re-encodes to itself', () => {
  fuzz('ike message mutated', (r) => {
    const base = r.chance(0.5) ? r.pick(captured).raw : encodeMessage(message(r))
    const input = mutate(r, base)
    const d = refusesOnly('decodeMessage', input, () => decodeMessage(input))
    if (d) assert.equal(decodeMessage(encodeMessage(d)), d)
  })
})

// One property per payload family: a chain holding one generated payload of that kind, mutated.
for (const [kind, name] of PAYLOAD_KINDS.entries()) {
  t(`mutated ${name} payloads: CodecError or a payload that re-encodes to itself`, () => {
    fuzz(`ike ${name} mutated`, (r) => {
      const {first, bytes} = encodeChain([payload(r, kind)])
      const input = mutate(r, bytes)
      const d = refusesOnly(`${name} payload`, input, () => decodeInner(input, first))
      if (d) assert.equal(decodeInner(encodeChain(d).bytes, first), d)
    })
  })
}

t('mutated decrypted inner chains of the capture: CodecError or a chain that re-encodes to itself', () => {
  fuzz('ike captured inner mutated', (r) => {
    const c = r.pick(innerChains)
    const input = mutate(r, c.plain)
    const d = refusesOnly('decodeInner', input, () => decodeInner(input, c.first))
    if (d) assert.equal(decodeInner(encodeInner(d).bytes, c.first), d)
  })
})

t('tampered captured SK messages never open: CodecError (INTEGRITY when only the bytes changed)', () => {
  fuzz('ike captured SK tampered', (r) => {
    const c = r.pick(protectedMsgs)
    const input = mutate(r, c.raw)
    const o = refusesOnly('openSk', input, () => openProtected(input, c.keys))
    if (o) assert.ok(input.equals(c.raw), 'only the untouched message opens')
  })
})

const KEYS: SkKeys[] = SK_SUITES.map(randomSkKeys)

t('generated SK messages of every suite: open(seal(x)) = x; tampered ones throw CodecError only', () => {
  fuzz('ike SK seal/open and tamper', (r) => {
    const k = r.pick(KEYS)
    const inner = innerPayloads(r, 4)
    const head = {spiI: r.bytes(8), spiR: r.bytes(8), exchange: Exchange.IKE_AUTH, flags: 8, messageId: r.u32()}
    const wire = sealSk(head, inner, k)
    assert.equal(openSk(wire, k).inner, inner)
    const input = mutate(r, wire)
    const o = refusesOnly('openSk', input, () => openProtected(input, k))
    if (o) assert.ok(input.equals(wire), 'only the untouched message opens')
  })
})

t('the SK payload is last: a payload after it, or one nested inside it, is refused', () => {
  const sk = {type: P.SK, inner: P.N, data: Buffer.alloc(40)} as const
  assert.throws(() => encodeInner([sk]), /encrypted payload inside/)
  assert.throws(() => decodeInner(encodeChain([sk]).bytes, P.SK), /inside an encrypted/)
  assert.throws(() => encodeChain([sk, {type: P.NONCE, data: Buffer.alloc(16)}]), /must be the last/)
})

t.run()
