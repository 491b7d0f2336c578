import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {AuthMethod, PayloadType as P} from '../../../src/ike/codec/constants.js'
import {certSubject, encodeDn, formatDn} from '../../../src/ike/codec/dn.js'
import {idFromString} from '../../../src/ike/codec/id.js'
import {decodeMessage} from '../../../src/ike/codec/message.js'
import {payloadOf, payloadsOf, type Payload} from '../../../src/ike/codec/payload.js'
import {certreq, verifyPeer, type PeerCheck} from '../../../src/ike/core/auth.js'
import {joinFragments, openProtected, openSk, signedOctets} from '../../../src/ike/core/crypto.js'
import {TunkitError} from '../../../src/lib/errors.js'
import {capturedMessages, ikeKeySets, keysFor, reconstructSas, saOf} from '../fixtures.js'
import {labCa} from './auth-certs.js'

/**
 * Our verification of the peer (core/auth.ts) against strongSwan's certificate IKE_AUTH messages
 * of the capture: ECDSA (SA 4) and RSA in SKF fragments (SA 5), both directions, chained to the
 * lab CAs the capture was made with (test/fixtures/ike/ca-*.crt).
 */
const t = suite('ike auth: strongSwan capture')

const msgs = capturedMessages()
const sas = reconstructSas(msgs, ikeKeySets())
const CAS = [labCa('ecdsa'), labCa('rsa')]
/** The lab certificates are valid from 2026-12-03 08:40 for five years. */
const NOW = Date.parse('2027-06-01T00:00:00Z')

function innerOf(i: number): Payload[] {
  const m = decodeMessage(msgs[i].raw)
  return openSk(msgs[i].raw, keysFor(saOf(sas, m), m)).inner
}

/** The four certificate IKE_AUTH messages as PeerChecks: [who, check]. */
function checks(): [string, PeerCheck][] {
  const out: [string, PeerCheck][] = []
  const add = (who: string, sa: (typeof sas)[number], inner: Payload[], real: Buffer, peerNonce: Buffer, skP: Buffer, idType: typeof P.IDi | typeof P.IDr): void => {
    const id = payloadOf(inner, idType)!
    out.push([who, {id, auth: payloadOf(inner, P.AUTH)!, inner, octets: signedOctets(sa.suite.prf!, real, peerNonce, skP, id), prfId: sa.suite.prf!, ca: CAS, now: NOW}])
  }
  const ec = sas[3]
  add('ECDSA initiator', ec, innerOf(22), msgs[20].raw, ec.nr, ec.keys.skPi, P.IDi)
  add('ECDSA responder', ec, innerOf(23), msgs[21].raw, ec.ni, ec.keys.skPr, P.IDr)
  const rsa = sas[4]
  const at = msgs.findIndex((c) => c.raw.subarray(0, 8).equals(rsa.spiI))
  const joined = (from: number): Payload[] => joinFragments([msgs[from], msgs[from + 1]].map((c) => openProtected(c.raw, keysFor(rsa, decodeMessage(c.raw)))))
  add('RSA initiator', rsa, joined(at + 2), msgs[at].raw, rsa.nr, rsa.keys.skPi, P.IDi)
  add('RSA responder', rsa, joined(at + 4), msgs[at + 1].raw, rsa.ni, rsa.keys.skPr, P.IDr)
  return out
}

const failsWith = (c: PeerCheck, code: string, line: RegExp): void => {
  assert.throws(() => verifyPeer(c), (e: unknown) => e instanceof TunkitError && e.code === code && line.test(e.message) && !e.message.includes('\n'))
}

t('strongSwan\'s ECDSA and RSA certificate AUTH (method 14), both directions, verify: chain to the lab CA, dates, signature, identity', () => {
  const all = checks()
  assert.equal(all.map(([, c]) => c.auth.method), [AuthMethod.DIGITAL_SIGNATURE, AuthMethod.DIGITAL_SIGNATURE, AuthMethod.DIGITAL_SIGNATURE, AuthMethod.DIGITAL_SIGNATURE])
  for (const [who, c] of all) assert.is(verifyPeer(c), 'cert', who)
  // The gateway's ID and the IP address in its certificate both satisfy a required remote ID.
  const [, gw] = all[1]
  assert.is(verifyPeer({...gw, remoteId: idFromString('gw.ks.test')}), 'cert')
  assert.is(verifyPeer({...gw, remoteId: idFromString('203.0.113.1')}), 'cert')
  assert.is(verifyPeer({...gw, remoteId: idFromString('C=ZZ, O=ks-lab, CN=gw.ks.test')}), 'cert')
  failsWith({...gw, remoteId: idFromString('gw-rsa.ks.test')}, 'TK_TLS_HOSTNAME_MISMATCH', /^identity gw-rsa\.ks\.test not in the certificate C=ZZ, O=ks-lab, CN=gw\.ks\.test \(the peer is gw\.ks\.test\)$/)
})

t('the captured chains fail as they should: the other CA only (unknown CA), after expiry, before validity, other octets', () => {
  const [[, ecdsa], , [, rsa]] = checks()
  failsWith({...ecdsa, ca: [labCa('rsa')]}, 'TK_TLS_UNKNOWN_CA', /^unknown CA: C=ZZ, O=ks-lab, CN=client\.ks\.test is issued by C=ZZ, O=ks-lab, CN=ks-lab ECDSA CA, not by a CA we trust$/)
  failsWith({...rsa, ca: [labCa('ecdsa')]}, 'TK_TLS_UNKNOWN_CA', /issued by C=ZZ, O=ks-lab, CN=ks-lab RSA CA/)
  failsWith({...rsa, now: Date.parse('2032-01-01T00:00:00Z')}, 'TK_TLS_CERT_EXPIRED', /^certificate expired: C=ZZ, O=ks-lab, CN=client-rsa\.ks\.test was valid until 2031-12-02T08:40:\d\dZ$/)
  failsWith({...ecdsa, now: Date.parse('2026-12-01T00:00:00Z')}, 'TK_TLS_CERT_NOT_YET_VALID', /^certificate not yet valid: C=ZZ, O=ks-lab, CN=client\.ks\.test is valid from 2026-12-03T08:40:\d\dZ$/)
  failsWith({...ecdsa, octets: Buffer.concat([ecdsa.octets, Buffer.from([0])])}, 'TK_NOT_AUTHORIZED', /^client\.ks\.test: signature does not verify with the key of C=ZZ, O=ks-lab, CN=client\.ks\.test$/)
  failsWith({...ecdsa, inner: ecdsa.inner.filter((p) => p.type !== P.CERT)}, 'TK_NOT_AUTHORIZED', /^client\.ks\.test sent no certificate \(AUTH method 14\)$/)
  failsWith({...ecdsa, ca: []}, 'TK_NOT_AUTHORIZED', /we have no CA to check it/)
})

t('our CERTREQ for the two lab CAs carries the same SHA-1 key hashes strongSwan\'s gateway sent in IKE_SA_INIT', () => {
  const sent = payloadsOf(decodeMessage(msgs[21].raw).payloads, P.CERTREQ)
  const hashes = (d: Buffer): string[] => (d.toString('hex').match(/.{40}/g) ?? []).sort()
  const ours = certreq(CAS)
  assert.is(ours.length, 1)
  assert.equal(hashes(Buffer.concat(sent.map((c) => c.data))), hashes((ours[0] as {data: Buffer}).data))
})

t('DN identities: our DER of "C=ZZ, O=ks-lab, CN=…" is byte-equal to the subjects strongSwan\'s pki wrote, and reads back', () => {
  for (const ca of CAS) {
    const subject = certSubject(Buffer.from(ca.raw))
    assert.equal(encodeDn(formatDn(subject)).toString('hex'), subject.toString('hex'))
  }
  assert.is(formatDn(certSubject(Buffer.from(labCa('ecdsa').raw))), 'C=ZZ, O=ks-lab, CN=ks-lab ECDSA CA')
})

t.run()
