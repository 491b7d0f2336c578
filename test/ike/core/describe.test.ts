import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {CfgAttr, CfgType, DhGroup, Encr, Integ, Notify, PayloadType as P, Prf, ProtocolId} from '../../../src/ike/codec/constants.js'
import {encodeCpPolicy, TUNKIT_POLICY} from '../../../src/ike/codec/cp.js'
import {parseProposals, policyTransforms, toProposals} from '../../../src/ike/core/proposals.js'
import {tsFromCidr} from '../../../src/ike/codec/ts.js'
import {payloadText, rangeToCidrs, suiteText, tsText} from '../../../src/ike/core/describe.js'

const t = suite('IKE descriptions for logs and traces')

t('ranges become the fewest CIDRs, the whole space included', () => {
  assert.equal(rangeToCidrs('198.18.1.0', '198.18.1.255'), ['198.18.1.0/24'])
  assert.equal(rangeToCidrs('198.18.200.2', '198.18.200.2'), ['198.18.200.2/32'])
  assert.equal(rangeToCidrs('0.0.0.0', '255.255.255.255'), ['0.0.0.0/0'])
  assert.equal(rangeToCidrs('198.18.0.1', '198.18.0.6'), ['198.18.0.1/32', '198.18.0.2/31', '198.18.0.4/31', '198.18.0.6/32'])
  assert.equal(rangeToCidrs('198.18.0.9', '198.18.0.8'), [])
  assert.is(tsText([tsFromCidr('198.18.1.0/24'), tsFromCidr('198.18.9.0/24')]), '198.18.1.0/24 198.18.9.0/24')
})

t('suites read as strongSwan proposal strings (what --policy and --ike-proposal take)', () => {
  assert.is(suiteText({encr: Encr.AES_GCM_16, encrKeyBits: 256, prf: Prf.HMAC_SHA2_256, dh: DhGroup.CURVE25519}), 'aes256gcm16-prfsha256-x25519')
  assert.is(suiteText({encr: Encr.AES_CBC, encrKeyBits: 128, integ: Integ.HMAC_SHA1_96, prf: Prf.HMAC_SHA1, dh: DhGroup.MODP_2048}), 'aes128-sha1-prfsha1-modp2048')
  assert.is(suiteText({encr: Encr.CHACHA20_POLY1305, integ: Integ.NONE}), 'chacha20poly1305')
})

t('payloads show what they say but never key material', () => {
  const secret = Buffer.alloc(32, 0xab)
  assert.is(payloadText({type: P.KE, group: DhGroup.CURVE25519, data: secret}), 'KE(x25519,32B)')
  assert.is(payloadText({type: P.NONCE, data: secret}), 'No(32B)')
  assert.is(payloadText({type: P.AUTH, method: 2, data: secret}), 'AUTH(SHARED_KEY_MIC,32B)')
  assert.is(payloadText({type: P.N, protocol: 0, spi: Buffer.alloc(0), notify: Notify.NAT_DETECTION_SOURCE_IP, data: secret}), 'N(NAT_DETECTION_SOURCE_IP)')
  assert.is(payloadText({type: P.D, protocol: ProtocolId.ESP, spiSize: 4, spis: [Buffer.from('c0ffee01', 'hex')]}), 'D(ESP:c0ffee01)')
  assert.is(payloadText({type: P.TSr, selectors: [tsFromCidr('198.18.1.0/24')]}), 'TSr(198.18.1.0/24)')
  for (const p of [payloadText({type: P.KE, group: 31, data: secret}), payloadText({type: P.NONCE, data: secret})]) assert.not.match(p, /abab/)
})

t('SA proposals read as strongSwan proposal strings; CP attributes show addresses, subnets and tunkit policies', () => {
  const spi = Buffer.from('c0ffee01', 'hex')
  assert.is(payloadText({type: P.SA, proposals: toProposals(parseProposals('aes256gcm16-aes128gcm16-x25519', ProtocolId.ESP), spi)}), 'SA(ESP:c0ffee01:aes256gcm16-aes128gcm16-x25519)')
  const policy = encodeCpPolicy({address: '198.18.9.0', prefix: 24, proposals: parseProposals('aes256-sha512', ProtocolId.ESP).map(policyTransforms)})
  const cp = payloadText({type: P.CP, cfgType: CfgType.REPLY, attributes: [
    {type: CfgAttr.INTERNAL_IP4_ADDRESS, value: Buffer.from([198, 18, 200, 2])},
    {type: CfgAttr.INTERNAL_IP4_SUBNET, value: Buffer.from([198, 18, 9, 0, 255, 255, 255, 0])},
    {type: TUNKIT_POLICY, value: policy},
    {type: CfgAttr.APPLICATION_VERSION, value: Buffer.from('strongSwan')},
  ]})
  assert.is(cp, 'CP(REPLY: INTERNAL_IP4_ADDRESS=198.18.200.2,INTERNAL_IP4_SUBNET=198.18.9.0/255.255.255.0,TUNKIT_POLICY=198.18.9.0/24:aes256-sha512,APPLICATION_VERSION(10B))')
})

t.run()
