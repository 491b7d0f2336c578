import {chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {ipsecTopology, type Topology} from '../helpers/ipsec-topology.js'
import {event, stop, tmpDir, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {missing, unless} from '../helpers/requires.js'
import {makeCa, makeLeaf, type Ca, type Leaf} from '../ike/core/auth-certs.js'

/**
 * tunkit ⇄ tunkit `key-exchange` with certificates (--cert, --key, --ca) in namespaces: ECDSA
 * certificates up end to end, and a certificate from a CA the other side does not trust, refused
 * with one line on the side that checks it.
 */
interface Ctx {
  topo?: Topology
  dir?: {dir: string; cleanup(): void}
  procs: Proc[]
}

const t = unless(suite<Ctx>('key-exchange: certificates', {procs: []}), missing(['/dev/net/tun', 'ip', 'nft']))

const DAY = 86_400_000
const now = Date.now()
const valid = {notBefore: now - DAY, notAfter: now + 30 * DAY}
const ca = await makeCa('C=ZZ, O=tk-e2e, CN=tk e2e CA', 'p256', valid)
// Another CA of the same name: its certificates look right and chain to nothing we trust.
const rogue = await makeCa('C=ZZ, O=tk-e2e, CN=tk e2e CA', 'p256', valid)
const leaf = (by: Ca, name: string): Promise<Leaf> => makeLeaf(by, `C=ZZ, O=tk-e2e, CN=${name}`, {sans: [`dns:${name}`], ...valid})
const [gw, client, rogueGw, rogueClient] = await Promise.all([leaf(ca, 'gw.tk.test'), leaf(ca, 'client.tk.test'), leaf(rogue, 'gw.tk.test'), leaf(rogue, 'client.tk.test')])

/** Writes a certificate and its key (0600) and the CA; returns the flags. */
function certFlags(ctx: Ctx, name: string, l: Leaf): string[] {
  const base = join(ctx.dir!.dir, name)
  writeFileSync(`${base}.crt`, l.cert.toString())
  writeFileSync(`${base}.key`, l.key.export({type: 'pkcs8', format: 'pem'}), {mode: 0o600})
  chmodSync(`${base}.key`, 0o600)
  writeFileSync(join(ctx.dir!.dir, 'ca.crt'), ca.cert.toString())
  return ['--cert', `${base}.crt`, '--key', `${base}.key`, '--ca', join(ctx.dir!.dir, 'ca.crt')]
}

function gateway(ctx: Ctx, l: Leaf): Proc {
  const p = tunkit(['key-exchange', '--respond', '--listen', '203.0.113.1', ...certFlags(ctx, 'gw', l), '--pool', '198.18.200.0/24', '--dns', '198.18.1.53',
    '--policy', '198.18.1.0/24', '--dev', 'tkxc-gt', '--json'], {}, ctx.topo!.ns.g)
  ctx.procs.push(p)
  return p
}

function connect(ctx: Ctx, l: Leaf): Proc {
  const p = tunkit(['key-exchange', '--gateway', '203.0.113.1', ...certFlags(ctx, 'client', l), '--remote-id', 'gw.tk.test', '--dev', 'tkxc-ct', '--json'], {}, ctx.topo!.ns.c)
  ctx.procs.push(p)
  return p
}

const exited = async (p: Proc): Promise<number> => (await waitFor('client exit', () => (p.child.exitCode !== null ? {code: p.child.exitCode} : undefined))).code

t.before(async (ctx) => {
  ctx.topo = await ipsecTopology('tkxc')
  ctx.dir = tmpDir('kxc')
})

t.after.each(async (ctx) => {
  for (const p of ctx.procs.splice(0)) await stop(p)
})

t.after(async (ctx) => {
  await ctx.topo?.down()
  ctx.dir?.cleanup()
})

t('ECDSA certificates both ways: up with the identities of the certificates, the address pushed, the pushed subnet routed', async (ctx) => {
  const g = gateway(ctx, gw)
  await event(g, 'listening')
  const c = connect(ctx, client)
  const up = await event(c, 'sa-up')
  assert.is(up.peerId, 'gw.tk.test')
  assert.is(up.vip, '198.18.200.2')
  assert.is((await event(g, 'sa-up')).peerId, 'client.tk.test')
  const routes = await ctx.topo!.exec(ctx.topo!.ns.c, ['ip', 'route', 'show', 'dev', 'tkxc-ct'])
  assert.match(routes.stdout, /^198\.18\.1\.0\/24 /m)
  assert.is(await stop(c), 0)
})

t('a gateway certificate from a CA the client does not trust: the client exits 1 with one line naming the unknown CA', async (ctx) => {
  const g = gateway(ctx, rogueGw)
  await event(g, 'listening')
  const c = connect(ctx, client)
  assert.is(await exited(c), 1, c.stderr)
  assert.match(c.stderr, /^tunkit key-exchange: error: the gateway: unknown CA: C=ZZ, O=tk-e2e, CN=gw\.tk\.test is issued by C=ZZ, O=tk-e2e, CN=tk e2e CA, not by a CA we trust\n$/m)
  const f = await event(g, 'sa-failed')
  assert.match(String(f.reason), /did not accept our authentication/)
})

t('a client certificate from a CA the gateway does not trust: the client exits 1 (AUTHENTICATION_FAILED); the gateway logs the unknown CA', async (ctx) => {
  const g = gateway(ctx, gw)
  await event(g, 'listening')
  const c = connect(ctx, rogueClient)
  assert.is(await exited(c), 1, c.stderr)
  assert.match(c.stderr, /^tunkit key-exchange: error: the gateway refused IKE_AUTH: authentication failed .*\(AUTHENTICATION_FAILED\)\n$/m)
  const f = await event(g, 'sa-failed')
  assert.is(f.code, 'TK_TLS_UNKNOWN_CA')
  assert.match(String(f.reason), /^IKE_AUTH from 203\.0\.113\.2: unknown CA: C=ZZ, O=tk-e2e, CN=client\.tk\.test is issued by/)
})

t.run()
