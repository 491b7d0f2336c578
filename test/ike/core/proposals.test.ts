import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {DhGroup, Encr, Esn, Integ, Prf, ProtocolId, TransformType as T} from '../../../src/ike/codec/constants.js'
import {decodeMessage} from '../../../src/ike/codec/message.js'
import {payloadOf} from '../../../src/ike/codec/payload.js'
import {keyLength, transform} from '../../../src/ike/codec/sa.js'
import {acceptAnswer, choose, espOffer, ikeOffer, IKE_POLICIES, parseProposal, parseProposals, toProposals} from '../../../src/ike/core/proposals.js'
import {TunkitError} from '../../../src/lib/errors.js'
import {capturedMessages} from '../fixtures.js'
import {PayloadType as P} from '../../../src/ike/codec/constants.js'

const t = suite('ike core: proposals')
const IKE = ProtocolId.IKE
const ESP = ProtocolId.ESP

t('the IKE offer: AEAD and CBC proposals with every cipher, PRF and DH group, strongest first', () => {
  const [aead, cbc] = ikeOffer()
  const of = (p: typeof aead, type: number): string[] => p.transforms.filter((x) => x.type === type).map((x) => `${x.id}/${keyLength(x) ?? ''}`)
  assert.equal(of(aead, T.ENCR), ['20/256', '20/128', '28/'])
  assert.equal(of(aead, T.INTEG), [])
  assert.equal(of(cbc, T.ENCR), ['12/256', '12/128'])
  assert.equal(of(cbc, T.INTEG), ['14/', '13/', '12/', '2/'])
  for (const p of [aead, cbc]) {
    assert.equal(of(p, T.PRF), ['7/', '6/', '5/', '2/'])
    assert.equal(of(p, T.DH), ['31/', '20/', '19/', '15/', '14/'])
  }
  assert.equal([aead.number, cbc.number], [1, 2])
})

t('the ESP offer carries the SPI and no ESN; with PFS also the DH groups', () => {
  const spi = Buffer.from('c0ffee01', 'hex')
  const offer = espOffer(spi)
  assert.ok(offer.every((p) => p.spi.equals(spi) && p.protocol === ESP))
  assert.ok(offer.every((p) => p.transforms.filter((x) => x.type === T.ESN).map((x) => x.id).join() === String(Esn.NONE)))
  assert.ok(offer.every((p) => !p.transforms.some((x) => x.type === T.DH)))
  assert.ok(espOffer(spi, true).every((p) => p.transforms.filter((x) => x.type === T.DH).length === 5))
})

t('the lab gateway\'s preferences choose AES-GCM-256/PRF-SHA256/x25519 from our full offer', () => {
  const gw = parseProposals('aes256gcm16-prfsha256-x25519-ecp256-modp2048, aes256-sha256-x25519-ecp256-modp2048', IKE)
  const c = choose(gw, ikeOffer())
  assert.ok(c.ok)
  if (!c.ok) return
  assert.equal(c.suite, {encr: Encr.AES_GCM_16, encrKeyBits: 256, prf: Prf.HMAC_SHA2_256, dh: DhGroup.CURVE25519})
  assert.is(c.proposal.number, 1)
  assert.equal(acceptAnswer(ikeOffer(), [c.proposal]), c.suite, 'and the initiator accepts that answer')
})

t('a gateway narrowed to aes128-sha1-modp2048 still finds it in our offer (proposal 2)', () => {
  const c = choose([parseProposal('aes128-sha1-modp2048', IKE)], ikeOffer())
  assert.ok(c.ok)
  if (!c.ok) return
  assert.equal(c.suite, {encr: Encr.AES_CBC, encrKeyBits: 128, integ: Integ.HMAC_SHA1_96, prf: Prf.HMAC_SHA1, dh: DhGroup.MODP_2048})
  assert.is(c.proposal.number, 2)
})

t('the responder answers in its own order, not the peer\'s', () => {
  const c = choose([parseProposal('aes128gcm16-aes256gcm16-prfsha1-prfsha512-modp2048-x25519', IKE)], ikeOffer())
  assert.ok(c.ok && c.suite.encrKeyBits === 128 && c.suite.prf === Prf.HMAC_SHA1 && c.suite.dh === DhGroup.MODP_2048)
})

t('nothing in common is NO_PROPOSAL_CHOSEN: another cipher, a missing DH group, ESP against IKE', () => {
  const offer = toProposals([parseProposal('aes256-sha256-ecp256', IKE)])
  assert.equal(choose([parseProposal('aes256gcm16-prfsha256-ecp256', IKE)], offer), {ok: false, notify: 'NO_PROPOSAL_CHOSEN'})
  assert.equal(choose([parseProposal('aes256-sha256-x25519', IKE)], offer), {ok: false, notify: 'NO_PROPOSAL_CHOSEN'})
  assert.equal(choose([parseProposal('aes256-sha256', ESP)], offer), {ok: false, notify: 'NO_PROPOSAL_CHOSEN'})
})

t('ESP: a policy without PFS takes a peer proposal without DH, or one offering DH NONE; one with PFS needs the group', () => {
  const spi = Buffer.from('01020304', 'hex')
  const noPfs = [parseProposal('aes256gcm16', ESP)]
  const c = choose(noPfs, espOffer(spi))
  assert.ok(c.ok && c.proposal.spi.equals(spi) && c.proposal.transforms.some((x) => x.type === T.ESN))
  assert.not.ok(choose(noPfs, espOffer(spi, true)).ok, 'a PFS-only offer')
  const optional = espOffer(spi, true).map((p) => ({...p, transforms: [...p.transforms, transform(T.DH, 0)]}))
  assert.ok(choose(noPfs, optional).ok, 'PFS offered as optional (DH NONE)')
  const pfs = choose([parseProposal('aes256gcm16-ecp256', ESP)], espOffer(spi, true))
  assert.ok(pfs.ok && pfs.suite.dh === DhGroup.ECP_256)
})

t('a peer proposal with a transform type we do not know is skipped, not misread', () => {
  const [aead] = ikeOffer()
  const odd = {...aead, transforms: [...aead.transforms, transform(6, 1)]}
  assert.not.ok(choose(IKE_POLICIES, [odd]).ok)
})

t('our default policies choose from what strongSwan\'s client offered in the capture', () => {
  const sa = payloadOf(decodeMessage(capturedMessages()[0].raw).payloads, P.SA)!
  const c = choose(IKE_POLICIES, sa.proposals)
  assert.ok(c.ok && c.suite.encr === Encr.AES_GCM_16 && c.suite.dh === DhGroup.CURVE25519)
})

t('acceptAnswer refuses an answer that was not offered, lacks a type we offered, or has two transforms of a type', () => {
  const offer = ikeOffer()
  const throwsCode = (fn: () => unknown): void => assert.throws(fn, (e: unknown) => e instanceof TunkitError && e.code === 'TK_PROTOCOL_ERROR')
  throwsCode(() => acceptAnswer(offer, [{...offer[0], transforms: [transform(T.ENCR, Encr.AES_CBC, 256), transform(T.PRF, 5), transform(T.DH, 31)]}]))
  throwsCode(() => acceptAnswer(offer, [{...offer[0], number: 9}]))
  throwsCode(() => acceptAnswer(offer, [{...offer[0], transforms: [transform(T.ENCR, Encr.AES_GCM_16, 256), transform(T.PRF, 5)]}]))
  throwsCode(() => acceptAnswer(offer, [offer[0]]))
  throwsCode(() => acceptAnswer(offer, []))
})

t('proposal strings: strongSwan\'s spellings, the hash word as integrity and PRF, and usage errors', () => {
  assert.equal(parseProposal('aes256gcm16-prfsha256-x25519', IKE), {protocol: IKE, encr: [{id: 20, keyBits: 256}], integ: [], prf: [5], dh: [31], esn: []})
  assert.equal(parseProposal('aes256-sha512', ESP), {protocol: ESP, encr: [{id: 12, keyBits: 256}], integ: [14], prf: [], dh: [], esn: [0]})
  assert.equal(parseProposal('aes128-sha1-modp2048', IKE), {protocol: IKE, encr: [{id: 12, keyBits: 128}], integ: [2], prf: [2], dh: [14], esn: []})
  assert.equal(parseProposal('aes256-sha256-prfsha384-ecp384', IKE).prf, [6])
  assert.equal(parseProposal('chacha20poly1305-sha512-curve25519', IKE).prf, [7])
  assert.equal(parseProposal('aes256gcm16-x25519-esn', ESP).esn, [1])
  const usage = (s: string, protocol: 1 | 3, re: RegExp): void => assert.throws(() => parseProposal(s, protocol), (e: unknown) => e instanceof TunkitError && e.code === 'TK_USAGE' && re.test(e.message))
  usage('aes256-sha256', IKE, /no DH group/)
  usage('aes256-x25519', IKE, /integrity/)
  usage('aes256gcm16-aes256-sha256-x25519', IKE, /AEAD and CBC/)
  usage('3des-sha1-modp1024', IKE, /unknown or unsupported algorithm '3des'/)
  usage('aes256gcm16-prfsha256', ESP, /ESP has no PRF/)
  assert.throws(() => parseProposals(' , ', ESP), /empty/)
})

t.run()
