import {randomBytes} from 'node:crypto'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {Exchange, PayloadType as P} from '../../../src/ike/codec/constants.js'
import {decodeMessage} from '../../../src/ike/codec/message.js'
import {payloadOf, type Payload} from '../../../src/ike/codec/payload.js'
import {openSk, type SkKeys} from '../../../src/ike/core/crypto.js'
import type {Action} from '../../../src/ike/core/exchange.js'
import {IkeResponder} from '../../../src/ike/core/responder.js'
import {capturedMessages, ikeKeySets, keyDumps, LAB_GATEWAY, reconstructSas} from '../fixtures.js'

/**
 * Our responder in the strongSwan capture's first IKE_SA (test/fixtures/ike, SAs 1 and 2), past
 * IKE_AUTH: charon's initiator rekeys the CHILD_SA with PFS and deletes the old one, then our
 * gateway rekeys the IKE_SA as charon's gateway did (its SPI, nonce and KE injected), charon's
 * answer makes our new IKE_SA, and charon's DELETE of that new IKE_SA opens with its keys.
 */
const t = suite('ike core: CHILD_SA and IKE_SA rekeys against the strongSwan capture')

const msgs = capturedMessages()
const sas = reconstructSas(msgs, ikeKeySets())
const dumps = keyDumps().filter((d) => d.sa === '<rw-psk|1>')
const open = (i: number, k: SkKeys): Payload[] => openSk(msgs[i].raw, k).inner
const sends = (as: Action[]): Buffer[] => as.flatMap((a) => (a.type === 'send' ? [a.data] : []))

t('charon rekeys the CHILD_SA with PFS and deletes the old one; our gateway rekeys the IKE_SA; keys equal charon\'s throughout', () => {
  const [sa, rekeyed] = sas
  // charon's responder values, handed to ours as its randomness and DH (by size, in call order).
  const ke = (i: number): Buffer => payloadOf(i === 1 ? decodeMessage(msgs[1].raw).payloads : open(i, sa.sk.responder), P.KE)!.data
  const nonceOf = (i: number, k: SkKeys): Buffer => payloadOf(open(i, k), P.NONCE)!.data
  const firstSpi = payloadOf(open(3, sa.sk.responder), P.SA)!.proposals[0].spi
  const rekeySpi = payloadOf(open(5, sa.sk.responder), P.SA)!.proposals[0].spi
  const ikeReq = payloadOf(open(8, sa.sk.responder), P.SA)!.proposals[0]
  const jitter = Buffer.alloc(4)
  const queues: Record<number, Buffer[]> = {
    32: [randomBytes(32), sa.nr, nonceOf(5, sa.sk.responder), nonceOf(8, sa.sk.responder)],
    8: [sa.spiR, ikeReq.spi],
    4: [firstSpi, jitter, jitter, rekeySpi, jitter],
  }
  const secrets = [sa.logged.get('shared Diffie Hellman secret')!, dumps.find((d) => d.label === 'DH secret')!.value, rekeyed.logged.get('shared Diffie Hellman secret')!]
  const publics = [ke(1), ke(5), ke(8)]
  let dh = 0
  const res = new IkeResponder(
    LAB_GATEWAY,
    {
      random: (n) => queues[n]?.shift() ?? randomBytes(n),
      keyExchange: (group) => {
        const k = dh++
        return {group, publicKey: publics[k], computeSecret: () => secrets[k]}
      },
    },
  )
  const from = {address: '192.0.2.10', port: 4500}
  res.receive(msgs[0].raw, {...from, port: 500}, 0)
  const auth = res.receive(msgs[2].raw, from, 1)
  assert.ok(auth.some((a) => a.type === 'established'))
  const ike = res.ikeSa(sa.spiI)!

  // 1. charon's CHILD_SA rekey with KE: our answer carries charon's SPI, nonce and KE, and the new keys are charon's.
  const out = res.receive(msgs[4].raw, from, 2)
  const reply = openSk(sends(out)[0], sa.sk.responder).inner
  assert.ok(payloadOf(reply, P.SA)!.proposals[0].spi.equals(rekeySpi))
  assert.ok(payloadOf(reply, P.KE)!.data.equals(ke(5)))
  const r = out.find((a): a is Extract<Action, {type: 'rekeyed'}> => a.type === 'rekeyed')!
  assert.is(r.by, 'peer')
  const enc = (label: string) => dumps.filter((d) => d.label === label).map((d) => d.value)
  assert.equal([r.child.keys.encI, r.child.keys.encR], [enc('encryption initiator key')[1], enc('encryption responder key')[1]])
  assert.equal(r.child.suite, {encr: 20, encrKeyBits: 256, dh: payloadOf(open(4, sa.sk.initiator), P.KE)!.group})

  // 2. charon deletes the old CHILD_SA: we answer with our SPI of it, as charon did (message 7).
  const del = res.receive(msgs[6].raw, from, 3)
  assert.equal(payloadOf(openSk(sends(del)[0], sa.sk.responder).inner, P.D), payloadOf(open(7, sa.sk.responder), P.D))
  assert.ok(del.some((a) => a.type === 'deleted' && a.what === 'child' && a.by === 'peer'))
  assert.is(ike.children.length, 1)

  // 3. Our gateway rekeys the IKE_SA (charon's SPI, Ni and KE); charon's answer makes the same new IKE_SA.
  const req = sends(ike.rekeyIke(4))
  assert.equal(decodeMessage(req[0]).messageId, 0)
  assert.equal(payloadOf(openSk(req[0], sa.sk.responder).inner, P.NONCE)!.data, nonceOf(8, sa.sk.responder))
  const done = res.receive(msgs[9].raw, from, 5)
  const moved = done.find((a): a is Extract<Action, {type: 'ike-rekeyed'}> => a.type === 'ike-rekeyed')!
  assert.ok(moved.sa.spiI.equals(rekeyed.spiI) && moved.sa.spiR.equals(rekeyed.spiR))
  assert.is(moved.sa.role, 'initiator')
  const next = res.ikeSa(rekeyed.spiI)!
  assert.ok(res.ikeSa(sa.spiI) === next, 'the old SPIi finds the new IKE_SA')
  assert.equal([next.send, next.recv], [rekeyed.sk.initiator, rekeyed.sk.responder], 'SK_e/SK_a both ways')
  assert.equal(next.children.map((c) => c.spiI), [r.child.spiI])
  // Then we delete the old IKE_SA (charon's gateway did, message 10); charon's answer (message 11) closes it quietly.
  const old = sends(done)
  assert.equal(openSk(old[0], sa.sk.responder).inner, open(10, sa.sk.responder))
  assert.equal(res.receive(msgs[11].raw, from, 6).filter((a) => a.type !== 'timer'), [])
  assert.is(ike.state, 'closed')

  // 4. charon deletes the new IKE_SA on it: it opens with the new keys, and our answer opens with charon's.
  const bye = res.receive(msgs[12].raw, from, 7)
  assert.equal(openSk(sends(bye)[0], rekeyed.sk.initiator).inner, open(13, rekeyed.sk.initiator))
  assert.ok(bye.some((a) => a.type === 'deleted' && a.what === 'ike' && a.by === 'peer'))
  assert.is(decodeMessage(sends(bye)[0]).exchange, Exchange.INFORMATIONAL)
})

t.run()
