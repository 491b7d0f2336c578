import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {DhGroup, Encr, Esn, Exchange, Integ, PayloadType as P, ProtocolId, TransformType} from '../../../src/ike/codec/constants.js'
import {decodeMessage} from '../../../src/ike/codec/message.js'
import {payloadOf} from '../../../src/ike/codec/payload.js'
import {keyLength} from '../../../src/ike/codec/sa.js'
import {openSk} from '../../../src/ike/core/crypto.js'
import {tsFromCidr} from '../../../src/ike/codec/ts.js'
import type {ChildSa, Established, ProtectedSa} from '../../../src/ike/core/exchange.js'
import {espPolicies, parseProposals} from '../../../src/ike/core/proposals.js'
import {only, pair, type Pair} from './loop.js'

/**
 * CREATE_CHILD_SA in memory (loop.ts, deterministic clocks and randomness): CHILD_SA and IKE_SA
 * rekeys started by either side, simultaneous rekeys (§2.8.1), lifetimes and DPD timers, and the
 * per-policy configuration push (seed 002) with one CHILD_SA per policy.
 */
const t = suite('ike core: CREATE_CHILD_SA, rekeys, lifetimes, per-policy CHILD_SAs')

const up = (opts: Parameters<typeof pair>[0] = {}): Pair & {i: Established; r: Established} => {
  const p = pair(opts)
  p.run()
  const i = only(p.iEvents, 'established')
  const r = only(p.rEvents, 'established')
  assert.is(i.length, 1, JSON.stringify(p.iEvents.map((e) => (e.type === 'failed' || e.type === 'child-failed' ? e.error.message : e.type))))
  assert.is(r.length, 1)
  return Object.assign(p, {i: i[0].sa, r: r[0].sa})
}

const hex = (b: Buffer): string => b.toString('hex')
const ikeOf = (p: Pair): [ProtectedSa, ProtectedSa] => {
  const i = p.ini.ikeSa!
  return [i, p.res.ikeSa(i.spiI)!]
}

/** Both sides hold the same CHILD_SAs: SPIs, suites, selectors and all four keys. */
function sameChildren(p: Pair, n: number): ChildSa[] {
  const [i, r] = ikeOf(p)
  assert.ok(r, 'the responder finds the current IKE_SA by its SPIi')
  assert.is(i.children.length, n, 'initiator CHILD_SAs')
  assert.is(r.children.length, n, 'responder CHILD_SAs')
  for (const c of i.children) {
    const o = r.children.find((x) => x.spiI.equals(c.spiI))
    assert.ok(o, `the responder has CHILD_SA ${hex(c.spiI)}`)
    assert.ok(o!.spiR.equals(c.spiR))
    assert.equal(o!.suite, c.suite)
    assert.equal([o!.tsI, o!.tsR], [c.tsI, c.tsR])
    for (const k of ['encI', 'integI', 'encR', 'integR'] as const) assert.ok(o!.keys[k].equals(c.keys[k]), `${k} agrees`)
  }
  return i.children
}

/** An empty INFORMATIONAL each way on the current IKE_SA gets its answer (the keys agree). */
function dpdBothWays(p: Pair): void {
  const [i, r] = ikeOf(p)
  const sent = p.sent.length
  p.feed('i', i.dpd(p.now))
  p.feed('r', r.dpd(p.now))
  assert.is(p.sent.length, sent + 4)
  assert.is(i.wakeAt === undefined || i.wakeAt > p.now + 1000, true, 'nothing left in flight')
  assert.equal(only([...p.iEvents, ...p.rEvents], 'failed'), [])
}

for (const [who, pfs] of [['initiator', false], ['initiator', true], ['responder', false], ['responder', true]] as const) {
  t(`the ${who} rekeys a CHILD_SA ${pfs ? 'with PFS (KE)' : 'without KE'}: same new keys both sides, the old one deleted by the ${who}`, () => {
    const p = up()
    const [i, r] = ikeOf(p)
    let old = p.i.child
    if (pfs) {
      // A CHILD_SA whose policy names a DH group: its rekeys carry a KE.
      p.feed('i', i.createChild({policy: parseProposals('aes128gcm16-ecp256', ProtocolId.ESP), tsI: p.i.child.tsI, tsR: p.i.child.tsR}, p.now))
      old = only(p.iEvents, 'child-up').at(-1)!.child
      assert.is(i.children.length, 2)
    }
    const sa = who === 'initiator' ? i : r
    const before = p.sent.length
    p.feed(who === 'initiator' ? 'i' : 'r', sa.rekeyChild(sa.spis(old).ours, p.now))
    const mine = only(who === 'initiator' ? p.iEvents : p.rEvents, 'rekeyed')
    const theirs = only(who === 'initiator' ? p.rEvents : p.iEvents, 'rekeyed')
    assert.equal([mine.length, theirs.length, mine[0].by, theirs[0].by], [1, 1, 'us', 'peer'])
    assert.ok(mine[0].child.spiI.equals(theirs[0].child.spiI) && mine[0].old.spiI.equals(old.spiI))
    assert.is(mine[0].child.suite.dh, pfs ? DhGroup.ECP_256 : undefined)
    const req = decodeMessage(p.sent[before].data)
    assert.is(req.exchange, Exchange.CREATE_CHILD_SA)
    // The old SA is gone on both sides, each said so once, by the rekeying side's DELETE.
    const deleted = (es: Pair['iEvents']) => only(es, 'deleted').map((d) => [d.what, d.by, hex(d.spis[0]).length])
    assert.equal(deleted(who === 'initiator' ? p.iEvents : p.rEvents), [['child', 'us', 8]])
    assert.equal(deleted(who === 'initiator' ? p.rEvents : p.iEvents), [['child', 'peer', 8]])
    const now = sameChildren(p, pfs ? 2 : 1)
    assert.ok(!now.some((c) => c.spiI.equals(old.spiI)), 'the old CHILD_SA is gone')
    assert.not.ok(mine[0].child.keys.encI.equals(old.keys.encI))
  })
}

for (const who of ['initiator', 'responder'] as const) {
  t(`the ${who} rekeys the IKE_SA: new SPIs and keys both sides, the CHILD_SAs move over, the old IKE_SA is deleted quietly`, () => {
    const p = up()
    const [i0, r0] = ikeOf(p)
    const sa = who === 'initiator' ? i0 : r0
    p.feed(who === 'initiator' ? 'i' : 'r', sa.rekeyIke(p.now))
    const ri = only(p.iEvents, 'ike-rekeyed')
    const rr = only(p.rEvents, 'ike-rekeyed')
    assert.equal([ri.length, rr.length], [1, 1])
    assert.ok(ri[0].oldSpiI.equals(p.i.spiI) && rr[0].oldSpiI.equals(p.i.spiI))
    assert.ok(ri[0].sa.spiI.equals(rr[0].sa.spiI) && ri[0].sa.spiR.equals(rr[0].sa.spiR))
    // §2.18: whoever started the rekey is the new IKE_SA's initiator.
    assert.equal([ri[0].sa.role, rr[0].sa.role], who === 'initiator' ? ['initiator', 'responder'] : ['responder', 'initiator'])
    assert.equal(ri[0].sa.ike, p.i.ike)
    const [i1, r1] = ikeOf(p)
    assert.ok(i1 !== i0 && p.res.ikeSa(ri[0].sa.spiI) === r1, 'found by the new SPIi and by the old one')
    assert.ok(i1.spiI.equals(ri[0].sa.spiI) && !i1.spiI.equals(p.i.spiI))
    assert.equal([i0.state, r0.state, i0.children.length, r0.children.length], ['closed', 'closed', 0, 0])
    // No IKE_SA or CHILD_SA went down, as far as the I/O layer is told.
    assert.equal(only([...p.iEvents, ...p.rEvents], 'deleted'), [])
    sameChildren(p, 1)
    assert.ok(i1.children[0] === p.i.child)
    dpdBothWays(p)
    // The new IKE_SA's SK_d makes the next CHILD_SA keys: a CHILD_SA rekey on it agrees too.
    p.feed('r', r1.rekeyChild(r1.spis(r1.children[0]).ours, p.now))
    sameChildren(p, 1)
    assert.is(only(p.iEvents, 'rekeyed').length, 1)
    // The replaced IKE_SA is forgotten by both machines after a while.
    p.run(p.now + 120_000)
    assert.equal(only([...p.iEvents, ...p.rEvents], 'failed'), [])
  })
}

for (const seed of [1, 2, 3, 4, 5, 6]) {
  t(`simultaneous CHILD_SA rekeys (seed ${seed}): the lowest nonce's CHILD_SA is dropped, one new CHILD_SA survives on both sides (§2.8.1)`, () => {
    const p = up({seed})
    const [i, r] = ikeOf(p)
    const c = p.i.child
    p.feed('i', i.rekeyChild(c.spiI, p.now), false)
    p.feed('r', r.rekeyChild(c.spiR, p.now))
    assert.is(only(p.iEvents, 'rekeyed').length, 2)
    assert.is(only(p.rEvents, 'rekeyed').length, 2)
    const [survivor] = sameChildren(p, 1)
    assert.not.ok(survivor.spiI.equals(c.spiI))
    // Each side reports the old and the redundant CHILD_SA deleted, nothing else.
    for (const es of [p.iEvents, p.rEvents]) assert.is(only(es, 'deleted').filter((d) => d.what === 'child').length, 2)
    assert.equal(only([...p.iEvents, ...p.rEvents], 'failed'), [])
  })

  t(`simultaneous IKE_SA rekeys (seed ${seed}): both sides end on the same new IKE_SA with the CHILD_SA, the others closed quietly (§2.8.2)`, () => {
    const p = up({seed})
    const [i0, r0] = ikeOf(p)
    p.feed('i', i0.rekeyIke(p.now), false)
    p.feed('r', r0.rekeyIke(p.now))
    p.run(p.now + 60_000)
    const [i1, r1] = ikeOf(p)
    assert.ok(i1.spiI.equals(r1.spiI) && i1.spiR.equals(r1.spiR), 'the same IKE_SA')
    assert.ok(!i1.spiI.equals(p.i.spiI))
    assert.is(only(p.iEvents, 'ike-rekeyed').length, 1)
    assert.is(only(p.rEvents, 'ike-rekeyed').length, 1)
    sameChildren(p, 1)
    dpdBothWays(p)
    assert.equal(only([...p.iEvents, ...p.rEvents], 'deleted'), [])
    assert.equal(only([...p.iEvents, ...p.rEvents], 'failed'), [])
  })
}

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
  t(`both sides rekey the CHILD_SA and the IKE_SA at once (seed ${seed}): they end on one IKE_SA with one CHILD_SA, in agreement`, () => {
    const p = up({seed})
    const [i, r] = ikeOf(p)
    p.feed('i', [...i.rekeyChild(i.children[0].spiI, p.now), ...i.rekeyIke(p.now)], false)
    p.feed('r', [...r.rekeyIke(p.now), ...r.rekeyChild(r.children[0].spiR, p.now)])
    // A rekey refused with TEMPORARY_FAILURE is tried again within 10 s.
    p.run(p.now + 60_000)
    const [i1, r1] = ikeOf(p)
    assert.ok(i1.spiI.equals(r1.spiI) && i1.spiR.equals(r1.spiR) && !i1.spiI.equals(p.i.spiI))
    const [c] = sameChildren(p, 1)
    assert.not.ok(c.spiI.equals(p.i.child.spiI))
    dpdBothWays(p)
    assert.equal(only([...p.iEvents, ...p.rEvents], 'failed'), [])
  })
}

t('lifetimes: both machines rekey CHILD_SA and IKE_SA by themselves, on time, and stay in agreement', () => {
  const lifetimes = {child: {softMs: 60_000, jitterMs: 6_000, hardMs: 66_000}, ike: {softMs: 240_000, jitterMs: 24_000, hardMs: 264_000}}
  const p = up({ini: {lifetimes}, res: {lifetimes}})
  p.run(600_000)
  const rekeys = [...only(p.iEvents, 'rekeyed'), ...only(p.rEvents, 'rekeyed')].filter((r) => r.by === 'us')
  // 600 s of 54–60 s CHILD_SA lifetimes: about ten rekeys, whoever's timer fires first.
  assert.ok(rekeys.length >= 9 && rekeys.length <= 12, `${rekeys.length} CHILD_SA rekeys`)
  const ikeRekeys = only(p.iEvents, 'ike-rekeyed')
  assert.ok(ikeRekeys.length >= 2 && ikeRekeys.length <= 3, `${ikeRekeys.length} IKE_SA rekeys`)
  assert.equal(only([...p.iEvents, ...p.rEvents], 'failed'), [])
  assert.equal(only([...p.iEvents, ...p.rEvents], 'deleted').filter((d) => d.what === 'ike'), [])
  sameChildren(p, 1)
  dpdBothWays(p)
})

t('a CHILD_SA the peer will not rekey (NO_ADDITIONAL_SAS) is retried, then deleted at its hard lifetime', () => {
  const lifetimes = {child: {softMs: 60_000, jitterMs: 0, hardMs: 90_000}}
  const p = up({ini: {lifetimes}, res: {maxChildren: 0, lifetimes: {child: {softMs: 10_000_000, jitterMs: 0, hardMs: 20_000_000}}}})
  p.run(200_000)
  const creates = p.sent.filter((s) => s.dir === 'i->r' && decodeMessage(s.data).exchange === Exchange.CREATE_CHILD_SA)
  assert.ok(creates.length >= 3, `${creates.length} tries`)
  assert.equal(only(p.iEvents, 'deleted').map((d) => [d.what, d.by]), [['child', 'us']])
  assert.equal(only(p.rEvents, 'deleted').map((d) => [d.what, d.by]), [['child', 'peer']])
  assert.equal([p.ini.ikeSa!.children.length, p.ini.ikeSa!.state], [0, 'established'])
})

t('DPD: an idle IKE_SA is checked after dpdMs, ESP traffic postpones it, a dead peer fails it with TK_TIMEOUT', () => {
  const p = pair({ini: {dpdMs: 10_000}})
  const informational = (): number => p.sent.filter((s) => s.dir === 'i->r' && decodeMessage(s.data).exchange === Exchange.INFORMATIONAL).length
  p.run(1_000)
  assert.is(only(p.iEvents, 'established').length, 1)
  const t0 = p.now
  p.run(t0 + 35_000)
  assert.is(informational(), 3)
  // Traffic seen every 5 s: no DPD.
  for (let k = 1; k <= 6; k++) {
    p.ini.ikeSa!.sawTraffic(t0 + 35_000 + 5_000 * k)
    p.run(t0 + 35_000 + 5_000 * k)
  }
  assert.is(informational(), 3)
  p.lose = () => true
  p.run(t0 + 200_000)
  const f = only(p.iEvents, 'failed')
  assert.equal(f.map((x) => x.error.code), ['TK_TIMEOUT'])
})

t('two --policy subnets of different transforms: two CHILD_SAs with exactly those transforms and selectors', () => {
  const policies = [{subnet: '198.18.1.0/24', esp: parseProposals('aes256gcm16', ProtocolId.ESP)}, {subnet: '198.18.9.0/24', esp: parseProposals('aes256-sha512', ProtocolId.ESP)}]
  const p = up({res: {policies}})
  assert.equal(p.i.subnets, ['198.18.1.0/24', '198.18.9.0/24'])
  const ups = only(p.iEvents, 'child-up').map((e) => e.child)
  assert.is(ups.length, 2)
  assert.is(only(p.rEvents, 'child-up').length, 2)
  assert.ok(ups[0] === p.i.child, 'the first is the IKE_AUTH one')
  const show = (c: ChildSa) => [c.suite, c.tsI.map((s) => `${s.start}-${s.end}`), c.tsR.map((s) => `${s.start}-${s.end}`)]
  assert.equal(ups.map(show), [
    [{encr: Encr.AES_GCM_16, encrKeyBits: 256}, ['198.18.200.10-198.18.200.10'], ['198.18.1.0-198.18.1.255']],
    [{encr: Encr.AES_CBC, encrKeyBits: 256, integ: Integ.HMAC_SHA2_512_256}, ['198.18.200.10-198.18.200.10'], ['198.18.9.0-198.18.9.255']],
  ])
  sameChildren(p, 2)
  // The second request offered exactly that policy: one proposal, AES-CBC-256 and HMAC-SHA2-512 only.
  const [i, r] = ikeOf(p)
  const create = p.sent.find((s) => s.dir === 'i->r' && decodeMessage(s.data).exchange === Exchange.CREATE_CHILD_SA)!
  const offered = payloadOf(openSk(create.data, r.recv).inner, P.SA)!.proposals
  assert.equal(offered.map((x) => x.transforms.map((tr) => [tr.type, tr.id, keyLength(tr)])), [[[TransformType.ENCR, Encr.AES_CBC, 256], [TransformType.INTEG, Integ.HMAC_SHA2_512_256, undefined], [TransformType.ESN, Esn.NONE, undefined]]])
  // Each CHILD_SA is rekeyed with its own policy.
  p.feed('i', i.rekeyChild(ups[1].spiI, p.now))
  assert.equal(only(p.iEvents, 'rekeyed')[0].child.suite, ups[1].suite)
  sameChildren(p, 2)
})

t('a pushed policy the client cannot meet gives child-failed (TK_UNSUPPORTED, naming the subnet); the rest stays up', () => {
  const des = {protocol: ProtocolId.ESP, encr: [{id: Encr.TRIPLE_DES}], integ: [Integ.HMAC_SHA1_96], prf: [], dh: [], esn: [0]}
  const p = up({res: {policies: [{subnet: '198.18.1.0/24', esp: espPolicies()}, {subnet: '198.18.9.0/24', esp: [des]}]}})
  const f = only(p.iEvents, 'child-failed')
  assert.equal(f.map((x) => x.error.code), ['TK_UNSUPPORTED'])
  assert.match(f[0].error.message, '198.18.9.0/24')
  assert.equal(only(p.iEvents, 'failed'), [])
  sameChildren(p, 1)
  dpdBothWays(p)
})

t('the responder refuses a CHILD_SA outside its policies (TS_UNACCEPTABLE) or with other transforms (NO_PROPOSAL_CHOSEN)', () => {
  // A subnet written with host bits is pushed as its network.
  const p = up({res: {policies: [{subnet: '198.18.1.0/24', esp: parseProposals('aes256gcm16', ProtocolId.ESP)}, {subnet: '198.18.9.7/24', esp: parseProposals('aes256-sha512', ProtocolId.ESP)}]}})
  assert.equal(p.i.subnets, ['198.18.1.0/24', '198.18.9.0/24'])
  const [i] = ikeOf(p)
  const tsI = [tsFromCidr('198.18.200.10/32')]
  p.feed('i', i.createChild({policy: parseProposals('aes256-sha512', ProtocolId.ESP), tsI, tsR: [tsFromCidr('10.0.0.0/8')]}, p.now))
  p.feed('i', i.createChild({policy: parseProposals('aes128-sha1', ProtocolId.ESP), tsI, tsR: [tsFromCidr('198.18.9.0/24')]}, p.now))
  assert.equal(only(p.iEvents, 'child-failed').map((f) => [f.error.code, f.error.message]), [
    ['TK_DENIED', 'the gateway refused the CHILD_SA: traffic selectors unacceptable (TS_UNACCEPTABLE)'],
    ['TK_UNSUPPORTED', 'the gateway refused the CHILD_SA: no proposal in common (NO_PROPOSAL_CHOSEN)'],
  ])
  assert.is(only(p.rEvents, 'child-failed').length, 2, 'the responder says why too')
  sameChildren(p, 2)
})

t('at most maxChildren CHILD_SAs: further requests get NO_ADDITIONAL_SAS (child-failed TK_RESOURCE_LIMIT)', () => {
  const p = up({res: {maxChildren: 2}})
  const [i] = ikeOf(p)
  for (let k = 0; k < 3; k++) p.feed('i', i.createChild({policy: espPolicies(), tsI: p.i.child.tsI, tsR: p.i.child.tsR}, p.now))
  assert.equal(only(p.iEvents, 'child-failed').map((f) => f.error.code), ['TK_RESOURCE_LIMIT', 'TK_RESOURCE_LIMIT'])
  sameChildren(p, 2)
  // Requests not yet answered count too: the initiator's own bound refuses without asking.
  const q = up({ini: {maxChildren: 3}})
  const [qi] = ikeOf(q)
  const sent = q.sent.length
  const asks = [0, 1, 2].flatMap(() => qi.createChild({policy: espPolicies(), tsI: q.i.child.tsI, tsR: q.i.child.tsR}, q.now))
  assert.equal(only(asks, 'child-failed').map((f) => f.error.code), ['TK_RESOURCE_LIMIT'])
  q.feed('i', asks)
  assert.is(q.sent.length, sent + 4, 'two CREATE_CHILD_SA exchanges')
  sameChildren(q, 3)
})

t.run()
