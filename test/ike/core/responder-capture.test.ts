import {randomBytes} from 'node:crypto'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {AuthMethod, Exchange, PayloadType as P} from '../../../src/ike/codec/constants.js'
import {decodeMessage} from '../../../src/ike/codec/message.js'
import {payloadOf} from '../../../src/ike/codec/payload.js'
import {openSk, pskAuth, signedOctets} from '../../../src/ike/core/crypto.js'
import type {Action} from '../../../src/ike/core/exchange.js'
import {suiteOf} from '../../../src/ike/core/proposals.js'
import {IkeResponder} from '../../../src/ike/core/responder.js'
import {capturedMessages, ikeKeySets, keyDumps, LAB_GATEWAY, LAB_PSK, reconstructSas} from '../fixtures.js'

/**
 * Our responder driven by the captured strongSwan initiator. The capture fixes the initiator's KE
 * and nonce; the responder is given charon's SPIr, Nr and KE value and the logged DH secret
 * (injected randomness), so the captured IKE_AUTH opens with the keys our responder derives.
 */
const t = suite('ike core: responder against the strongSwan capture')

const msgs = capturedMessages()
const sas = reconstructSas(msgs, ikeKeySets())

for (const [n, at, name] of [[0, 0, 'PSK, AES-GCM-256, x25519'], [2, 14, 'PSK, AES-CBC-256, HMAC-SHA2-256, MODP-2048']] as const) {
  t(`${name}: charon's IKE_SA_INIT and IKE_AUTH get an answer that opens with charon's keys, with our AUTH, CP, TS and charon's CHILD_SA keys`, () => {
    const sa = sas[n]
    const charonInit = decodeMessage(msgs[at + 1].raw)
    const ke = payloadOf(charonInit.payloads, P.KE)!
    const queue = [randomBytes(32), sa.spiR, sa.nr, Buffer.from('c0ffee01', 'hex')] // cookie secret, SPIr, Nr, ESP SPI
    const res = new IkeResponder(
      LAB_GATEWAY,
      {
        random: (len) => queue.shift() ?? randomBytes(len),
        keyExchange: (group) => ({group, publicKey: ke.data, computeSecret: () => sa.logged.get('shared Diffie Hellman secret')!}),
      },
    )
    const from = {address: '192.0.2.10', port: 500}
    const init = res.receive(msgs[at].raw, from, 0).filter((a): a is Extract<Action, {type: 'send'}> => a.type === 'send')
    assert.is(init.length, 1)
    const ours = decodeMessage(init[0].data)
    assert.ok(ours.spiR.equals(sa.spiR))
    assert.equal(suiteOf(payloadOf(ours.payloads, P.SA)!.proposals[0]), sa.suite, 'the same IKE choice as charon')
    const out = res.receive(msgs[at + 2].raw, {...from, port: 4500}, 1)
    const sent = out.filter((a): a is Extract<Action, {type: 'send'}> => a.type === 'send')
    assert.is(sent.length, 1, JSON.stringify(out.map((a) => (a.type === 'failed' ? a.error.message : a.type))))
    const reply = decodeMessage(sent[0].data)
    assert.equal([reply.exchange, reply.messageId], [Exchange.IKE_AUTH, 1])
    const inner = openSk(sent[0].data, sa.sk.responder).inner
    const idr = payloadOf(inner, P.IDr)!
    const auth = payloadOf(inner, P.AUTH)!
    assert.is(auth.method, AuthMethod.SHARED_KEY_MIC)
    // What charon's initiator would check: our IKE_SA_INIT answer, its nonce, SK_pr, our IDr.
    assert.equal(auth.data, pskAuth(sa.suite.prf!, LAB_PSK, signedOctets(sa.suite.prf!, init[0].data, sa.ni, sa.keys.skPr, idr)))
    assert.equal(payloadOf(inner, P.TSr)!.selectors.map((s) => [s.start, s.end]), [['198.18.1.0', '198.18.1.255']])
    assert.equal(payloadOf(inner, P.TSi)!.selectors.map((s) => [s.start, s.end]), [['198.18.200.1', '198.18.200.1']])
    const est = out.find((a): a is Extract<Action, {type: 'established'}> => a.type === 'established')!.sa
    assert.is(est.peerId, 'client-psk.ks.test')
    assert.is(est.vip, '198.18.200.1')
    // charon's ESP keys of this IKE_SA's first CHILD_SA, when we chose what charon's gateway chose.
    const charonEsp = suiteOf(payloadOf(openSk(msgs[at + 3].raw, sa.sk.responder).inner, P.SA)!.proposals[0])
    assert.equal(est.child.suite, charonEsp)
    const dumps = keyDumps().filter((d) => d.sa === `<rw-psk|${n + 1}>`)
    assert.equal(est.child.keys.encI, dumps.find((d) => d.label === 'encryption initiator key')!.value)
    assert.equal(est.child.keys.encR, dumps.find((d) => d.label === 'encryption responder key')!.value)
  })
}

t.run()
