import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {DhGroup, Encr, Exchange, Flag, Integ, Notify, PayloadType as P, Prf, ProtocolId} from '../../../src/ike/codec/constants.js'
import {decodeMessage, encodeMessage} from '../../../src/ike/codec/message.js'
import {payloadOf} from '../../../src/ike/codec/payload.js'
import {tsFromCidr} from '../../../src/ike/codec/ts.js'
import {childSpi, type Established} from '../../../src/ike/core/exchange.js'
import {acceptAnswer, espOffer, parseProposals} from '../../../src/ike/core/proposals.js'
import {createKeyExchange, deriveChildKeys, type ChildKeys} from '../../../src/ike/core/crypto.js'
import type {Payload} from '../../../src/ike/codec/payload.js'
import {narrow} from '../../../src/ike/core/responder.js'
import {CLIENT, GATEWAY, only, pair, type Pair} from './loop.js'

const t = suite('ike core: initiator ⇄ responder')

const established = (p: Pair): [Established, Established] => {
  const i = only(p.iEvents, 'established')
  const r = only(p.rEvents, 'established')
  assert.is(i.length, 1, `initiator: ${JSON.stringify(p.iEvents.map((e) => e.type === 'failed' ? e.error.message : e.type))}`)
  assert.is(r.length, 1, `responder: ${JSON.stringify(p.rEvents.map((e) => e.type === 'failed' ? e.error.message : e.type))}`)
  return [i[0].sa, r[0].sa]
}

const sameChild = (i: Established, r: Established): void => {
  assert.ok(i.child.spiI.equals(r.child.spiI) && i.child.spiR.equals(r.child.spiR), 'SPIs agree')
  for (const k of ['encI', 'integI', 'encR', 'integR'] as const) assert.ok(i.child.keys[k].equals(r.child.keys[k]), `CHILD_SA ${k} agrees`)
  assert.equal(i.child.suite, r.child.suite)
  assert.equal(i.child.tsI, r.child.tsI)
  assert.equal(i.child.tsR, r.child.tsR)
}

const failure = (events: Pair['iEvents']): {code: string; message: string} => {
  const f = only(events, 'failed')
  assert.is(f.length, 1, 'one failure')
  return {code: f[0].error.code, message: f[0].error.message}
}

const notifies = (data: Buffer): number[] => decodeMessage(data).payloads.flatMap((x) => (x.type === P.N && 'notify' in x ? [x.notify] : []))

t('PSK with the default offer: AES-GCM-256/x25519, VIP and DNS pushed, TSr narrowed, identical CHILD_SA keys', () => {
  const p = pair()
  p.run()
  const [i, r] = established(p)
  assert.equal(i.ike, {encr: Encr.AES_GCM_16, encrKeyBits: 256, prf: Prf.HMAC_SHA2_512, dh: DhGroup.CURVE25519})
  assert.equal(i.ike, r.ike)
  assert.ok(i.spiI.equals(r.spiI) && i.spiR.equals(r.spiR))
  assert.is(i.vip, '198.18.200.10')
  assert.is(r.vip, '198.18.200.10')
  assert.equal(i.dns, ['198.18.1.53'])
  assert.equal(i.child.tsR.map((s) => `${s.start}-${s.end}`), ['198.18.1.0-198.18.1.255'])
  assert.equal(i.child.tsI.map((s) => `${s.start}-${s.end}`), ['198.18.200.10-198.18.200.10'])
  assert.equal(i.child.suite, {encr: Encr.AES_GCM_16, encrKeyBits: 256})
  sameChild(i, r)
  assert.is(i.peerId, 'gw.example.net')
  assert.is(r.peerId, 'client@example.net')
  assert.equal(i.nat, {local: false, remote: false})
  assert.is(i.peer.port, 500)
  // Two exchanges, four datagrams, nothing dropped or repeated.
  assert.is(p.sent.length, 4)
  assert.equal([p.ini.counters, p.res.counters], [{dropped: 0, retransmits: 0, cachedReplies: 0}, {dropped: 0, retransmits: 0, cachedReplies: 0}])
  const first = decodeMessage(p.sent[0].data)
  assert.equal(first.payloads.map((x) => x.type).slice(0, 3), [P.SA, P.KE, P.NONCE])
  assert.ok(notifies(p.sent[0].data).includes(Notify.SIGNATURE_HASH_ALGORITHMS))
})

t('a responder narrowed to aes128-sha1-modp2048: INVALID_KE_PAYLOAD, a retry with MODP-2048, then up', () => {
  const p = pair({res: {ike: parseProposals('aes128-sha1-modp2048', ProtocolId.IKE), esp: parseProposals('aes128-sha1', ProtocolId.ESP)}})
  p.run()
  const [i, r] = established(p)
  assert.equal(i.ike, {encr: Encr.AES_CBC, encrKeyBits: 128, integ: Integ.HMAC_SHA1_96, prf: Prf.HMAC_SHA1, dh: DhGroup.MODP_2048})
  assert.equal(i.child.suite, {encr: Encr.AES_CBC, encrKeyBits: 128, integ: Integ.HMAC_SHA1_96})
  sameChild(i, r)
  const bounce = decodeMessage(p.sent[1].data)
  assert.equal(notifies(p.sent[1].data), [Notify.INVALID_KE_PAYLOAD])
  assert.is((payloadOf(bounce.payloads, P.N)!.data).readUInt16BE(0), DhGroup.MODP_2048)
  assert.is(payloadOf(decodeMessage(p.sent[2].data).payloads, P.KE)!.group, DhGroup.MODP_2048)
  assert.ok(decodeMessage(p.sent[0].data).spiI.equals(decodeMessage(p.sent[2].data).spiI), 'the retry keeps SPIi')
})

t('above the half-open threshold the responder asks for a COOKIE, keeps no state, and takes the retry that carries it', () => {
  const p = pair({res: {cookieThreshold: 0}})
  p.run()
  established(p)
  assert.equal(notifies(p.sent[1].data), [Notify.COOKIE])
  const retry = decodeMessage(p.sent[2].data)
  const first = retry.payloads[0]
  assert.ok(first.type === P.N && 'notify' in first && first.notify === Notify.COOKIE && first.data.equals(payloadOf(decodeMessage(p.sent[1].data).payloads, P.N)!.data))
})

t('a forged or stale cookie is answered with a fresh COOKIE, never with an SA', () => {
  const p = pair({res: {cookieThreshold: 0}})
  const req = decodeMessage(p.sent[0].data)
  const forged = encodeMessage({...req, payloads: [{type: P.N, protocol: 0, spi: Buffer.alloc(0), notify: Notify.COOKIE, data: Buffer.alloc(33, 7)}, ...req.payloads]})
  const out = p.res.receive(forged, {address: '10.0.0.2', port: 500}, 0)
  assert.is(out.length, 1)
  assert.equal(notifies((out[0] as {data: Buffer}).data), [Notify.COOKIE])
  assert.is(p.res.halfOpen, 0)
})

t('wrong PSK: AUTHENTICATION_FAILED, a one-line error on both sides', () => {
  const p = pair({ini: {auth: {psk: Buffer.from('not the secret')}}})
  p.run()
  const i = failure(p.iEvents)
  const r = failure(p.rEvents)
  assert.is(i.code, 'TK_NOT_AUTHORIZED')
  assert.match(i.message, /AUTHENTICATION_FAILED/)
  assert.is(r.code, 'TK_NOT_AUTHORIZED')
  assert.match(r.message, /client@example\.net failed authentication \(wrong PSK\)/)
  for (const m of [i.message, r.message]) assert.not.match(m, /\n/)
  assert.is(only(p.iEvents, 'established').length + only(p.rEvents, 'established').length, 0)
})

t('no proposal in common: NO_PROPOSAL_CHOSEN, the initiator fails with one line and the responder keeps no SA', () => {
  const p = pair({res: {ike: [{protocol: ProtocolId.IKE, encr: [{id: Encr.AES_CTR, keyBits: 128}], integ: [Integ.HMAC_SHA1_96], prf: [Prf.HMAC_SHA1], dh: [DhGroup.MODP_2048], esn: []}]}})
  p.run()
  const i = failure(p.iEvents)
  assert.is(i.code, 'TK_UNSUPPORTED')
  assert.is(i.message, 'the gateway refused IKE_SA_INIT: no proposal in common (NO_PROPOSAL_CHOSEN)')
  assert.is(p.res.halfOpen, 0)
  assert.is(p.sent.length, 2)
})

t('no ESP proposal in common: the IKE_SA is made, the CHILD_SA refused, the initiator fails and deletes the IKE_SA', () => {
  const p = pair({res: {esp: [{protocol: ProtocolId.ESP, encr: [{id: Encr.AES_CTR, keyBits: 128}], integ: [Integ.HMAC_SHA1_96], prf: [], dh: [], esn: [0]}]}})
  p.run()
  assert.is(failure(p.iEvents).message, 'the gateway refused the CHILD_SA: no proposal in common (NO_PROPOSAL_CHOSEN)')
  assert.match(failure(p.rEvents).message, /no ESP proposal in common/)
  assert.equal(only(p.rEvents, 'deleted').map((d) => [d.what, d.by]), [['ike', 'peer']])
  assert.equal(only(p.iEvents, 'deleted').map((d) => [d.what, d.by]), [['ike', 'us']])
})

t('TS unacceptable: TS_UNACCEPTABLE, TK_DENIED on the initiator, and the IKE_SA is deleted', () => {
  const p = pair({ini: {tsR: [tsFromCidr('10.9.0.0/16')]}})
  p.run()
  const i = failure(p.iEvents)
  assert.is(i.code, 'TK_DENIED')
  assert.is(i.message, 'the gateway refused the CHILD_SA: traffic selectors unacceptable (TS_UNACCEPTABLE)')
  assert.match(failure(p.rEvents).message, /traffic selectors outside 198\.18\.1\.0\/24/)
  assert.equal(only(p.rEvents, 'deleted').map((d) => d.what), ['ike'])
})

t('lost datagrams: the initiator retransmits with backoff and the responder answers a repeated request from its cache', () => {
  // Lose the first IKE_SA_INIT request, the first IKE_SA_INIT response and the first IKE_AUTH response.
  const p = pair({lose: (s) => (s.dir === 'i->r' && s.n === 0) || (s.dir === 'r->i' && (s.n === 0 || s.n === 2))})
  p.run()
  const [i, r] = established(p)
  sameChild(i, r)
  assert.is(p.ini.counters.retransmits, 3)
  assert.is(p.res.counters.cachedReplies, 2, 'one repeated IKE_SA_INIT, one repeated IKE_AUTH')
  // The repeated responses are byte-identical to the lost ones.
  const fromR = p.sent.filter((s) => s.dir === 'r->i')
  assert.ok(fromR[0].data.equals(fromR[1].data) && fromR[2].data.equals(fromR[3].data))
})

t('a gateway that never answers: 6 tries 0.5 s apart doubling, then TK_TIMEOUT', () => {
  const p = pair({lose: (s) => s.dir === 'i->r'})
  p.run()
  assert.is(p.sent.length, 6)
  assert.equal(p.sent.map((s) => s.data.equals(p.sent[0].data)), Array(6).fill(true))
  const f = failure(p.iEvents)
  assert.is(f.code, 'TK_TIMEOUT')
  assert.is(p.now, 31_500)
})

t('DPD both ways, and a DELETE of the IKE_SA by the initiator', () => {
  const p = pair()
  p.run()
  established(p)
  const before = p.sent.length
  p.feed('i', p.ini.ikeSa!.dpd(p.now))
  p.feed('r', p.res.ikeSa(p.ini.ikeSa!.spiI)!.dpd(p.now))
  const dpd = p.sent.slice(before).map((s) => decodeMessage(s.data))
  assert.equal(dpd.map((m) => [m.exchange, m.messageId, (m.flags & Flag.RESPONSE) !== 0]), [[Exchange.INFORMATIONAL, 2, false], [Exchange.INFORMATIONAL, 2, true], [Exchange.INFORMATIONAL, 0, false], [Exchange.INFORMATIONAL, 0, true]])
  // The DELETE, by hand: the responder's answer must ask for the wake-up that forgets the SA (an
  // idle gateway has no other timer to do it).
  const spiI = p.ini.ikeSa!.spiI
  const del = p.ini.ikeSa!.close(p.now).find((a) => a.type === 'send')!
  assert.ok(del.type === 'send')
  const answer = p.res.receive(del.data, CLIENT, p.now)
  assert.ok(answer.some((a) => a.type === 'timer' && a.at === p.now + 30_000), 'a wake-up 30 s on')
  p.feed('r', answer)
  p.run(p.now + 30_000)
  assert.is(p.res.ikeSa(spiI), undefined, 'forgotten 30 s after the DELETE')
  assert.equal(only(p.iEvents, 'deleted').map((d) => [d.what, d.by]), [['ike', 'us']])
  assert.equal(only(p.rEvents, 'deleted').map((d) => [d.what, d.by]), [['ike', 'peer']])
  assert.is(p.ini.ikeSa!.state, 'closed')
})

t('the responder deletes the CHILD_SA: the initiator answers with its own SPI of the pair', () => {
  const p = pair()
  p.run()
  const [i] = established(p)
  const rsa = p.res.ikeSa(i.spiI)!
  p.feed('r', rsa.request(Exchange.INFORMATIONAL, [{type: P.D, protocol: ProtocolId.ESP, spiSize: 4, spis: [i.child.spiR]}], p.now))
  assert.equal(only(p.iEvents, 'deleted').map((d) => [d.what, d.spis.map((s) => s.toString('hex'))]), [['child', [i.child.spiI.toString('hex'), i.child.spiR.toString('hex')]]])
  assert.equal(p.ini.ikeSa!.children, [])
})

for (const pfs of [false, true]) {
  t(`the gateway rekeys the CHILD_SA ${pfs ? 'with' : 'without'} a KE: the client answers, both derive the same new keys, then the old SA is deleted`, () => {
    const p = pair()
    p.run()
    const [i] = established(p)
    const rsa = p.res.ikeSa(i.spiI)!
    const ni = Buffer.alloc(32, 9)
    const spi = Buffer.from('0badc0de', 'hex')
    const dh = createKeyExchange(DhGroup.CURVE25519)
    const inner: Payload[] = [
      {type: P.N, protocol: ProtocolId.ESP, spi: i.child.spiR, notify: Notify.REKEY_SA, data: Buffer.alloc(0)},
      {type: P.SA, proposals: espOffer(spi, pfs)},
      {type: P.NONCE, data: ni},
      ...(pfs ? [{type: P.KE, group: DhGroup.CURVE25519, data: dh.publicKey} as Payload] : []),
      {type: P.TSi, selectors: i.child.tsR},
      {type: P.TSr, selectors: i.child.tsI},
    ]
    let gateway: ChildKeys | undefined
    p.feed('r', rsa.request(Exchange.CREATE_CHILD_SA, inner, p.now, (reply) => {
      const nr = payloadOf(reply, P.NONCE)!.data
      const ke = payloadOf(reply, P.KE)
      assert.is(ke !== undefined, pfs)
      const suite = acceptAnswer(espOffer(spi, pfs), payloadOf(reply, P.SA)!.proposals)
      gateway = deriveChildKeys(rsa.prfId, rsa.skD, suite, ni, nr, ke ? dh.computeSecret(ke.data) : undefined)
      return []
    }))
    const r = only(p.iEvents, 'rekeyed')
    assert.is(r.length, 1)
    const c = r[0].child
    assert.ok(c.spiR.equals(spi))
    if (pfs) assert.is(c.suite.dh, DhGroup.CURVE25519)
    // The gateway started the exchange: its "initiator" keys are the client's "responder" keys.
    assert.ok(gateway!.encI.equals(c.keys.encR) && gateway!.encR.equals(c.keys.encI))
    assert.not.ok(c.keys.encI.equals(i.child.keys.encI))
    assert.is(p.ini.ikeSa!.children.length, 2)
    p.feed('r', rsa.request(Exchange.INFORMATIONAL, [{type: P.D, protocol: ProtocolId.ESP, spiSize: 4, spis: [i.child.spiR]}], p.now))
    assert.equal(p.ini.ikeSa!.children, [c])
  })
}

t('CREATE_CHILD_SA for a new CHILD_SA, an unknown SPI or a KE of another group is refused without harm', () => {
  const p = pair()
  p.run()
  const [i] = established(p)
  const rsa = p.res.ikeSa(i.spiI)!
  const answers: number[][] = []
  const base: Payload[] = [{type: P.SA, proposals: espOffer(Buffer.alloc(4, 1))}, {type: P.NONCE, data: Buffer.alloc(32, 1)}, {type: P.TSi, selectors: i.child.tsR}, {type: P.TSr, selectors: i.child.tsI}]
  const keep = (reply: Payload[]): [] => (answers.push(reply.flatMap((x) => (x.type === P.N && 'notify' in x ? [x.notify] : []))), [])
  p.feed('r', rsa.request(Exchange.CREATE_CHILD_SA, base, p.now, keep))
  p.feed('r', rsa.request(Exchange.CREATE_CHILD_SA, [{type: P.N, protocol: ProtocolId.ESP, spi: Buffer.alloc(4, 7), notify: Notify.REKEY_SA, data: Buffer.alloc(0)}, ...base], p.now, keep))
  const rekey: Payload = {type: P.N, protocol: ProtocolId.ESP, spi: i.child.spiR, notify: Notify.REKEY_SA, data: Buffer.alloc(0)}
  const ecp = createKeyExchange(DhGroup.ECP_256)
  p.feed('r', rsa.request(Exchange.CREATE_CHILD_SA, [rekey, {type: P.SA, proposals: espOffer(Buffer.alloc(4, 1), true)}, ...base.slice(1), {type: P.KE, group: DhGroup.ECP_256, data: ecp.publicKey}], p.now, keep))
  assert.equal(answers, [[Notify.NO_ADDITIONAL_SAS], [Notify.CHILD_SA_NOT_FOUND], [Notify.INVALID_KE_PAYLOAD]])
  assert.equal(only(p.iEvents, 'rekeyed'), [])
})

t('a NAT on the way: both sides detect it and the initiator moves to port 4500 for IKE_AUTH', () => {
  const p = pair({seenAs: {address: '203.0.113.9', port: 40123}})
  p.run()
  const [i, r] = established(p)
  assert.equal(i.nat, {local: true, remote: false})
  assert.equal(r.nat, {local: false, remote: true})
  assert.equal(i.peer, {address: GATEWAY.address, port: 4500})
  assert.equal(r.peer, {address: '203.0.113.9', port: 4500})
  assert.equal(p.sent.map((s) => s.to.port), [500, 40123, 4500, 4500])
})

t('garbage, truncated and replayed datagrams are dropped without a reply and counted', () => {
  const p = pair()
  const init = p.sent[0].data
  const junk = [Buffer.alloc(0), Buffer.from('hello'), init.subarray(0, 40), Buffer.concat([init, Buffer.alloc(3)]), Buffer.alloc(200, 0xff)]
  for (const j of junk) assert.equal(p.res.receive(j, {address: '10.0.0.2', port: 500}, 0), [])
  assert.is(p.res.counters.dropped, junk.length)
  p.run()
  established(p)
  const auth = p.sent[2].data
  const reqs = [auth.subarray(0, auth.length - 1), Buffer.from(auth).fill(0, 60, 70), p.sent[3].data, init]
  const dropped = p.ini.counters.dropped
  for (const j of [...junk, ...reqs]) assert.equal(p.ini.receive(j, p.now).filter((a) => a.type === 'send'), [])
  assert.is(p.ini.counters.dropped, dropped + junk.length + reqs.length)
  const rd = p.res.counters.dropped
  // A tampered IKE_AUTH request does not even get the cached answer.
  assert.equal(p.res.receive(Buffer.from(auth).fill(0, 60, 70), {address: '10.0.0.2', port: 500}, p.now), [])
  assert.is(p.res.counters.dropped, rd + 1)
})

t('our inbound ESP SPIs: never 0–255 (reserved), never one the I/O side has in use, and a bounded search', () => {
  const hex = (h: string): Buffer => Buffer.from(h, 'hex')
  const draws = [hex('000000ff'), hex('0000abcd'), hex('12345678')]
  const deps = {random: () => draws.shift()!, keyExchange: createKeyExchange, spiInUse: (s: Buffer) => s.equals(hex('0000abcd'))}
  assert.equal(childSpi(deps), hex('12345678'))
  assert.throws(() => childSpi({...deps, random: () => hex('0000abcd')}), /no free ESP SPI/)
})

t('narrowing cuts each offered selector to each allowed one, ports and protocol included', () => {
  const any = tsFromCidr('0.0.0.0/0')
  assert.equal(narrow([any], [tsFromCidr('198.18.1.0/24'), tsFromCidr('198.18.9.0/24')]).map((s) => `${s.start}-${s.end}`), ['198.18.1.0-198.18.1.255', '198.18.9.0-198.18.9.255'])
  assert.equal(narrow([{...tsFromCidr('198.18.1.128/25'), ipProtocol: 17, startPort: 53, endPort: 53}], [tsFromCidr('198.18.1.0/24')]), [{...tsFromCidr('198.18.1.128/25'), ipProtocol: 17, startPort: 53, endPort: 53}])
  assert.equal(narrow([tsFromCidr('10.0.0.0/8')], [tsFromCidr('198.18.1.0/24')]), [])
  assert.equal(narrow([{...any, ipProtocol: 6}], [{...any, ipProtocol: 17}]), [])
})

t.run()
