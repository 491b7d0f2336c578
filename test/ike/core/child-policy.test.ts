import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError, TunkitError} from '../../../src/lib/errors.js'
import {CfgAttr, CfgType, Encr, Esn, Integ, ProtocolId, TransformType as T} from '../../../src/ike/codec/constants.js'
import {decodeCp, decodeCpPolicy, encodeCp, encodeCpPolicy, MAX_POLICY_PROPOSALS, MAX_POLICY_TRANSFORMS, TUNKIT_POLICY, type CpPolicy} from '../../../src/ike/codec/cp.js'
import {parseProposals, policyFromTransforms, policyTransforms} from '../../../src/ike/core/proposals.js'
import {fuzz, mutate, refusesOnly, type Rng} from '../../helpers/fuzz.js'

/**
 * The tunkit private-use CP attribute (0x5471, docs/ike.md "Configuration push"): the documented
 * bytes, its bounds, a seeded round trip and mutation fuzz (TK_FUZZ_CASES, 20 000 in CI), and the
 * mapping between `--policy` proposals and the transforms it carries.
 */
const t = suite('ike: the tunkit policy CP attribute')

t('198.18.9.0/24 = aes256-sha512 encodes to the documented bytes, inside a CFG_REPLY', () => {
  const p: CpPolicy = {address: '198.18.9.0', prefix: 24, proposals: [policyTransforms(parseProposals('aes256-sha512', ProtocolId.ESP)[0])]}
  const value = encodeCpPolicy(p)
  assert.is(value.toString('hex'), 'c6120900' + '18' + '01' + '03' + '01000c0100' + '03000e0000' + '0500000000')
  assert.equal(decodeCpPolicy(value), p)
  const cp = encodeCp({cfgType: CfgType.REPLY, attributes: [{type: TUNKIT_POLICY, value}]})
  assert.is(cp.subarray(4, 8).toString('hex'), '54710016')
  assert.equal(decodeCp(cp).attributes, [{type: TUNKIT_POLICY, value}])
})

t('bounds: host bits, prefix, proposal and transform counts, types, trailing bytes are refused with CodecError', () => {
  const ok = encodeCpPolicy({address: '10.0.0.0', prefix: 8, proposals: [[{type: T.ENCR, id: Encr.AES_GCM_16, keyBits: 128}]]})
  const bad = (hex: string, code: string): void => {
    try {
      decodeCpPolicy(Buffer.from(hex, 'hex'))
      assert.unreachable(`${hex} decoded`)
    } catch (e) {
      assert.instance(e, CodecError)
      assert.is((e as CodecError).code, code, hex)
    }
  }
  bad('0a000001' + '08' + ok.subarray(5).toString('hex'), 'BAD_CP') // host bits set
  bad('0a000000' + '21' + ok.subarray(5).toString('hex'), 'BAD_CP') // /33
  bad('0a000000' + '08' + '00', 'BAD_CP') // no proposal
  bad('0a000000' + '08' + (MAX_POLICY_PROPOSALS + 1).toString(16), 'LIMIT')
  bad('0a000000' + '08' + '01' + (MAX_POLICY_TRANSFORMS + 1).toString(16), 'LIMIT')
  bad('0a000000' + '08' + '01' + '01' + '0600140080', 'BAD_CP') // transform type 6
  bad(ok.toString('hex') + '00', 'LENGTH')
  bad(ok.subarray(0, ok.length - 1).toString('hex'), 'TRUNCATED')
  bad('0a0000', 'TRUNCATED')
  assert.throws(() => encodeCpPolicy({address: '10.0.0.1', prefix: 8, proposals: [[{type: T.ENCR, id: 20}]]}), (e: unknown) => e instanceof CodecError)
})

function policy(r: Rng): CpPolicy {
  const prefix = r.int(0, 32)
  const a = prefix === 0 ? 0 : (r.u32() & (0xffffffff << (32 - prefix))) >>> 0
  const proposals = Array.from({length: r.int(1, r.chance(0.2) ? MAX_POLICY_PROPOSALS : 3)}, () =>
    Array.from({length: r.int(1, r.chance(0.2) ? MAX_POLICY_TRANSFORMS : 5)}, () => {
      const x = {type: r.int(1, 5), id: r.below(65536)}
      return r.chance(0.5) ? {...x, keyBits: r.int(1, 65535)} : x
    }),
  )
  return {address: [24, 16, 8, 0].map((s) => (a >>> s) & 255).join('.'), prefix, proposals}
}

t('generated policies: decode(encode(p)) = p', () => {
  fuzz('ike tunkit policy round trip', (r) => {
    const p = policy(r)
    assert.equal(decodeCpPolicy(encodeCpPolicy(p)), p)
  })
})

t('mutated policies: CodecError or a policy that re-encodes to itself', () => {
  fuzz('ike tunkit policy mutated', (r) => {
    const input = mutate(r, encodeCpPolicy(policy(r)))
    const d = refusesOnly('decodeCpPolicy', input, () => decodeCpPolicy(input))
    if (d) assert.equal(decodeCpPolicy(encodeCpPolicy(d)), d)
  })
})

t('pushed transforms map back to the policy they came from; ones tunkit cannot offer are TK_UNSUPPORTED', () => {
  const esp = parseProposals('aes256gcm16,aes256-sha256,chacha20poly1305-x25519', ProtocolId.ESP)
  assert.equal(esp.map((x) => policyFromTransforms(policyTransforms(x))), esp)
  const unsupported = (ts: {type: number; id: number; keyBits?: number}[]): boolean => {
    try {
      policyFromTransforms(ts)
      return false
    } catch (e) {
      return e instanceof TunkitError && e.code === 'TK_UNSUPPORTED'
    }
  }
  assert.ok(unsupported([{type: T.ENCR, id: Encr.TRIPLE_DES}, {type: T.INTEG, id: Integ.HMAC_SHA1_96}]), '3DES')
  assert.ok(unsupported([{type: T.ENCR, id: Encr.AES_CBC, keyBits: 256}]), 'CBC without integrity')
  assert.ok(unsupported([{type: T.ENCR, id: Encr.AES_GCM_16, keyBits: 256}, {type: T.INTEG, id: Integ.HMAC_SHA1_96}]), 'AEAD with integrity')
  assert.ok(unsupported([{type: T.ENCR, id: Encr.AES_GCM_16, keyBits: 256}, {type: T.PRF, id: 5}]), 'a PRF')
  assert.equal(policyFromTransforms([{type: T.ENCR, id: Encr.CHACHA20_POLY1305}]), {protocol: ProtocolId.ESP, encr: [{id: Encr.CHACHA20_POLY1305}], integ: [], prf: [], dh: [], esn: [Esn.NONE]})
  assert.is(CfgAttr.INTERNAL_IP4_SUBNET, 13)
})

t.run()
