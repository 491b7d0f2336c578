import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import {webcrypto, X509Certificate} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../src/lib/errors.js'
import {crlProblem, decodeCrl, normalSerial, revokedSerials} from '../../src/pki/crl.js'
import {createCa, issue, listCertificates, revoke, writePair} from '../../src/pki/pki.js'
import {tmpDir} from '../helpers/procs.js'

const t = suite<Record<string, any>>('CRL: pki revoke writes it, the gate reads its serials') // eslint-disable-line @typescript-eslint/no-explicit-any
const ALG = {name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256'}

t.before(async (ctx) => {
  ctx.tmp = tmpDir('crl')
  ctx.ca = await createCa('test CA', 30)
  writePair(ctx.tmp.dir, 'ca', ctx.ca)
  for (const name of ['alice', 'bob', 'carol']) writePair(ctx.tmp.dir, name, await issue(ctx.ca, {cn: name, role: 'client'}))
})
t.after((ctx) => ctx.tmp?.cleanup())

const serialOf = (dir: string, name: string): string => normalSerial(new X509Certificate(readFileSync(join(dir, `${name}.crt`))).serialNumber)

/** A CRL signed by the test CA with these serials (hex as @peculiar/x509 takes them). */
async function crlWith(ca: {cert: x509.X509Certificate; key: webcrypto.CryptoKey}, serials: string[], nextUpdate: Date | null = new Date(Date.now() + 86400_000), alg: object = ALG): Promise<x509.X509Crl> {
  return x509.X509CrlGenerator.create({
    issuer: ca.cert.subject, thisUpdate: new Date(Date.now() - 2 * 86400_000), ...(nextUpdate ? {nextUpdate} : {}),
    entries: serials.map((serialNumber) => ({serialNumber, revocationDate: new Date()})), signingKey: ca.key, signingAlgorithm: alg,
  })
}

const pemOf = (crl: x509.X509Crl): string => x509.PemConverter.encode(crl.rawData, 'X509 CRL')

t('revoke adds to the list each time; the serials read back are the certificates\', as @peculiar/x509 reads them', async (ctx) => {
  const dir = ctx.tmp.dir
  const first = await revoke(dir, 'alice')
  assert.equal(first.revoked.map((c) => c.name), ['alice'])
  const again = await revoke(dir, 'alice')
  assert.equal([again.revoked.length, again.already.map((c) => c.name)], [0, ['alice']], 'revoking twice changes nothing')
  await revoke(dir, 'bob')
  const pem = readFileSync(join(dir, 'crl.pem'), 'utf8')
  assert.match(pem, /^-----BEGIN X509 CRL-----\n/, 'the label OpenSSL reads')
  const mine = revokedSerials(pem)
  assert.equal([...mine].sort(), [serialOf(dir, 'alice'), serialOf(dir, 'bob')].sort())
  assert.equal([...mine].sort(), new x509.X509Crl(pem).entries.map((e) => normalSerial(e.serialNumber)).sort())
  const listed = Object.fromEntries(listCertificates(dir).map((c) => [c.name, c.revoked]))
  assert.equal(listed, {alice: true, bob: true, carol: false})
})

t('a CRL without entries, or without nextUpdate, reads as what it holds', async (ctx) => {
  assert.equal(decodeCrl(Buffer.from((await crlWith(ctx.ca, [])).rawData)).serials, [])
  assert.equal(decodeCrl(Buffer.from((await crlWith(ctx.ca, ['0a0b'], null)).rawData)).serials, ['a0b'])
})

t('serials compare without leading zeros and case: a high bit, a leading zero byte, two CRLs in one file', async (ctx) => {
  const a = await crlWith(ctx.ca, ['0080ff', '01'])
  const b = await crlWith(ctx.ca, ['7fABCD'])
  const pem = [a, b].map((c) => x509.PemConverter.encode(c.rawData, 'X509 CRL')).join('\n')
  assert.equal([...revokedSerials(pem)], ['80ff', '1', '7fabcd'])
  assert.is(normalSerial('00AB'), 'ab')
  assert.is(normalSerial('00'), '0')
})

t('anything else is a CodecError, never another exception: no PEM, truncated or wrong DER', async (ctx) => {
  const der = Buffer.from((await crlWith(ctx.ca, ['01', '02'])).rawData)
  const bad = [
    () => revokedSerials('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
    () => decodeCrl(Buffer.alloc(0)),
    () => decodeCrl(Buffer.from([0x02, 0x01, 0x00])),
    () => decodeCrl(Buffer.from([0x30, 0x85, 1, 2, 3, 4, 5])),
  ]
  for (let n = 1; n < der.length; n += 7) bad.push(() => decodeCrl(der.subarray(0, n)))
  for (const f of bad) {
    try {
      f()
      assert.unreachable('should throw')
    } catch (e) {
      assert.instance(e, CodecError)
    }
  }
})

t('a CRL that would lock every client out is named at load: another CA\'s, or past its next update; an RSA CA\'s verifies too', async (ctx) => {
  const caPem = ctx.ca.certPem
  assert.is(crlProblem(pemOf(await crlWith(ctx.ca, ['01'])), caPem), null)
  assert.is(crlProblem(pemOf(await crlWith(ctx.ca, ['01'], null)), caPem), null, 'no nextUpdate: never stale')
  const other = await createCa('other CA', 30)
  assert.match(crlProblem(pemOf(await crlWith(other, ['01'])), caPem)!, /not signed by the CA/)
  assert.is(crlProblem(pemOf(await crlWith(other, ['01'])), caPem + other.certPem), null, 'any CA of the bundle')
  assert.match(crlProblem(pemOf(await crlWith(ctx.ca, ['01'], new Date(Date.now() - 86400_000))), caPem)!, /next update was due/)
  const rsa = {name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048}
  const keys = await webcrypto.subtle.generateKey(rsa, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.createSelfSigned({serialNumber: '01', name: 'CN=rsa CA', keys, signingAlgorithm: rsa, notBefore: new Date(Date.now() - 86400_000), notAfter: new Date(Date.now() + 86400_000)})
  const rsaCa = {cert, key: keys.privateKey}
  assert.is(crlProblem(pemOf(await crlWith(rsaCa, ['01'], undefined, rsa)), cert.toString('pem')), null)
  assert.match(crlProblem(pemOf(await crlWith(rsaCa, ['01'], undefined, rsa)), caPem)!, /not signed by the CA/)
})

t.run()
