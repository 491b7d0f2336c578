import {X509Certificate} from 'node:crypto'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {AuthMethod, Exchange, Flag, IdType, PayloadType as P, Prf} from '../../src/ike/codec/constants.js'
import {decodeInner, decodeMessage, encodeMessage} from '../../src/ike/codec/message.js'
import {payloadOf, payloadsOf, type Payload} from '../../src/ike/codec/payload.js'
import {idToString} from '../../src/ike/codec/id.js'
import {cpAddress} from '../../src/ike/codec/cp.js'
import {deriveChildKeys, joinFragments, openProtected, openSk, parseSignatureAuth, pskAuth, sealProtected, sealSk, signedOctets, verifyAuth} from '../../src/ike/core/crypto.js'
import {suiteOf} from '../../src/ike/core/proposals.js'
import {CodecError} from '../../src/lib/errors.js'
import {capturedMessages, chosen, ikeKeySets, keyDumps, keysFor, LAB_PSK, nonce, reconstructSas, saOf, type Sa} from './fixtures.js'

/**
 * The strongSwan capture (scripts/ike-capture.sh): every message decodes and re-encodes
 * byte-exact; the keys derived here from the captured nonces, SPIs and charon's logged DH secret
 * equal charon's; every SK opens with them, its inner payloads decode, and re-sealing with the same
 * IV and padding gives the same bytes; the AUTH payloads recompute (PSK) or verify (ECDSA).
 */
const t = suite('ike: strongSwan capture')

const msgs = capturedMessages()
const sets = ikeKeySets()
/** Every IKE_SA of the capture with the keys derived here (test/ike/fixtures.ts). */
const sas = reconstructSas(msgs, sets)

t('the capture holds the five IKE_SAs and every exchange type the issue names', () => {
  assert.is(sets.length, 5, 'five key sets in keys.txt')
  const kinds = new Set(msgs.map((c) => decodeMessage(c.raw).exchange))
  assert.equal([...kinds].sort(), [Exchange.IKE_SA_INIT, Exchange.IKE_AUTH, Exchange.CREATE_CHILD_SA, Exchange.INFORMATIONAL])
  assert.is(msgs.length, 34)
})

t('every captured message decodes and re-encodes byte-exact', () => {
  for (const c of msgs) assert.equal(encodeMessage(decodeMessage(c.raw)).toString('hex'), c.raw.toString('hex'), `line ${c.line}`)
})

t('IKE_SA_INIT: proposals, KE, nonces and notifies as strongSwan sent them', () => {
  const req = decodeMessage(msgs[0].raw)
  const res = decodeMessage(msgs[1].raw)
  assert.equal(req.payloads.slice(0, 3).map((p) => p.type), [P.SA, P.KE, P.NONCE])
  assert.ok(req.payloads.slice(3).every((p) => p.type === P.N || p.type === P.V), 'then notifies (and vendor IDs)')
  assert.ok(req.flags & Flag.INITIATOR)
  assert.ok(res.flags & Flag.RESPONSE)
  assert.is(payloadOf(req.payloads, P.KE)!.group, 31)
  assert.is(payloadOf(req.payloads, P.KE)!.data.length, 32)
  const notes = payloadsOf(res.payloads, P.N).map((n) => n.notify)
  for (const n of [16388, 16389, 16430, 16431]) assert.ok(notes.includes(n), `N(${n}) in the response`)
  assert.equal(chosen(res.payloads), {encr: 20, encrKeyBits: 256, prf: Prf.HMAC_SHA2_256, dh: 31})
})

t('IKE_SA keys derived from the captured nonces, SPIs and DH secret equal charon\'s (GCM/x25519, CBC/MODP-2048, ECDSA, rekeyed)', () => {
  assert.is(sas.length, 5)
  for (const [i, sa] of sas.entries()) {
    const l = sa.logged
    assert.equal(sa.seed, l.get('SKEYSEED'), `SA ${i} SKEYSEED${i === 1 ? ' (rekeyed, §2.18)' : ''}`)
    assert.equal(sa.keys.skD, l.get('Sk_d secret'), `SA ${i} SK_d`)
    assert.equal(sa.keys.skEi, l.get('Sk_ei secret'), `SA ${i} SK_ei`)
    assert.equal(sa.keys.skEr, l.get('Sk_er secret'), `SA ${i} SK_er`)
    assert.equal(sa.keys.skPi, l.get('Sk_pi secret'), `SA ${i} SK_pi`)
    assert.equal(sa.keys.skPr, l.get('Sk_pr secret'), `SA ${i} SK_pr`)
    if (sa.suite.integ) {
      assert.equal(sa.keys.skAi, l.get('Sk_ai secret'), `SA ${i} SK_ai`)
      assert.equal(sa.keys.skAr, l.get('Sk_ar secret'), `SA ${i} SK_ar`)
    }
  }
  assert.is(sas[2].suite.encr, 12, 'the third SA is AES-CBC')
  assert.is(sas[2].suite.dh, 14, 'with MODP-2048')
})

t('every SK and SKF opens with the derived keys, decodes, and re-seals byte-exact with the same IV and padding', () => {
  let opened = 0
  for (const c of msgs) {
    const m = decodeMessage(c.raw)
    if (m.exchange === Exchange.IKE_SA_INIT) continue
    const k = keysFor(saOf(sas, m), m)
    const o = openProtected(c.raw, k)
    const again = o.encrypted.type === P.SK
      ? sealSk({...o.message, payloads: o.message.payloads.slice(0, -1)}, decodeInner(o.plain, o.encrypted.inner), k, {iv: o.iv, padding: o.padding})
      : sealProtected(o.message, o.plain, k, {iv: o.iv, padding: o.padding})
    assert.equal(again.toString('hex'), c.raw.toString('hex'), `line ${c.line}`)
    opened++
  }
  assert.is(opened, 26)
})

t('RSA certificates: IKE_AUTH in two SKF fragments each way; reassembled, the RFC 7427 sha256WithRSAEncryption AUTH verifies', () => {
  const sa = sas[4]
  const at = msgs.findIndex((c) => c.raw.subarray(0, 8).equals(sa.spiI))
  for (const [from, real, peerNonce, skP, idType] of [[at + 2, msgs[at].raw, sa.nr, sa.keys.skPi, P.IDi], [at + 4, msgs[at + 1].raw, sa.ni, sa.keys.skPr, P.IDr]] as const) {
    const frags = [msgs[from], msgs[from + 1]].map((c) => openProtected(c.raw, keysFor(sa, decodeMessage(c.raw))))
    assert.equal(frags.map((f) => f.encrypted.type === P.SKF && `${f.encrypted.fragment}/${f.encrypted.total}`), ['1/2', '2/2'])
    assert.ok(msgs[from].raw.length <= 1280, 'fragments of at most 1280 bytes')
    const ps = joinFragments([frags[1], frags[0]])
    const auth = payloadOf(ps, P.AUTH)!
    assert.is(parseSignatureAuth(auth.data).algorithm.name, 'sha256WithRSAEncryption')
    const octets = signedOctets(sa.suite.prf!, real, peerNonce, skP, payloadOf(ps, idType)!)
    assert.ok(verifyAuth(auth.method, new X509Certificate(payloadOf(ps, P.CERT)!.data).publicKey, octets, auth.data))
    assert.throws(() => joinFragments([frags[0]]), (e: unknown) => e instanceof CodecError && e.code === 'BAD_SKF')
    assert.throws(() => joinFragments([frags[0], frags[0]]), (e: unknown) => e instanceof CodecError && e.code === 'BAD_SKF')
  }
})

/** The decrypted inner payloads of message `i`. */
function inner(sas: Sa[], i: number): Payload[] {
  const m = decodeMessage(msgs[i].raw)
  return openSk(msgs[i].raw, keysFor(saOf(sas, m), m)).inner
}

t('IKE_AUTH inside SK: IDs, CP with the virtual IP and DNS, narrowed TS, the ESP choice', () => {
  const req = inner(sas, 2)
  const res = inner(sas, 3)
  assert.is(idToString(payloadOf(req, P.IDi)!), 'client-psk.ks.test')
  assert.is(payloadOf(req, P.IDi)!.idType, IdType.FQDN)
  assert.is(idToString(payloadOf(res, P.IDr)!), 'gw.ks.test')
  const cp = payloadOf(res, P.CP)!
  assert.is(cp.cfgType, 2, 'CFG_REPLY')
  assert.equal(cp.attributes.filter((a) => a.type === 1).map(cpAddress), ['198.18.200.1'])
  assert.equal(cp.attributes.filter((a) => a.type === 3).map(cpAddress), ['198.18.1.53'])
  assert.equal(payloadOf(res, P.TSr)!.selectors.map((s) => [s.start, s.end]), [['198.18.1.0', '198.18.1.255']])
  assert.equal(payloadOf(res, P.TSi)!.selectors.map((s) => [s.start, s.end]), [['198.18.200.1', '198.18.200.1']])
  assert.is(payloadOf(res, P.SA)!.proposals[0].protocol, 3, 'ESP')
})

t('PSK AUTH recomputed from the captured messages and the lab PSK equals the AUTH payloads (both directions, GCM and CBC)', () => {
  for (const [sa, at] of [[sas[0], 0], [sas[2], 14]] as const) {
    const init = msgs[at].raw
    const resp = msgs[at + 1].raw
    const req = inner(sas, at + 2)
    const res = inner(sas, at + 3)
    const p = sa.suite.prf!
    const octetsI = signedOctets(p, init, sa.nr, sa.keys.skPi, payloadOf(req, P.IDi)!)
    const octetsR = signedOctets(p, resp, sa.ni, sa.keys.skPr, payloadOf(res, P.IDr)!)
    assert.is(payloadOf(req, P.AUTH)!.method, AuthMethod.SHARED_KEY_MIC)
    assert.equal(pskAuth(p, LAB_PSK, octetsI), payloadOf(req, P.AUTH)!.data, 'initiator AUTH')
    assert.equal(pskAuth(p, LAB_PSK, octetsR), payloadOf(res, P.AUTH)!.data, 'responder AUTH')
  }
})

t('ECDSA AUTH (RFC 7427, method 14) of both sides verifies with the key of the CERT each sent', () => {
  const sa = sas[3]
  const req = inner(sas, 22)
  const res = inner(sas, 23)
  for (const [ps, real, peerNonce, skP, idType] of [[req, msgs[20].raw, sa.nr, sa.keys.skPi, P.IDi], [res, msgs[21].raw, sa.ni, sa.keys.skPr, P.IDr]] as const) {
    const auth = payloadOf(ps, P.AUTH)!
    assert.is(auth.method, AuthMethod.DIGITAL_SIGNATURE)
    const cert = new X509Certificate(payloadOf(ps, P.CERT)!.data)
    const id = payloadOf(ps, idType)!
    const octets = signedOctets(sa.suite.prf!, real, peerNonce, skP, id)
    assert.ok(verifyAuth(auth.method, cert.publicKey, octets, auth.data), `${idToString(id)} AUTH verifies`)
    assert.not.ok(verifyAuth(auth.method, cert.publicKey, Buffer.concat([octets, Buffer.from([0])]), auth.data), 'other octets do not')
  }
  assert.ok(payloadsOf(decodeMessage(msgs[21].raw).payloads, P.CERTREQ).length > 0, 'the gateway asked for certificates')
})

t('CHILD_SA KEYMAT (first CHILD_SA from the IKE_SA_INIT nonces; rekey with PFS) equals charon\'s ESP keys', () => {
  const dumps = keyDumps().filter((d) => d.sa === '<rw-psk|1>')
  const enc = dumps.filter((d) => d.label === 'encryption initiator key').map((d) => d.value)
  const encR = dumps.filter((d) => d.label === 'encryption responder key').map((d) => d.value)
  const sa = sas[0]
  const esp = suiteOf(payloadOf(inner(sas, 3), P.SA)!.proposals[0])
  const first = deriveChildKeys(sa.suite.prf!, sa.keys.skD, esp, sa.ni, sa.nr)
  assert.equal(first.encI, enc[0])
  assert.equal(first.encR, encR[0])
  const req = inner(sas, 4)
  const res = inner(sas, 5)
  const dh = dumps.find((d) => d.label === 'DH secret')!.value
  const rekeyed = deriveChildKeys(sa.suite.prf!, sa.keys.skD, suiteOf(payloadOf(res, P.SA)!.proposals[0]), nonce(req), nonce(res), dh)
  assert.equal(rekeyed.encI, enc[1])
  assert.equal(rekeyed.encR, encR[1])
  assert.ok(payloadsOf(req, P.N).some((n) => n.notify === 16393), 'N(REKEY_SA) in the rekey request')
})

t('INFORMATIONAL DELETE payloads: ESP SPIs after the CHILD rekey, IKE after the IKE rekey', () => {
  const childDel = payloadOf(inner(sas, 6), P.D)!
  assert.is(childDel.protocol, 3)
  assert.is(childDel.spis.length, 1)
  assert.is(childDel.spis[0].length, 4)
  const ikeDel = payloadOf(inner(sas, 10), P.D)!
  assert.equal({protocol: ikeDel.protocol, n: ikeDel.spis.length}, {protocol: 1, n: 0})
})

t.run()
