import * as assert from 'uvu/assert'
import {exited, kx, kxSuite, secretFile, type KxCtx} from '../helpers/ipsec-topology.js'
import {event, stop, waitFor, type Proc} from '../helpers/procs.js'
import {makeCa, makeLeaf, type Ca, type Leaf} from '../ike/core/auth-certs.js'

/**
 * tunkit ⇄ tunkit `key-exchange` with certificates (--cert, --key, --ca) in namespaces: ECDSA
 * certificates up end to end, and certificates the side that checks them refuses with one line:
 * from a CA it does not trust, or expired.
 */
const t = kxSuite('key-exchange: certificates', 'tkxc')

const DAY = 86_400_000
const now = Date.now()
const valid = {notBefore: now - DAY, notAfter: now + 30 * DAY}
const ca = await makeCa('C=ZZ, O=tk-e2e, CN=tk e2e CA', 'p256', valid)
// Another CA of the same name: its certificates look right and chain to nothing we trust.
const rogue = await makeCa('C=ZZ, O=tk-e2e, CN=tk e2e CA', 'p256', valid)
const leaf = (by: Ca, name: string, o = valid): Promise<Leaf> => makeLeaf(by, `C=ZZ, O=tk-e2e, CN=${name}`, {sans: [`dns:${name}`], ...o})
const [gw, client, rogueGw, rogueClient] = await Promise.all([leaf(ca, 'gw.tk.test'), leaf(ca, 'client.tk.test'), leaf(rogue, 'gw.tk.test'), leaf(rogue, 'client.tk.test')])

/**
 * A certificate that expires `ms` from now: both commands refuse an expired --cert at start, so
 * an expired certificate reaches the peer only from a process that started while it was valid.
 * X.509 times have whole seconds; `expired` waits until the peer's clock is past it.
 */
async function expiring(name: string, ms: number): Promise<{leaf: Leaf; notAfter: string; expired(): Promise<void>}> {
  const notAfter = Math.floor((Date.now() + ms) / 1000) * 1000
  const l = await leaf(ca, name, {notBefore: now - DAY, notAfter})
  return {leaf: l, notAfter: new Date(notAfter).toISOString().replace('.000Z', 'Z'), expired: () => new Promise((r) => setTimeout(r, notAfter + 1100 - Date.now()))}
}

/** Writes a certificate and its key (0600) and the CA; returns the flags. */
function certFlags(ctx: KxCtx, name: string, l: Leaf): string[] {
  const crt = secretFile(ctx, `${name}.crt`, l.cert.toString())
  const key = secretFile(ctx, `${name}.key`, l.key.export({type: 'pkcs8', format: 'pem'}))
  return ['--cert', crt, '--key', key, '--ca', secretFile(ctx, 'ca.crt', ca.cert.toString())]
}

function gateway(ctx: KxCtx, l: Leaf): Proc {
  return kx(ctx, 'g', ['--respond', '--listen', '203.0.113.1', ...certFlags(ctx, 'gw', l), '--pool', '198.18.200.0/24', '--dns', '198.18.1.53', '--policy', '198.18.1.0/24', '--dev', 'tkxc-gt', '--json'])
}

function connect(ctx: KxCtx, l: Leaf, extra: string[] = []): Proc {
  return kx(ctx, 'c', ['--gateway', '203.0.113.1', ...certFlags(ctx, 'client', l), '--remote-id', 'gw.tk.test', '--dev', 'tkxc-ct', '--json', ...extra])
}

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

t('a gateway whose certificate expired while it ran: the client exits 1 with one line naming the subject and notAfter; the gateway logs that the client refused it', async (ctx) => {
  const x = await expiring('gw.tk.test', 3000)
  const g = gateway(ctx, x.leaf)
  await event(g, 'listening')
  await x.expired()
  const c = connect(ctx, client)
  assert.is(await exited(c), 1, c.stderr)
  const errors = c.stderr.split('\n').filter((l) => l.includes('error'))
  assert.equal(errors, [`tunkit key-exchange: error: the gateway: certificate expired: C=ZZ, O=tk-e2e, CN=gw.tk.test was valid until ${x.notAfter}`], c.stderr)
  const f = await event(g, 'sa-failed')
  assert.is(f.reason, 'the peer did not accept our authentication (AUTHENTICATION_FAILED)')
})

t('a client certificate that expired before IKE_AUTH: the client exits 1 (AUTHENTICATION_FAILED); the gateway logs "certificate expired" naming it', async (ctx) => {
  const g = gateway(ctx, gw)
  await event(g, 'listening')
  const x = await expiring('client.tk.test', 6000)
  // The gateway is frozen while the client starts (its certificate still valid) and until the
  // certificate has expired; then it answers the client's queued IKE_SA_INIT.
  g.child.kill('SIGSTOP')
  try {
    const c = connect(ctx, x.leaf, ['--trace'])
    await waitFor('the first IKE_SA_INIT', () => c.stderr.includes('IKE_SA_INIT request'))
    await x.expired()
    g.child.kill('SIGCONT')
    assert.is(await exited(c), 1, c.stderr)
    assert.equal(c.stderr.split('\n').filter((l) => l.includes('error')), ['tunkit key-exchange: error: the gateway refused IKE_AUTH: authentication failed (wrong PSK, certificate or identity) (AUTHENTICATION_FAILED)'], c.stderr)
  } finally {
    g.child.kill('SIGCONT')
  }
  const f = await event(g, 'sa-failed')
  assert.is(f.code, 'TK_TLS_CERT_EXPIRED')
  assert.is(f.reason, `IKE_AUTH from 203.0.113.2: certificate expired: C=ZZ, O=tk-e2e, CN=client.tk.test was valid until ${x.notAfter}`)
})

t.run()
