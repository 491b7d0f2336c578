import * as crypto from 'node:crypto'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {AuthMethod, DhGroup, Encr, Exchange, Integ, PayloadType as P, Prf} from '../../../src/ike/codec/constants.js'
import {decodeMessage, encodeMessage} from '../../../src/ike/codec/message.js'
import {codecErrorCode, randomSkKeys, SK_SUITES} from '../generators.js'
import {cipherInfo, createKeyExchange, DH_GROUPS, keLength, openSk, parseSignatureAuth, pooledRandom, prf, prfPlus, sealSk, signAuth, SIGNATURE_ALGORITHMS, verifyAuth, type Suite} from '../../../src/ike/core/crypto.js'

const t = suite('ike core: crypto')

const codeOf = codecErrorCode

t('prf+ is T1 | T2 | … with Tn = prf(K, Tn-1 | S | n), cut to the length asked for', () => {
  const k = Buffer.from('key')
  const s = Buffer.from('seed')
  const t1 = prf(Prf.HMAC_SHA2_256, k, Buffer.concat([s, Buffer.from([1])]))
  const t2 = prf(Prf.HMAC_SHA2_256, k, Buffer.concat([t1, s, Buffer.from([2])]))
  assert.equal(prfPlus(Prf.HMAC_SHA2_256, k, s, 50), Buffer.concat([t1, t2]).subarray(0, 50))
  assert.is(prfPlus(Prf.HMAC_SHA1, k, s, 255 * 20).length, 255 * 20)
  assert.is(codeOf(() => prfPlus(Prf.HMAC_SHA1, k, s, 255 * 20 + 1)), 'LIMIT', 'no 256th round')
  assert.is(prf(Prf.HMAC_SHA2_512, k, s).length, 64)
  assert.is(prf(Prf.HMAC_SHA2_384, k, s).length, 48)
})

t('every DH group: both ends compute the same secret from public values of the RFC 5903/8031/3526 lengths', () => {
  const lengths: Record<number, [number, number]> = {31: [32, 32], 20: [96, 48], 19: [64, 32], 15: [384, 384], 14: [256, 256]}
  for (const g of DH_GROUPS) {
    const a = createKeyExchange(g)
    const b = createKeyExchange(g)
    assert.is(a.publicKey.length, lengths[g][0], `group ${g} public value`)
    assert.is(keLength(g), lengths[g][0])
    const s = a.computeSecret(b.publicKey)
    assert.equal(s, b.computeSecret(a.publicKey), `group ${g} agrees`)
    assert.is(s.length, lengths[g][1], `group ${g} secret`)
  }
})

t('X25519 under constant young-generation GCs: no deadlock (Node 20 can hang in a JWK key export when a GC lands in it)', async () => {
  // A child with the smallest young generation, so scavenges land inside key exports; before the
  // fix (JWK export and import) this hung within seconds.
  const mod = new URL('../../../src/ike/core/crypto.js', import.meta.url).href
  const code = `const {createKeyExchange} = await import(${JSON.stringify(mod)})
    let junk = []
    for (let i = 0; i < 25000; i++) {
      const a = createKeyExchange(31), b = createKeyExchange(31)
      if (!a.computeSecret(b.publicKey).equals(b.computeSecret(a.publicKey))) throw new Error('disagree')
      junk.push({i}); if (junk.length > 50) junk = []
    }
    process.stdout.write('ok')`
  const {execFile} = await import('node:child_process')
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--max-semi-space-size=1', '--min-semi-space-size=1', '--input-type=module', '-e', code], {timeout: 60_000}, (err, stdout) => (err ? reject(new Error(`child: ${err.signal ?? err.message} (a hang ends in SIGTERM)`)) : resolve(stdout)))
  })
  assert.is(out, 'ok')
})

t('pooled random bytes: the lengths asked for, never the same bytes twice, past a refill and beyond the pool', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const b = pooledRandom(1 + (i % 40))
    assert.is(b.length, 1 + (i % 40))
    if (b.length >= 8) {
      assert.not.ok(seen.has(b.toString('hex')), 'a repeat')
      seen.add(b.toString('hex'))
    }
  }
  assert.is(pooledRandom(10_000).length, 10_000)
  assert.is(new Set(Array.from({length: 64}, () => pooledRandom(4).toString('hex'))).size > 60, true)
})

t('invalid KE data is a CodecError: wrong length, off-curve point, X25519 low-order point, MODP 1 and p-1', () => {
  assert.is(codeOf(() => createKeyExchange(DhGroup.ECP_256).computeSecret(Buffer.alloc(63))), 'BAD_KE')
  assert.is(codeOf(() => createKeyExchange(DhGroup.ECP_256).computeSecret(Buffer.alloc(64, 1))), 'BAD_KE')
  assert.is(codeOf(() => createKeyExchange(DhGroup.CURVE25519).computeSecret(Buffer.alloc(32))), 'BAD_KE')
  const one = Buffer.alloc(256)
  one[255] = 1
  assert.is(codeOf(() => createKeyExchange(DhGroup.MODP_2048).computeSecret(one)), 'BAD_KE')
  const pMinus1 = Buffer.from(crypto.getDiffieHellman('modp14').getPrime())
  pMinus1[255] -= 1
  assert.is(codeOf(() => createKeyExchange(DhGroup.MODP_2048).computeSecret(pMinus1)), 'BAD_KE')
  assert.is(codeOf(() => createKeyExchange(DhGroup.MODP_1024)), 'UNSUPPORTED')
})

const keysFor = randomSkKeys
const head = {spiI: Buffer.alloc(8, 1), spiR: Buffer.alloc(8, 2), exchange: Exchange.INFORMATIONAL, flags: 8, messageId: 7}
const inner = [{type: P.N, protocol: 0, spi: Buffer.alloc(0), notify: 16384, data: Buffer.alloc(0)}] as const

t('SK of every suite: seals with the RFC 4868 ICV length and opens to the same payloads; a wrong key fails INTEGRITY', () => {
  const icv: Record<number, number> = {[Integ.HMAC_SHA2_512_256]: 32, [Integ.HMAC_SHA2_384_192]: 24, [Integ.HMAC_SHA2_256_128]: 16, [Integ.HMAC_SHA1_96]: 12}
  for (const s of SK_SUITES) {
    const k = keysFor(s)
    const wire = sealSk(head, [...inner], k)
    const o = openSk(wire, k)
    assert.equal(o.inner, [...inner], `suite ${JSON.stringify(s)}`)
    const sk = decodeMessage(wire).payloads[0] as {data: Buffer}
    const c = cipherInfo(s)
    assert.is(sk.data.length, c.ivLen + (c.aead ? 8 + 1 : 16) + (s.integ ? icv[s.integ] : 16), `suite ${JSON.stringify(s)} SK size`)
    assert.is(codeOf(() => openSk(wire, keysFor(s))), 'INTEGRITY')
  }
})

t('SK with AES-CBC: a pad length beyond the plaintext and a ciphertext of partial blocks are refused after a good ICV', () => {
  const s: Suite = {encr: Encr.AES_CBC, encrKeyBits: 128, integ: Integ.HMAC_SHA2_256_128}
  const k = keysFor(s)
  const build = (ct: Buffer): Buffer => {
    const iv = Buffer.alloc(16, 9)
    const m = encodeMessage({...head, payloads: [{type: P.SK, inner: P.N, data: Buffer.concat([iv, ct, Buffer.alloc(16)])}]})
    crypto.createHmac('sha256', k.integ!).update(m.subarray(0, m.length - 16)).digest().subarray(0, 16).copy(m, m.length - 16)
    return m
  }
  const block = Buffer.alloc(16, 0xff) // pad length 255 in a 16-byte plaintext
  const e = crypto.createCipheriv('aes-128-cbc', k.enc, Buffer.alloc(16, 9)).setAutoPadding(false)
  assert.is(codeOf(() => openSk(build(Buffer.concat([e.update(block), e.final()])), k)), 'BAD_PADDING')
  assert.is(codeOf(() => openSk(build(Buffer.alloc(20)), k)), 'BAD_PADDING')
})

t('RFC 7427 AlgorithmIdentifiers: the DER of each known algorithm, and PSS spelled with a trailer field still recognised', () => {
  const der = Object.fromEntries(SIGNATURE_ALGORITHMS.map((a) => [a.name, a.der.toString('hex')]))
  assert.is(der['ecdsa-with-SHA256'], '300a06082a8648ce3d040302')
  assert.is(der['ecdsa-with-SHA384'], '300a06082a8648ce3d040303')
  assert.is(der['sha256WithRSAEncryption'], '300d06092a864886f70d01010b0500')
  assert.is(der['sha512WithRSAEncryption'], '300d06092a864886f70d01010d0500')
  assert.is(der['RSASSA-PSS-SHA256'], '304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120')
  const withTrailer = Buffer.from('304606092a864886f70d01010a3039a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120a303020101', 'hex')
  assert.is(parseSignatureAuth(Buffer.concat([Buffer.from([withTrailer.length]), withTrailer, Buffer.alloc(4)])).algorithm.name, 'RSASSA-PSS-SHA256')
  assert.is(codeOf(() => parseSignatureAuth(Buffer.from('0c300a06082a8648ce3d04', 'hex'))), 'TRUNCATED')
  assert.is(codeOf(() => parseSignatureAuth(Buffer.from('02300000', 'hex'))), 'UNSUPPORTED')
})

t('signature AUTH: methods 1, 9 and 14 (ECDSA, RSA PKCS#1 v1.5, RSA-PSS) sign and verify; other octets do not verify', () => {
  const ec = crypto.generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const rsa = crypto.generateKeyPairSync('rsa', {modulusLength: 2048})
  const octets = crypto.randomBytes(300)
  const other = Buffer.concat([octets, Buffer.from([1])])
  const cases: [number, crypto.KeyPairKeyObjectResult, string | undefined][] = [
    [AuthMethod.ECDSA_SHA256_P256, ec, undefined],
    [AuthMethod.RSA_SIG, rsa, undefined],
    [AuthMethod.DIGITAL_SIGNATURE, ec, 'ecdsa-with-SHA256'],
    [AuthMethod.DIGITAL_SIGNATURE, ec, 'ecdsa-with-SHA512'],
    [AuthMethod.DIGITAL_SIGNATURE, rsa, 'sha256WithRSAEncryption'],
    [AuthMethod.DIGITAL_SIGNATURE, rsa, 'RSASSA-PSS-SHA384'],
  ]
  for (const [method, kp, name] of cases) {
    const alg = SIGNATURE_ALGORITHMS.find((a) => a.name === name)
    const data = signAuth(method, kp.privateKey, octets, alg)
    if (method === AuthMethod.ECDSA_SHA256_P256) assert.is(data.length, 64, 'r || s')
    assert.ok(verifyAuth(method, kp.publicKey, octets, data), `${method} ${name} verifies`)
    assert.not.ok(verifyAuth(method, kp.publicKey, other, data), `${method} ${name} rejects other octets`)
  }
})

t.run()
