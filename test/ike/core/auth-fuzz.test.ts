import {randomBytes} from 'node:crypto'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {AuthMethod, IdType, PayloadType as P, Prf} from '../../../src/ike/codec/constants.js'
import {certSubject, parseDn} from '../../../src/ike/codec/dn.js'
import {decodeId, idFromString, idToString} from '../../../src/ike/codec/id.js'
import type {Payload} from '../../../src/ike/codec/payload.js'
import {ourAuth, verifyPeer, type PeerCheck} from '../../../src/ike/core/auth.js'
import {CodecError, TunkitError} from '../../../src/lib/errors.js'
import {CASES, fuzz, mutate, refusesOnly} from '../../helpers/fuzz.js'
import {makeCa, makeLeaf, T0} from './auth-certs.js'

/**
 * What a peer controls in certificate authentication, made hostile (seeded): the DN decoder
 * takes mutated and random DER and throws only CodecError; verifyPeer, given mutated CERT, AUTH
 * and ID payloads, only accepts or throws TunkitError, and never accepts a changed certificate or
 * signature. A verification costs far more than a decode: CASES / 10 of those.
 */
const t = suite('fuzz: ike authentication')

const ca = await makeCa('C=ZZ, O=tk-test, CN=fuzz CA', 'p256')
const inter = await makeCa('C=ZZ, O=tk-test, CN=fuzz intermediate', 'p256', {issuer: ca})
const leaf = await makeLeaf(inter, 'C=ZZ, O=tk-test, CN=peer.example.net', {sans: ['dns:peer.example.net', 'ip:192.0.2.1', 'email:peer@example.net']})
const subject = certSubject(Buffer.from(leaf.cert.raw))

t('DN decoding of mutated and random DER: CodecError only; idToString of any DN ID never throws', () => {
  fuzz('ike DN decode', (r) => {
    const der = r.chance(0.2) ? r.bytes(r.length(200)) : mutate(r, subject)
    refusesOnly('parseDn', der, () => parseDn(der))
    assert.type(idToString({idType: IdType.DER_ASN1_DN, data: der}), 'string')
  })
})

t('verifyPeer with mutated CERT, AUTH and ID payloads: accepts or throws TunkitError, and accepts no changed certificate or signature', () => {
  const octets = randomBytes(100)
  const hashes = [2, 3, 4]
  const sigs = [ourAuth({cert: [leaf.cert, inter.cert], key: leaf.key}, Prf.HMAC_SHA2_256, octets, hashes), ourAuth({cert: [leaf.cert, inter.cert], key: leaf.key}, Prf.HMAC_SHA2_256, octets, [])]
  const ids = ['peer.example.net', '192.0.2.1', 'peer@example.net', 'C=ZZ, O=tk-test, CN=peer.example.net', 'other.example.net'].map(idFromString)
  let accepted = 0
  fuzz('ike verifyPeer hostile', (r) => {
    const mine = r.pick(sigs)
    const auth = mine.auth as {method: number; data: Buffer}
    const certs = mine.certs.map((c) => c as Payload & {data: Buffer})
    const tamperCert = r.chance(0.4)
    const tamperAuth = r.chance(0.4)
    const inner: Payload[] = certs.map((c, k) => ({...c, data: tamperCert && k === 0 ? (r.chance(0.1) ? r.bytes(r.length(400)) : mutate(r, c.data)) : c.data}))
    if (r.chance(0.1)) inner.reverse()
    // A random ID as the codec lets it through (address IDs of the right length).
    const raw = Buffer.concat([Buffer.from([r.pick([1, 2, 3, 5, 9, 11, r.below(256)]), 0, 0, 0]), r.bytes(r.length(40))])
    const id = (r.chance(0.2) && refusesOnly('decodeId', raw, () => decodeId(raw))) || r.pick(ids)
    const c: PeerCheck = {
      id,
      auth: {method: r.chance(0.1) ? r.pick([AuthMethod.RSA_SIG, AuthMethod.SHARED_KEY_MIC, 9, 10, 11, 14, r.below(256)]) : auth.method, data: tamperAuth ? mutate(r, auth.data) : auth.data},
      inner,
      octets,
      prfId: Prf.HMAC_SHA2_256,
      psk: r.chance(0.1) ? randomBytes(16) : undefined,
      ca: [ca.cert],
      remoteId: r.chance(0.2) ? r.pick(ids) : undefined,
      now: T0,
    }
    let how: string | undefined
    try {
      how = verifyPeer(c)
    } catch (e) {
      if (!(e instanceof TunkitError)) throw e
      assert.not.match(e.message, /\n/)
      return
    }
    if (how === 'cert') {
      accepted++
      const ee = inner.find((x) => x.type === P.CERT) as {data: Buffer}
      assert.ok(c.auth.method === auth.method && c.auth.data.equals(auth.data) && ee.data.equals(certs[0].data), 'accepted only as signed')
    }
  }, Math.max(50, Math.floor(CASES / 10)))
  assert.ok(accepted > 0, 'some cases are genuine and accepted')
})

t.run()
