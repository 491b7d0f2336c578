import {chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {ipsecLab, ipsecLabMissing, type IpsecLab} from '../helpers/ipsec-lab.js'
import {event, stop, tmpDir, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {unless} from '../helpers/requires.js'
import {transfer} from '../helpers/xfer.js'

/**
 * tunkit against an unmodified strongSwan 5.9.8 (the project's lab, test/lab/ipsec), in both roles.
 * Traffic always goes to the private host 198.18.1.10, which only the tunnel reaches.
 */
const why = ipsecLabMissing()
const dir = tmpDir('ipsec-interop')
const pskFile = (value: string, name = 'lab.psk'): string => {
  const p = join(dir.dir, name)
  writeFileSync(p, value + '\n')
  chmodSync(p, 0o600)
  return p
}

interface Ctx {
  lab?: IpsecLab
  procs: Proc[]
}

function labSuite(name: string, opts: Parameters<typeof ipsecLab>[0]) {
  const t = suite<Ctx>(name, {procs: []})
  if (why) return {t: unless(t, why), opts}
  t.before(async (ctx) => {
    ctx.lab = ipsecLab(opts)
    await ctx.lab.up()
  })
  t.after.each(async (ctx) => {
    for (const p of ctx.procs.splice(0)) await stop(p)
  })
  t.after(async (ctx) => {
    await ctx.lab?.down()
  })
  return {t, opts}
}

/** The tunkit client in the lab's client namespace, with the lab's PSK unless `args` say otherwise. */
function client(ctx: Ctx, args: string[]): Proc {
  const lab = ctx.lab!
  const auth = args.includes('--cert') ? [] : ['--psk-file', pskFile(lab.psk), '--id', lab.ids.clientPsk]
  const p = tunkit(['key-exchange', '--gateway', lab.addresses.gateway, ...auth, '--dev', `${lab.prefix}t0`, '--json', ...args], {}, lab.ns.cli)
  ctx.procs.push(p)
  return p
}

/** ping -c N through the tunnel: the count of replies. */
async function ping(lab: IpsecLab, n: number, intervalS = 0.2): Promise<number> {
  const r = await lab.exec('cli', ['ping', '-n', '-q', '-c', String(n), '-i', String(intervalS), '-W', '2', lab.addresses.privateHost], 20_000 + n * intervalS * 2000).catch((e: {stdout?: string}) => ({stdout: e.stdout ?? ''}))
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0)
}

async function trafficChecks(lab: IpsecLab, mb: number): Promise<void> {
  assert.is(await ping(lab, 3), 3, 'ping 198.18.1.10 through the tunnel')
  const x = await transfer(lab.ns.cli, lab.ns.priv, lab.addresses.privateHost, 5001, mb)
  assert.is(x.reply, x.sent, `${mb} MB arrived intact (SHA-256)`)
}

// --- tunkit initiator against the strongSwan gateway --------------------------------------------
{
  const {t} = labSuite('IPsec interop: tunkit client, strongSwan gateway', {prefix: 'tkii', mode: 'responder-only', dpdDelay: 2})

  t('PSK: address, DNS and narrowed TS pushed; ping and 50 MB intact; CHILD_SA and IKE_SA rekeys and a DPD lose at most one ping', async (ctx) => {
    const lab = ctx.lab!
    const c = client(ctx, ['--remote-id', lab.ids.gw])
    const up = await event(c, 'sa-up')
    assert.is(up.vip, '198.18.200.1')
    assert.equal(up.dns, [lab.addresses.dns])
    assert.is((up.child as {tsR: string}).tsR, lab.addresses.privateNet)
    await trafficChecks(lab, 50)
    // A ping every 50 ms while the gateway rekeys both SAs and checks we are alive.
    const pinger = lab.exec('cli', ['ping', '-n', '-q', '-i', '0.05', '-w', '8', lab.addresses.privateHost], 30_000).catch((e: {stdout?: string}) => ({stdout: e.stdout ?? ''}))
    await new Promise((r) => setTimeout(r, 500))
    await lab.rekeyChild()
    await event(c, 'rekey')
    await lab.rekeyIke()
    await lab.dpd(10)
    const out = (await pinger).stdout
    const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1])
    const got = Number(/(\d+) received/.exec(out)?.[1])
    assert.ok(sent > 100, out)
    assert.ok(sent - got <= 1, `lost ${sent - got} of ${sent} pings across the rekeys: ${out}`)
    assert.is(await ping(lab, 3), 3, 'still up after the rekeys')
  })

  t('ECDSA certificates (RFC 7427), then RSA: ping and a transfer', async (ctx) => {
    const lab = ctx.lab!
    for (const [pair, ca, id, gw] of [[lab.pki.clientEcdsa, lab.pki.caEcdsa, lab.ids.client, lab.ids.gw], [lab.pki.clientRsa, lab.pki.caRsa, lab.ids.clientRsa, lab.ids.gwRsa]] as const) {
      const c = client(ctx, ['--cert', pair.cert, '--key', pair.key, '--ca', ca, '--id', id, '--remote-id', gw])
      const up = await event(c, 'sa-up')
      assert.is(up.peerId, gw)
      await trafficChecks(lab, 5)
      assert.is(await stop(c), 0)
      ctx.procs.splice(ctx.procs.indexOf(c), 1)
    }
  })

  t('a wrong PSK: one line naming it, exit 1', async (ctx) => {
    const lab = ctx.lab!
    const p = tunkit(['key-exchange', '--gateway', lab.addresses.gateway, '--psk-file', pskFile('wrong-psk', 'wrong.psk'), '--id', lab.ids.clientPsk, '--dev', `${lab.prefix}t0`], {}, lab.ns.cli)
    ctx.procs.push(p)
    const code = await p.exited
    assert.is(code, 1, p.stderr)
    assert.match(p.stderr, /^tunkit key-exchange: error: .*authentication failed.*$/m)
    assert.is(p.stderr.trim().split('\n').filter((l) => /error/.test(l)).length, 1, p.stderr)
  })

  t.run()
}

// --- the same behind a NAT ------------------------------------------------------------------
{
  const {t} = labSuite('IPsec interop: tunkit client behind a NAT, strongSwan gateway', {prefix: 'tkin', mode: 'responder-only', nat: true})
  t('PSK through a MASQUERADE NAT: ESP in UDP 4500, ping and 20 MB intact', async (ctx) => {
    const lab = ctx.lab!
    const c = client(ctx, [])
    const up = await event(c, 'sa-up')
    assert.match(String(up.peer), /:4500$/)
    await trafficChecks(lab, 20)
  })
  t.run()
}

// --- a gateway that accepts one narrow proposal --------------------------------------------
{
  const {t} = labSuite('IPsec interop: a strongSwan gateway narrowed to aes128-sha1-modp2048', {prefix: 'tkiw', mode: 'responder-only', narrow: true})
  t('a client given no proposal options still connects, with exactly that suite; its --trace shows the CP(REPLY) decrypted', async (ctx) => {
    const c = client(ctx, ['--trace'])
    const up = await event(c, 'sa-up')
    assert.is(up.ike, 'aes128-sha1-prfsha1-modp2048')
    assert.is((up.child as {esp: string}).esp, 'aes128-sha1')
    assert.is(await ping(ctx.lab!, 3), 3)
    assert.match(await waitFor('IKE_AUTH response trace', () => c.stderr.split('\n').find((l) => / <- \S+ IKE_AUTH response /.test(l))), new RegExp(`payloads="SK\\{decrypted: IDr\\(.*CP\\(REPLY: [^)]*INTERNAL_IP4_ADDRESS=${String(up.vip).replaceAll('.', '\\.')}[,)]`))
  })
  t.run()
}

// --- a gateway with no proposal in common --------------------------------------------------
{
  const {t} = labSuite('IPsec interop: a strongSwan gateway with only proposals tunkit lacks (AES-192)', {prefix: 'tkix', mode: 'responder-only', narrow: {ike: 'aes192-sha256-modp2048', esp: 'aes192-sha256'}})
  t('the client exits 1 with one line: no proposal in common', async (ctx) => {
    const lab = ctx.lab!
    const p = client(ctx, [])
    assert.is(await p.exited, 1, p.stderr)
    assert.match(p.stderr, /^tunkit key-exchange: error: the gateway refused IKE_SA_INIT: no proposal in common \(NO_PROPOSAL_CHOSEN\)$/m)
    assert.match(lab.logs('gw'), /IKE_SA_INIT response 0 \[ N\(NO_PROP\) \]/)
  })
  t.run()
}

// --- the strongSwan initiator against the tunkit gateway ---------------------------------------
{
  const {t} = labSuite('IPsec interop: strongSwan client, tunkit gateway', {prefix: 'tkir', mode: 'initiator-only'})

  function gateway(ctx: Ctx, args: string[]): Proc {
    const lab = ctx.lab!
    const p = tunkit(['key-exchange', '--respond', '--listen', lab.addresses.gateway, '--pool', lab.addresses.pool, '--dns', lab.addresses.dns, '--policy', lab.addresses.privateNet,
      '--dev', `${lab.prefix}gt`, '--json', ...args], {}, lab.ns.gw)
    ctx.procs.push(p)
    return p
  }

  const cases: [string, (lab: IpsecLab) => string[], string][] = [
    ['psk', (lab) => ['--psk-file', pskFile(lab.psk), '--id', lab.ids.gw], 'aes256gcm16'],
    ['psk-gcm-x25519', (lab) => ['--psk-file', pskFile(lab.psk), '--id', lab.ids.gw], 'aes256gcm16'],
    ['psk-gcm-ecp256', (lab) => ['--psk-file', pskFile(lab.psk), '--id', lab.ids.gw], 'aes256gcm16'],
    ['psk-cbc-modp2048', (lab) => ['--psk-file', pskFile(lab.psk), '--id', lab.ids.gw], 'aes256-sha256'],
    ['psk-pfs', (lab) => ['--psk-file', pskFile(lab.psk), '--id', lab.ids.gw], 'aes256gcm16'],
    ['cert', (lab) => ['--cert', lab.pki.gwEcdsa.cert, '--key', lab.pki.gwEcdsa.key, '--ca', lab.pki.caEcdsa, '--id', lab.ids.gw], 'aes256gcm16'],
    ['cert-rsa', (lab) => ['--cert', lab.pki.gwRsa.cert, '--key', lab.pki.gwRsa.key, '--ca', lab.pki.caRsa, '--id', lab.ids.gwRsa], 'aes256-sha256'],
  ]
  t('a client asking for a subnet outside every --policy: the gateway refuses the CHILD_SA (TS_UNACCEPTABLE) and says why', async (ctx) => {
    const lab = ctx.lab!
    const gw = gateway(ctx, ['--psk-file', pskFile(lab.psk), '--id', lab.ids.gw])
    await event(gw, 'listening')
    const refused = await lab.connect('psk-ts-outside').then(() => false, () => true)
    assert.ok(refused, 'strongSwan could not establish the CHILD_SA')
    const f = await event(gw, 'sa-failed')
    assert.is(f.code, 'TK_DENIED')
    assert.match(String(f.reason), /traffic selectors outside 198\.18\.1\.0\/24/)
    assert.match(lab.logs('cli'), /TS_UNACCEPTABLE/)
  })

  for (const [conn, args, esp] of cases) {
    t(`strongSwan connection "${conn}": SAs up with ESP ${esp}, address and DNS pushed, ping and a transfer`, async (ctx) => {
      const lab = ctx.lab!
      const gw = gateway(ctx, args(lab))
      await event(gw, 'listening')
      await lab.connect(conn)
      const up = await event(gw, 'sa-up')
      assert.is((up.child as {esp: string}).esp, esp)
      assert.match(String(up.vip), /^198\.18\.200\.\d+$/)
      const sas = await lab.swanctl('cli', ['--list-sas'])
      assert.match(sas, /198\.18\.1\.0\/24/)
      await trafficChecks(lab, conn === 'psk' ? 50 : 5)
      await lab.disconnect()
      await event(gw, 'sa-down', (e) => e.what === 'ike')
    })
  }
  t.run()
}
