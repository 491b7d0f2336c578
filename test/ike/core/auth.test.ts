import {randomBytes} from 'node:crypto'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {AuthMethod, Exchange, Flag, IdType, Notify, PayloadType as P, Prf} from '../../../src/ike/codec/constants.js'
import {certSubject, formatDn} from '../../../src/ike/codec/dn.js'
import {idFromString, idToString} from '../../../src/ike/codec/id.js'
import {decodeMessage} from '../../../src/ike/codec/message.js'
import {payloadOf, payloadsOf, type Payload} from '../../../src/ike/codec/payload.js'
import {certreq, defaultId, ourAuth, verifyPeer} from '../../../src/ike/core/auth.js'
import {openSk, parseSignatureAuth} from '../../../src/ike/core/crypto.js'
import type {Action, Established} from '../../../src/ike/core/exchange.js'
import type {InitiatorConfig} from '../../../src/ike/core/initiator.js'
import type {ResponderConfig} from '../../../src/ike/core/responder.js'
import {CodecError, TunkitError} from '../../../src/lib/errors.js'
import {makeCa, makeLeaf, T0, type Leaf} from './auth-certs.js'
import {only, pair, PSK, type Pair} from './loop.js'

/**
 * Certificate authentication between our two machines in memory (test/ike/core/loop.ts), with
 * certificates made for each case: ECDSA and RSA-3072, RFC 7427 and the classic methods, chains
 * with an intermediate, every failure on the side that detects it, and the identity types.
 */
const t = suite('ike auth: certificates and identities')

const DAY = 86_400_000
const ecCa = await makeCa('C=ZZ, O=tk-test, CN=tk ECDSA CA', 'p256')
const ecGw = await makeLeaf(ecCa, 'C=ZZ, O=tk-test, CN=gw.example.net', {sans: ['dns:gw.example.net', 'ip:10.0.0.1']})
const ecClient = await makeLeaf(ecCa, 'C=ZZ, O=tk-test, CN=client.example.net', {sans: ['dns:client.example.net', 'email:client@example.net']})
const rsaCa = await makeCa('C=ZZ, O=tk-test, CN=tk RSA CA', 'rsa3072')
const rsaSub = await makeCa('C=ZZ, O=tk-test, CN=tk RSA intermediate', 'rsa3072', {issuer: rsaCa})
const rsaGw = await makeLeaf(rsaCa, 'C=ZZ, O=tk-test, CN=gw-rsa.example.net', {sans: ['dns:gw-rsa.example.net']})
const rsaClient = await makeLeaf(rsaSub, 'C=ZZ, O=tk-test, CN=client-rsa.example.net', {sans: ['dns:client-rsa.example.net']})

const asCreds = (l: Leaf, ...chain: {cert: Leaf['cert']}[]): {cert: Leaf['cert'][]; key: Leaf['key']} => ({cert: [l.cert, ...chain.map((c) => c.cert)], key: l.key})

/** Initiator with the ECDSA client certificate, responder with the gateway's, both trusting the ECDSA CA; IDs by default. */
function certPair(o: {ini?: Partial<InitiatorConfig>; res?: Partial<ResponderConfig>} = {}): Pair {
  const p = pair({
    start: T0,
    ini: {id: undefined, auth: asCreds(ecClient), ca: [ecCa.cert], ...o.ini},
    res: {id: undefined, psk: undefined, cert: asCreds(ecGw), ca: [ecCa.cert], ...o.res},
  })
  p.run()
  return p
}

const describe = (events: Action[]): string => JSON.stringify(events.map((e) => (e.type === 'failed' ? e.error.message : e.type)))

const established = (p: Pair): [Established, Established] => {
  const i = only(p.iEvents, 'established')
  const r = only(p.rEvents, 'established')
  assert.is(i.length, 1, `initiator: ${describe(p.iEvents)}`)
  assert.is(r.length, 1, `responder: ${describe(p.rEvents)}`)
  assert.ok(i[0].sa.child.keys.encI.equals(r[0].sa.child.keys.encI), 'the CHILD_SA keys agree')
  return [i[0].sa, r[0].sa]
}

/** The one failure of a side: its code and its line. */
const failure = (events: Action[]): TunkitError => {
  const f = only(events, 'failed')
  assert.is(f.length, 1, `one failure: ${describe(events)}`)
  assert.not.match(f[0].error.message, /\n/)
  return f[0].error
}

/** The decrypted inner payloads of the initiator's IKE_AUTH request and the responder's answer. */
function authMessages(p: Pair): {request: Payload[]; answer: Payload[]} {
  const ike = p.ini.ikeSa!
  const auth = p.sent.filter((s) => decodeMessage(s.data).exchange === Exchange.IKE_AUTH)
  const request = auth.find((s) => s.dir === 'i->r')!
  const answer = auth.find((s) => s.dir === 'r->i')!
  return {request: openSk(request.data, ike.send).inner, answer: openSk(answer.data, ike.recv).inner}
}

const hashOf = (ca: {cert: Leaf['cert']}): string => ((certreq([ca.cert])[0] as {data: Buffer}).data).toString('hex')

t('ECDSA P-256 both ways: CERTREQ (SHA-1 of the CA key) in IKE_SA_INIT and IKE_AUTH, CERT, RFC 7427 ecdsa-with-SHA512 AUTH, IDs from the certificates', () => {
  const p = certPair()
  const [i, r] = established(p)
  assert.is(i.peerId, 'gw.example.net')
  assert.is(r.peerId, 'client.example.net')
  const init = decodeMessage(p.sent[1].data)
  assert.equal(payloadsOf(init.payloads, P.CERTREQ).map((c) => c.data.toString('hex')), [hashOf(ecCa)], 'the gateway asks for our CA')
  const {request, answer} = authMessages(p)
  assert.equal(request.map((x) => x.type).slice(0, 5), [P.IDi, P.CERT, P.N, P.CERTREQ, P.AUTH])
  assert.equal(payloadOf(request, P.IDi), {type: P.IDi, idType: IdType.FQDN, data: Buffer.from('client.example.net')})
  assert.ok(payloadOf(request, P.CERT)!.data.equals(ecClient.cert.raw), 'our certificate is sent')
  assert.is(payloadOf(request, P.CERTREQ)!.data.toString('hex'), hashOf(ecCa))
  for (const ps of [request, answer]) {
    const auth = payloadOf(ps, P.AUTH)!
    assert.is(auth.method, AuthMethod.DIGITAL_SIGNATURE)
    assert.is(parseSignatureAuth(auth.data).algorithm.name, 'ecdsa-with-SHA512', 'the strongest hash both announced')
  }
  assert.equal(answer.map((x) => x.type).slice(0, 3), [P.IDr, P.CERT, P.AUTH])
  assert.ok(payloadOf(answer, P.CERT)!.data.equals(ecGw.cert.raw))
})

t('RSA-3072 with an intermediate CA: the chain goes as two CERTs, sha512WithRSAEncryption AUTH; the IKE_AUTH of ~3 KB goes whole, unfragmented', () => {
  const p = certPair({ini: {auth: asCreds(rsaClient, rsaSub), ca: [rsaCa.cert]}, res: {cert: asCreds(rsaGw), ca: [rsaCa.cert]}})
  const [i, r] = established(p)
  assert.is(i.peerId, 'gw-rsa.example.net')
  assert.is(r.peerId, 'client-rsa.example.net')
  const {request, answer} = authMessages(p)
  assert.equal(payloadsOf(request, P.CERT).map((c) => c.data.toString('hex')), [rsaClient.cert.raw.toString('hex'), rsaSub.cert.raw.toString('hex')], 'end entity, then the intermediate')
  for (const ps of [request, answer]) assert.is(parseSignatureAuth(payloadOf(ps, P.AUTH)!.data).algorithm.name, 'sha512WithRSAEncryption')
  const big = p.sent.find((s) => s.dir === 'i->r' && decodeMessage(s.data).exchange === Exchange.IKE_AUTH)!
  assert.ok(big.data.length > 2500 && big.data.length < 65_535, `IKE_AUTH of ${big.data.length} bytes`)
  assert.is(decodeMessage(big.data).payloads[0].type, P.SK, 'SK, not SKF fragments')
  // Without the intermediate the chain stops short of our CA.
  const q = certPair({ini: {auth: asCreds(rsaClient), ca: [rsaCa.cert]}, res: {cert: asCreds(rsaGw), ca: [rsaCa.cert]}})
  const e = failure(q.rEvents)
  assert.is(e.code, 'TK_TLS_UNKNOWN_CA')
  assert.is(e.message, 'IKE_AUTH from 10.0.0.2: unknown CA: C=ZZ, O=tk-test, CN=client-rsa.example.net is issued by C=ZZ, O=tk-test, CN=tk RSA intermediate, not by a CA we trust')
})

t('classic methods when the peer announced no signature hashes: RSA → 1, ECDSA P-256 → 9, P-384 → 10; each verifies, and a curve that does not fit the method does not', async () => {
  const p384 = await makeLeaf(ecCa, 'C=ZZ, O=tk-test, CN=p384.example.net', {alg: 'p384', sans: ['dns:p384.example.net']})
  const octets = randomBytes(200)
  for (const [leaf, ca, method, name] of [[rsaGw, rsaCa, AuthMethod.RSA_SIG, 'gw-rsa.example.net'], [ecGw, ecCa, AuthMethod.ECDSA_SHA256_P256, 'gw.example.net'], [p384, ecCa, AuthMethod.ECDSA_SHA384_P384, 'p384.example.net']] as const) {
    const mine = ourAuth(asCreds(leaf), Prf.HMAC_SHA2_256, octets, [])
    const auth = mine.auth as {method: number; data: Buffer}
    assert.is(auth.method, method)
    const check = {id: idFromString(name), auth, inner: mine.certs, octets, prfId: Prf.HMAC_SHA2_256, ca: [ca.cert], now: T0}
    assert.is(verifyPeer(check), 'cert', name)
    assert.throws(() => verifyPeer({...check, auth: {...auth, data: Buffer.from(auth.data).fill(7, 10, 12)}}), /signature does not verify/, 'a tampered signature')
  }
  // A P-384 key signing under method 9 (P-256 only, RFC 4754) is refused.
  const mine = ourAuth(asCreds(p384), Prf.HMAC_SHA2_256, octets, [])
  assert.throws(() => verifyPeer({id: idFromString('p384.example.net'), auth: {method: AuthMethod.ECDSA_SHA256_P256, data: (mine.auth as {data: Buffer}).data}, inner: mine.certs, octets, prfId: Prf.HMAC_SHA2_256, ca: [ecCa.cert], now: T0}), /signature does not verify/)
})

t('a responder with PSKs and a certificate takes both: a PSK initiator gets a PSK AUTH back, a certificate initiator the gateway\'s CERT', () => {
  const res: Partial<ResponderConfig> = {psk: (id) => (id.data.toString() === 'client@example.net' ? PSK : undefined)}
  const withPsk = certPair({ini: {id: idFromString('client@example.net'), auth: {psk: PSK}, ca: undefined}, res})
  const withCert = certPair({res})
  established(withPsk)
  established(withCert)
  assert.is(payloadOf(authMessages(withPsk).answer, P.AUTH)!.method, AuthMethod.SHARED_KEY_MIC)
  assert.is(payloadOf(authMessages(withPsk).answer, P.CERT), undefined)
  assert.is(payloadOf(authMessages(withCert).answer, P.AUTH)!.method, AuthMethod.DIGITAL_SIGNATURE)
})

const REFUSED = 'the gateway refused IKE_AUTH: authentication failed (wrong PSK, certificate or identity) (AUTHENTICATION_FAILED)'

/** The responder refused the initiator: its line, and the initiator's AUTHENTICATION_FAILED. */
function responderRefuses(p: Pair, code: string, line: string): void {
  const r = failure(p.rEvents)
  assert.is(r.code, code)
  assert.is(r.message, `IKE_AUTH from 10.0.0.2: ${line}`)
  const i = failure(p.iEvents)
  assert.equal([i.code, i.message], ['TK_NOT_AUTHORIZED', REFUSED])
  assert.is(only(p.rEvents, 'established').length, 0)
}

/** The initiator refused the gateway: its line; it tells the gateway (AUTHENTICATION_FAILED in an INFORMATIONAL), which logs that. */
function initiatorRefuses(p: Pair, code: string, line: string): void {
  const i = failure(p.iEvents)
  assert.equal([i.code, i.message], [code, `the gateway: ${line}`])
  assert.is(only(p.iEvents, 'established').length, 0)
  const r = only(p.rEvents, 'failed')
  assert.equal(r.map((f) => f.error.message), ['the peer did not accept our authentication (AUTHENTICATION_FAILED)'])
  const info = p.sent.filter((s) => s.dir === 'i->r' && decodeMessage(s.data).exchange === Exchange.INFORMATIONAL && !(decodeMessage(s.data).flags & Flag.RESPONSE))
  assert.equal(info.map((s) => payloadsOf(openSk(s.data, p.ini.ikeSa!.send).inner, P.N).map((n) => n.notify)), [[Notify.AUTHENTICATION_FAILED]])
}

t('unknown CA: a client certificate from another CA of the same name is refused by the gateway; a gateway certificate from it by the client', async () => {
  const rogue = await makeCa('C=ZZ, O=tk-test, CN=tk ECDSA CA', 'p256')
  const client = await makeLeaf(rogue, 'C=ZZ, O=tk-test, CN=client.example.net', {sans: ['dns:client.example.net']})
  responderRefuses(certPair({ini: {auth: asCreds(client)}}), 'TK_TLS_UNKNOWN_CA', 'unknown CA: C=ZZ, O=tk-test, CN=client.example.net is issued by C=ZZ, O=tk-test, CN=tk ECDSA CA, not by a CA we trust')
  const gw = await makeLeaf(rogue, 'C=ZZ, O=tk-test, CN=gw.example.net', {sans: ['dns:gw.example.net']})
  initiatorRefuses(certPair({res: {cert: asCreds(gw)}}), 'TK_TLS_UNKNOWN_CA', 'unknown CA: C=ZZ, O=tk-test, CN=gw.example.net is issued by C=ZZ, O=tk-test, CN=tk ECDSA CA, not by a CA we trust')
})

t('an expired gateway certificate: the client\'s line names the end of validity (the machines\' clock, not the wall clock)', async () => {
  const gw = await makeLeaf(ecCa, 'C=ZZ, O=tk-test, CN=gw.example.net', {sans: ['dns:gw.example.net'], notBefore: T0 - 400 * DAY, notAfter: T0 - 20 * DAY})
  initiatorRefuses(certPair({res: {cert: asCreds(gw)}}), 'TK_TLS_CERT_EXPIRED', 'certificate expired: C=ZZ, O=tk-test, CN=gw.example.net was valid until 2027-05-12T00:00:00Z')
  // The same certificate is fine at a time inside its window.
  const p = pair({start: T0 - 25 * DAY, ini: {id: undefined, auth: asCreds(ecClient), ca: [ecCa.cert]}, res: {id: undefined, cert: asCreds(gw), ca: [ecCa.cert]}})
  p.run()
  established(p)
})

t('a client certificate not yet valid, and an expired CA, are refused by the gateway', async () => {
  const client = await makeLeaf(ecCa, 'C=ZZ, O=tk-test, CN=client.example.net', {sans: ['dns:client.example.net'], notBefore: T0 + DAY})
  responderRefuses(certPair({ini: {auth: asCreds(client)}}), 'TK_TLS_CERT_NOT_YET_VALID', 'certificate not yet valid: C=ZZ, O=tk-test, CN=client.example.net is valid from 2027-06-02T00:00:00Z')
  const oldCa = await makeCa('C=ZZ, O=tk-test, CN=old CA', 'p256', {notBefore: T0 - 900 * DAY, notAfter: T0 - DAY})
  const fromOld = await makeLeaf(oldCa, 'C=ZZ, O=tk-test, CN=client.example.net', {sans: ['dns:client.example.net']})
  responderRefuses(certPair({ini: {auth: asCreds(fromOld)}, res: {ca: [ecCa.cert, oldCa.cert]}}), 'TK_TLS_CERT_EXPIRED', 'certificate expired: C=ZZ, O=tk-test, CN=old CA was valid until 2027-05-31T00:00:00Z')
})

t('identity mismatch: an IDi the client certificate does not name, and a --remote-id the gateway certificate does not name', () => {
  responderRefuses(certPair({ini: {id: idFromString('other.example.net')}}), 'TK_TLS_HOSTNAME_MISMATCH', 'identity other.example.net not in the certificate C=ZZ, O=tk-test, CN=client.example.net')
  initiatorRefuses(certPair({ini: {remoteId: idFromString('gw2.example.net')}}), 'TK_TLS_HOSTNAME_MISMATCH', 'identity gw2.example.net not in the certificate C=ZZ, O=tk-test, CN=gw.example.net (the peer is gw.example.net)')
})

t('a signature that does not verify: the gateway signs with a key that is not its certificate\'s', () => {
  initiatorRefuses(certPair({res: {cert: {cert: [ecGw.cert], key: ecClient.key}}}), 'TK_NOT_AUTHORIZED', 'gw.example.net: signature does not verify with the key of C=ZZ, O=tk-test, CN=gw.example.net')
})

t('no certificate sent, no CA to check one, a PSK a certificate gateway does not have: each refused with its line', () => {
  responderRefuses(certPair({ini: {id: idFromString('client.example.net'), auth: {cert: [], key: ecClient.key}}}), 'TK_NOT_AUTHORIZED', 'client.example.net sent no certificate (AUTH method 14)')
  responderRefuses(certPair({res: {ca: undefined}}), 'TK_NOT_AUTHORIZED', 'client.example.net authenticated with a certificate and we have no CA to check it')
  responderRefuses(certPair({ini: {id: idFromString('client@example.net'), auth: {psk: PSK}}}), 'TK_NOT_AUTHORIZED', 'client@example.net authenticated with a PSK and we have none for it')
  // Without CAs of its own, the gateway sends no CERTREQ.
  const p = certPair({res: {ca: undefined}})
  assert.is(payloadsOf(decodeMessage(p.sent[1].data).payloads, P.CERTREQ).length, 0)
})

t('identity types in the handshake: a DN IDi equal to the certificate subject, an RFC822 IDi in its SAN, the gateway as an IP address', () => {
  const dn = certPair({ini: {id: idFromString('C=ZZ, O=tk-test, CN=client.example.net')}})
  assert.is(established(dn)[1].peerId, 'C=ZZ, O=tk-test, CN=client.example.net')
  // Spelled differently (case, spaces), it is the same DN.
  established(certPair({ini: {id: idFromString('c=zz,o=TK-TEST,  cn=Client.Example.Net')}}))
  assert.is(established(certPair({ini: {id: idFromString('client@example.net')}}))[1].peerId, 'client@example.net')
  const ip = certPair({ini: {remoteId: idFromString('10.0.0.1')}, res: {id: idFromString('10.0.0.1')}})
  assert.is(established(ip)[0].peerId, '10.0.0.1')
  // The gateway's DNS name is in its certificate too: required, it matches although the IDr is its address.
  established(certPair({ini: {remoteId: idFromString('gw.example.net')}, res: {id: idFromString('10.0.0.1')}}))
})

t('default identities: the certificate\'s first DNS name, else its subject DN; with a PSK our IP address', async () => {
  assert.equal(defaultId(asCreds(ecGw), '10.0.0.1'), {idType: IdType.FQDN, data: Buffer.from('gw.example.net')})
  const bare = await makeLeaf(ecCa, 'C=ZZ, O=tk-test, CN=no-san')
  const id = defaultId(asCreds(bare), '10.0.0.1')
  assert.is(id.idType, IdType.DER_ASN1_DN)
  assert.ok(id.data.equals(certSubject(Buffer.from(bare.cert.raw))))
  assert.is(idToString(id), 'C=ZZ, O=tk-test, CN=no-san')
  assert.equal(defaultId({psk: PSK}, '10.0.0.2'), {idType: IdType.IPV4_ADDR, data: Buffer.from([10, 0, 0, 2])})
  assert.is(idToString(defaultId({psk: PSK}, 'fd00::2')), 'fd00::2')
  // In the handshake: a PSK initiator without --id is its address to the gateway.
  const p = pair({ini: {id: undefined}, res: {psk: (x) => (x.idType === IdType.IPV4_ADDR ? PSK : undefined)}})
  p.run()
  assert.is(established(p)[1].peerId, '10.0.0.2')
})

t('--id text: IP literals, @host (FQDN), user@domain (RFC822), DNs with escapes, else FQDN; a bad DN throws CodecError', () => {
  const types = (s: string): [number, string] => {
    const id = idFromString(s)
    return [id.idType, idToString(id)]
  }
  assert.equal(types('198.51.100.7'), [IdType.IPV4_ADDR, '198.51.100.7'])
  assert.equal(types('2001:db8::7'), [IdType.IPV6_ADDR, '2001:db8::7'])
  assert.equal(types('@vpn.example.net'), [IdType.FQDN, 'vpn.example.net'])
  assert.equal(types('@user@example.net'), [IdType.FQDN, 'user@example.net'])
  assert.equal(types('user@example.net'), [IdType.RFC822_ADDR, 'user@example.net'])
  assert.equal(types('vpn.example.net'), [IdType.FQDN, 'vpn.example.net'])
  assert.equal(types('C=ZZ, O=Acme\\, Inc., CN=vpn, E=ops@example.net'), [IdType.DER_ASN1_DN, 'C=ZZ, O=Acme\\, Inc., CN=vpn, E=ops@example.net'])
  assert.equal(types('CN=Grüße, OU=ü'), [IdType.DER_ASN1_DN, 'CN=Grüße, OU=ü'])
  for (const bad of ['X=1', 'CN=', 'CN=a, junk']) assert.throws(() => idFromString(bad), (e: unknown) => e instanceof CodecError && e.code === 'BAD_DN', bad)
  // A peer's DN that does not parse is still shown, as bytes.
  assert.is(idToString({idType: IdType.DER_ASN1_DN, data: Buffer.from('3003', 'hex')}), '9:3003')
  assert.is(formatDn(idFromString('CN=x').data), 'CN=x')
})

t.run()
