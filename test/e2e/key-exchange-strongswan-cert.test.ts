import {readFileSync, writeFileSync} from 'node:fs'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {ipsecLab, ipsecLabMissing, type IpsecLab, type KeyPair} from '../helpers/ipsec-lab.js'
import {event, stop, tunkit, type Proc} from '../helpers/procs.js'
import {unless} from '../helpers/requires.js'

/**
 * Certificate authentication between tunkit and an unmodified strongSwan (the project's IPsec lab,
 * test/lab/ipsec, its ECDSA and RSA-3072 PKI): tunkit's client against the strongSwan gateway, and
 * the strongSwan client against tunkit's gateway. Both sides must accept the other's certificate
 * and RFC 7427 signature; the IKE_SA comes up with the identities of the certificates.
 */
const why = ipsecLabMissing()

interface Variant {name: 'ecdsa' | 'rsa'; conn: string; client: (l: IpsecLab) => KeyPair; gw: (l: IpsecLab) => KeyPair; ca: (l: IpsecLab) => string; clientId: string; gwId: string; scheme: string}
const VARIANTS: Variant[] = [
  {name: 'ecdsa', conn: 'cert', client: (l) => l.pki.clientEcdsa, gw: (l) => l.pki.gwEcdsa, ca: (l) => l.pki.caEcdsa, clientId: 'client.ks.test', gwId: 'gw.ks.test', scheme: 'ECDSA_WITH_SHA512_DER'},
  {name: 'rsa', conn: 'cert-rsa', client: (l) => l.pki.clientRsa, gw: (l) => l.pki.gwRsa, ca: (l) => l.pki.caRsa, clientId: 'client-rsa.ks.test', gwId: 'gw-rsa.ks.test', scheme: 'RSA_EMSA_PKCS1_SHA2_512'},
]

/** The lab in one role, started once for the suite; the tunkit processes of each test are stopped after it. */
function labSuite(name: string, prefix: string, mode: 'responder-only' | 'initiator-only') {
  const t = unless(suite<{lab: IpsecLab; procs: Proc[]}>(name, {lab: ipsecLab({prefix, mode}), procs: []}), why)
  t.before(({lab}) => lab.up())
  t.after.each(async (ctx) => {
    for (const p of ctx.procs.splice(0)) await stop(p)
  })
  t.after(({lab}) => lab.down())
  return t
}

{
  const t = labSuite('key-exchange: tunkit client ⇄ strongSwan gateway, certificates', 'tkacr', 'responder-only')

  for (const v of VARIANTS) {
    t(`${v.name}: tunkit's client with --cert/--key/--ca is up; strongSwan verified its ${v.scheme} signature, we verified the gateway's chain`, async (ctx) => {
      const {lab} = ctx
      const kp = v.client(lab)
      const c = tunkit(['key-exchange', '--gateway', lab.addresses.gateway, '--cert', kp.cert, '--key', kp.key, '--ca', v.ca(lab), '--remote-id', v.gwId, '--dev', 'tkacr-t', '--json'], {}, lab.ns.cli)
      ctx.procs.push(c)
      const up = await event(c, 'sa-up')
      assert.is(up.peerId, v.gwId)
      assert.match(await lab.swanctl('gw', ['--list-sas']), `'${v.clientId}' @ 203.0.113.2`)
      assert.match(lab.logs('gw'), `authentication of '${v.clientId}' with ${v.scheme} successful`)
      assert.is(await stop(c), 0)
      ctx.procs.splice(0)
    })
  }
  t.run()
}

{
  const t = labSuite('key-exchange: strongSwan client ⇄ tunkit gateway, certificates', 'tkaci', 'initiator-only')

  for (const v of VARIANTS) {
    t(`${v.name}: strongSwan's "${v.conn}" connection is established with tunkit's gateway; each side verified the other's certificate`, async (ctx) => {
      const {lab} = ctx
      const kp = v.gw(lab)
      // Both lab CAs in one --ca file: the gateway trusts either.
      const cas = `${lab.run}/tk-cas.crt`
      writeFileSync(cas, [lab.pki.caEcdsa, lab.pki.caRsa].map((f) => readFileSync(f, 'utf8')).join(''))
      const g = tunkit(['key-exchange', '--respond', '--listen', lab.addresses.gateway, '--cert', kp.cert, '--key', kp.key, '--ca', cas, '--pool', lab.addresses.pool,
        '--dns', lab.addresses.dns, '--policy', lab.addresses.privateNet, '--dev', 'tkaci-t', '--json'], {}, lab.ns.gw)
      ctx.procs.push(g)
      await event(g, 'listening')
      await lab.connect(v.conn)
      const up = await event(g, 'sa-up')
      assert.is(up.peerId, v.clientId)
      assert.match(await lab.swanctl('cli', ['--list-sas']), `remote '${v.gwId}' @ 203.0.113.1`)
      assert.match(lab.logs('cli'), `authentication of '${v.gwId}' with ${v.scheme} successful`)
      await lab.disconnect()
    })
  }
  t.run()
}
