import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {Exchange, Flag} from '../../../src/ike/codec/constants.js'
import {decodeMessage} from '../../../src/ike/codec/message.js'
import {idFromString, idToString, type IdBody} from '../../../src/ike/codec/id.js'
import type {Endpoint} from '../../../src/ike/core/exchange.js'
import {MAX_SAS_PER_ID} from '../../../src/ike/core/responder.js'
import {fleet, only, PSK} from './loop.js'

/** IKE_SAs per identity on the responder: the cap (policy before work) and INITIAL_CONTACT. */
const t = suite('ike core: IKE_SAs per identity')

const at = (n: number): Endpoint => ({address: `10.0.1.${n}`, port: 500})
const ALICE = 'client@example.net'

/** A gateway taking any identity with the PSK, counting its leases by identity. */
function gateway(extra: Parameters<typeof fleet>[0] = {}): {f: ReturnType<typeof fleet>; leases: string[]} {
  const leases: string[] = []
  const f = fleet({...extra, res: {psk: () => PSK, lease: (id: IdBody) => (leases.push(idToString(id)), '198.18.200.10'), ...extra.res}})
  return {f, leases}
}

t(`one identity without INITIAL_CONTACT gets ${MAX_SAS_PER_ID} IKE_SAs; the next is refused before its lease, naming it, while another identity still connects`, () => {
  const {f, leases} = gateway()
  for (let n = 1; n <= MAX_SAS_PER_ID; n++) {
    const c = f.connect(at(n), {initialContact: false})
    assert.is(only(c.events, 'established').length, 1, `SA ${n}`)
  }
  assert.is(f.res.established(ALICE).length, MAX_SAS_PER_ID)
  const over = f.connect(at(9), {initialContact: false})
  assert.is(only(over.events, 'established').length, 0)
  const ini = only(over.events, 'failed')
  assert.is(ini.length, 1)
  assert.is(ini[0].error.code, 'TK_NOT_AUTHORIZED')
  assert.match(ini[0].error.message, /AUTHENTICATION_FAILED/)
  const res = only(f.rEvents, 'failed')
  assert.is(res.length, 1)
  assert.is(res[0].error.code, 'TK_RESOURCE_LIMIT')
  assert.is(res[0].error.message, `IKE_AUTH from 10.0.1.9: ${ALICE} already has ${MAX_SAS_PER_ID} IKE_SAs, the limit per identity (INITIAL_CONTACT would replace them)`)
  assert.is(leases.length, MAX_SAS_PER_ID, 'no lease for the refused one')
  assert.is(f.res.established(ALICE).length, MAX_SAS_PER_ID)
  // Another identity is not held back by the first one's SAs.
  const bob = f.connect(at(10), {initialContact: false, id: idFromString('bob@example.net')})
  assert.is(only(bob.events, 'established').length, 1)
  assert.is(f.res.established('bob@example.net').length, 1)
})

t('the cap counts SAs that are up: after one of them is deleted the identity connects again', () => {
  const {f} = gateway({res: {maxSasPerId: 2}})
  const first = f.connect(at(1), {initialContact: false})
  f.connect(at(2), {initialContact: false})
  assert.is(only(f.connect(at(3), {initialContact: false}).events, 'established').length, 0)
  f.feed(at(1), first.ini.ikeSa!.close(f.now))
  assert.equal(only(first.events, 'deleted').map((d) => [d.what, d.by]), [['ike', 'us']])
  assert.is(f.res.established(ALICE).length, 1)
  assert.is(only(f.connect(at(4), {initialContact: false}).events, 'established').length, 1)
  assert.is(f.res.established(ALICE).length, 2)
})

t('INITIAL_CONTACT replaces the identity\'s older IKE_SAs, even at the cap: each reported deleted at once and sent a DELETE; other identities keep theirs', () => {
  const {f} = gateway()
  const old = Array.from({length: MAX_SAS_PER_ID}, (_, i) => f.connect(at(i + 1), {initialContact: false}))
  const bob = f.connect(at(20), {id: idFromString('bob@example.net')})
  const oldSpis = old.map((c) => c.ini.ikeSa!.spiI.toString('hex'))
  const sent = f.toClients.length
  const fresh = f.connect(at(30))
  const up = only(fresh.events, 'established')
  assert.is(up.length, 1)
  // The responder's deletions come before the new SA's `established`, so the data plane drops the old CHILD_SAs first.
  const rAfter = f.rEvents.slice(f.rEvents.findIndex((a) => a.type === 'deleted'))
  const deleted = only(rAfter, 'deleted')
  assert.equal(deleted.map((d) => [d.spiI.toString('hex'), d.what, d.by]), oldSpis.map((s) => [s, 'ike', 'us']))
  for (const d of deleted) assert.is(d.why, `replaced by IKE_SA ${up[0].sa.spiI.toString('hex')} of ${ALICE} (INITIAL_CONTACT)`)
  const types = rAfter.map((a) => a.type)
  assert.ok(types.indexOf('established') > types.lastIndexOf('deleted'), types.join(' '))
  // A DELETE of the IKE_SA went to each old peer's address, which answered it and closed.
  const deletes = f.toClients.slice(sent).filter((s) => {
    const m = decodeMessage(s.data)
    return m.exchange === Exchange.INFORMATIONAL && !(m.flags & Flag.RESPONSE)
  })
  assert.equal(deletes.map((s) => s.to.address).sort(), old.map((_, i) => at(i + 1).address).sort())
  for (const c of old) {
    assert.equal(only(c.events, 'deleted').map((d) => [d.what, d.by]), [['ike', 'peer']])
    assert.is(c.ini.ikeSa!.state, 'closed')
  }
  // Nothing more is reported of the replaced SAs once their DELETEs are answered.
  assert.is(only(f.rEvents, 'deleted').length, MAX_SAS_PER_ID)
  assert.is(only(f.rEvents, 'failed').length, 0)
  assert.equal(f.res.established(ALICE).map((s) => s.spiI.toString('hex')), [up[0].sa.spiI.toString('hex')])
  assert.is(f.res.established('bob@example.net').length, 1)
  assert.is(bob.ini.ikeSa!.state, 'established')
})

t('a replaced SA whose old peer is gone: the DELETE is retransmitted, then forgotten without a report', () => {
  const {f} = gateway()
  const old = f.connect(at(1), {initialContact: false})
  // The old client vanished: nothing it would answer reaches the responder any more.
  old.ini.receive = () => []
  f.connect(at(2))
  f.run(f.now + 60_000)
  assert.is(only(f.rEvents, 'deleted').length, 1)
  assert.is(only(f.rEvents, 'failed').length, 0)
  const retries = f.toClients.filter((s) => s.to.address === at(1).address && decodeMessage(s.data).exchange === Exchange.INFORMATIONAL)
  assert.is(retries.length, 6, 'the DELETE and its 5 retransmissions')
  assert.is(f.res.established(ALICE).length, 1)
})

t('INITIAL_CONTACT with a wrong PSK deletes nothing', () => {
  const {f} = gateway({res: {psk: (id: IdBody) => (idToString(id) === ALICE ? PSK : undefined)}})
  f.connect(at(1), {initialContact: false})
  const forged = f.connect(at(2), {auth: {psk: Buffer.from('not the secret')}})
  assert.is(only(forged.events, 'established').length, 0)
  assert.is(only(f.rEvents, 'deleted').length, 0)
  assert.is(f.res.established(ALICE).length, 1)
  assert.ok(f.toClients.every((s) => decodeMessage(s.data).exchange !== Exchange.INFORMATIONAL), 'no DELETE sent')
})

t.run()
