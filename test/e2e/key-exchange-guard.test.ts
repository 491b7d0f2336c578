import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {chmodSync, existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {ipsecTopology, type Topology} from '../helpers/ipsec-topology.js'
import {event, stop, tmpDir, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {missing, unless} from '../helpers/requires.js'

/**
 * Issue 11's attack gaps of `key-exchange`: one identity cannot hold the gateway's IKE_SAs, a
 * gateway that never answers and a name that never resolves end the client in bounded time with
 * one line, and --dns-apply hands the pushed DNS server to resolvconf and takes it back.
 * Namespaces tkkg-c/-g/-p (test/helpers/ipsec-topology.ts); nothing leaves them.
 */
interface Ctx {
  topo?: Topology
  dir?: {dir: string; cleanup(): void}
  procs: Proc[]
  kids: ChildProcess[]
}

const PSK = 'tk-guard-psk-51c9e2'
const DEV = 'tkkg-ct'

function file(ctx: Ctx, name: string, text: string, mode = 0o600): string {
  const p = join(ctx.dir!.dir, name)
  writeFileSync(p, text)
  chmodSync(p, mode)
  return p
}

function gateway(ctx: Ctx, extra: string[] = []): Proc {
  const p = tunkit(['key-exchange', '--respond', '--listen', '203.0.113.1', '--psk-file', file(ctx, 'gw.psk', PSK + '\n'), '--pool', '198.18.200.0/24', '--dns', '198.18.1.53',
    '--policy', '198.18.1.0/24', '--dev', 'tkkg-gt', '--json', ...extra], {}, ctx.topo!.ns.g)
  ctx.procs.push(p)
  return p
}

function client(ctx: Ctx, extra: string[], wrap: string[] = [], env: Record<string, string> = {}): Proc {
  const p = tunkit(['key-exchange', '--psk-file', file(ctx, 'c.psk', PSK + '\n'), '--dev', DEV, '--json', ...extra], env, ctx.topo!.ns.c, wrap)
  ctx.procs.push(p)
  return p
}

/** The client ends by itself (`ms` only stops a hang): its exit code and stderr. */
async function ends(p: Proc, ms: number): Promise<{code: number | null; lines: string[]}> {
  const code = await Promise.race([p.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms))])
  assert.ok(code !== 'hung', `still running after ${ms} ms: ${p.stderr}`)
  return {code: code as number | null, lines: p.stderr.trim().split('\n')}
}

async function noDevice(ctx: Ctx): Promise<void> {
  const links = await ctx.topo!.exec(ctx.topo!.ns.c, ['ip', '-o', 'link'])
  assert.not.match(links.stdout, new RegExp(DEV))
}

/** `mount --bind SRC DST` in a mount namespace of its own, then the rest of the argv (exec'd: the PID stays node's). */
const bound = (binds: [string, string][]): string[] => ['unshare', '-m', 'sh', '-c', `${binds.map((_, i) => `mount --bind "$${2 * i + 1}" "$${2 * i + 2}"`).join(' && ')} && shift ${2 * binds.length} && exec "$@"`, 'sh', ...binds.flat()]

function setUp(t: ReturnType<typeof suite<Ctx>>): void {
  t.before(async (ctx) => {
    ctx.topo = await ipsecTopology('tkkg')
    ctx.dir = tmpDir('kg')
  })
  t.after.each(async (ctx) => {
    for (const p of ctx.procs.splice(0)) await stop(p)
    for (const k of ctx.kids.splice(0)) if (k.exitCode === null) k.kill('SIGKILL')
  })
  t.after(async (ctx) => {
    await ctx.topo?.down()
    ctx.dir?.cleanup()
  })
}

const t = unless(suite<Ctx>('key-exchange guard: IKE_SAs per identity, a silent gateway, a name that never resolves', {procs: [], kids: []}), missing(['/dev/net/tun', 'ip', 'nft', 'unshare', 'mount']))
setUp(t)

t('one identity without INITIAL_CONTACT is capped at 4 IKE_SAs (the gateway says why) while another connects; a reconnect with INITIAL_CONTACT replaces them all', async (ctx) => {
  const {ns} = ctx.topo!
  const gw = gateway(ctx)
  await event(gw, 'listening')
  // Six initiators of bob@tk.test one after the other, held up, none sending INITIAL_CONTACT.
  const load = spawn('ip', ['netns', 'exec', ns.c, process.execPath, 'bench/ike/load.mjs', '203.0.113.1', '--psk-file', file(ctx, 'load.psk', PSK + '\n'), '--bind', '203.0.113.2',
    '--count', '6', '--parallel', '1', '--hold', '--id', 'bob@tk.test', '--no-initial-contact', '--timeout', '60'], {stdio: ['pipe', 'pipe', 'inherit']})
  ctx.kids.push(load)
  let out = ''
  load.stdout!.on('data', (b: Buffer) => (out += b))
  const r = JSON.parse(await waitFor('load.mjs', () => out.split('\n').find((l) => l.startsWith('{"count"')), 60_000)) as {ok: number; failed: number; errors: Record<string, number>}
  assert.is(r.ok, 4, out)
  assert.is(r.failed, 2, out)
  assert.equal(Object.keys(r.errors), ['the gateway refused IKE_AUTH: authentication failed (wrong PSK, certificate or identity) (AUTHENTICATION_FAILED)'])
  const ups = (): Record<string, unknown>[] => gw.events.filter((e) => e.event === 'sa-up' && e.peerId === 'bob@tk.test')
  assert.is(ups().length, 4)
  const refused = gw.events.filter((e) => e.event === 'sa-failed')
  assert.is(refused.length, 2)
  for (const f of refused) {
    assert.is(f.code, 'TK_RESOURCE_LIMIT')
    assert.match(String(f.reason), /^IKE_AUTH from 203\.0\.113\.2: bob@tk\.test already has 4 IKE_SAs, the limit per identity/)
  }
  assert.match(gw.stderr, /warn .*bob@tk\.test already has 4 IKE_SAs/)

  // Another identity is not held back.
  const alice = client(ctx, ['--gateway', '203.0.113.1', '--id', 'alice@tk.test'])
  await event(alice, 'sa-up')
  await stop(alice)
  ctx.procs.splice(ctx.procs.indexOf(alice), 1)

  // tunkit's client sends INITIAL_CONTACT: bob's four SAs go (DELETE to each), the new one stays.
  const old = ups().map((e) => e.spiI as string)
  const bob = client(ctx, ['--gateway', '203.0.113.1', '--id', 'bob@tk.test'])
  const up = await event(bob, 'sa-up')
  const down = await waitFor('4 replaced', () => {
    const d = gw.events.filter((e) => e.event === 'sa-down' && e.what === 'ike' && old.includes(e.spiI as string))
    return d.length === 4 ? d : undefined
  })
  for (const d of down) {
    assert.is(d.by, 'us')
    assert.is(d.reason, `replaced by IKE_SA ${up.spiI as string} of bob@tk.test (INITIAL_CONTACT)`)
  }
  const live = ups().map((e) => e.spiI as string).filter((s) => !gw.events.some((e) => e.event === 'sa-down' && e.what === 'ike' && e.spiI === s))
  assert.equal(live, [up.spiI])
  // The old peer got a DELETE for each of its IKE_SAs and answered it.
  load.stdin!.end()
  const held = JSON.parse(await waitFor('load.mjs end', () => out.split('\n').find((l) => l.startsWith('{"deletedByPeer"')))) as {deletedByPeer: number}
  assert.is(held.deletedByPeer, 4)
  // And traffic flows on the new one.
  const ping = await ctx.topo!.exec(ns.c, ['ping', '-n', '-q', '-c', '2', '-i', '0.2', '-W', '2', '198.18.1.10'])
  assert.match(ping.stdout, /2 received/)
})

t('a client that offers another client\'s inbound ESP SPI and then deletes its CHILD_SA takes nothing from the other: its ESP still flows', async (ctx) => {
  const {ns, exec} = ctx.topo!
  const gw = gateway(ctx)
  await event(gw, 'listening')
  const bob = client(ctx, ['--gateway', '203.0.113.1', '--id', 'bob@tk.test'])
  const bobSpi = ((await event(bob, 'sa-up')).child as {spiIn: string}).spiIn
  // mallory (bench/ike/load.mjs) offers bob's SPI as its own inbound one, so the gateway's outbound
  // SA to mallory carries the same SPI as the one to bob; then mallory deletes that CHILD_SA.
  const load = spawn('ip', ['netns', 'exec', ns.c, process.execPath, 'bench/ike/load.mjs', '203.0.113.1', '--psk-file', file(ctx, 'load.psk', PSK + '\n'), '--bind', '203.0.113.2',
    '--count', '1', '--hold', '--id', 'mallory@tk.test', '--child-spi', bobSpi, '--delete-child', '--timeout', '30'], {stdio: ['pipe', 'pipe', 'inherit']})
  ctx.kids.push(load)
  const mallory = await event(gw, 'sa-up', (e) => e.peerId === 'mallory@tk.test')
  assert.is((mallory.child as {spiOut: string}).spiOut, bobSpi)
  await event(gw, 'sa-down', (e) => e.what === 'child' && e.spiI === mallory.spiI)
  const ping = await exec(ns.c, ['ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '2', '198.18.1.10'])
  assert.match(ping.stdout, /3 received/, 'bob\'s tunnel still carries ESP both ways')
})

t('a gateway that never answers (UDP 500 dropped): one line, TK_TIMEOUT, exit 1 within --connect-timeout, no device left', async (ctx) => {
  const {ns, exec} = ctx.topo!
  await exec(ns.g, ['nft', 'add', 'table', 'inet', 'tkguard'])
  try {
    await exec(ns.g, ['nft', 'add', 'chain', 'inet', 'tkguard', 'input', '{ type filter hook input priority 0; }'])
    await exec(ns.g, ['nft', 'add', 'rule', 'inet', 'tkguard', 'input', 'udp', 'dport', '500', 'drop'])
    const c = client(ctx, ['--gateway', '203.0.113.1', '--connect-timeout', '3'])
    const r = await ends(c, 15_000)
    assert.is(r.code, 1, c.stderr)
    assert.equal(r.lines, ['tunkit key-exchange: error: the gateway 203.0.113.1 did not answer IKE_SA_INIT within 3 s'])
    assert.match(c.stdout, /"event":"error".*"code":"TK_TIMEOUT"/)
    await noDevice(ctx)
  } finally {
    await exec(ns.g, ['nft', 'delete', 'table', 'inet', 'tkguard']).catch(() => {})
  }
})

/**
 * A DNS server of the test's own on 127.0.0.1:53 in the client's namespace: it answers NXDOMAIN,
 * or never. It prints each query's name, so the test sees where the lookups went.
 */
async function dnsStub(ctx: Ctx, mode: 'nxdomain' | 'silent'): Promise<{queries: () => string[]}> {
  const code = `
    const s = require('node:dgram').createSocket('udp4')
    s.on('message', (q, r) => {
      let o = 12, name = []
      while (o < q.length && q[o]) { name.push(q.subarray(o + 1, o + 1 + q[o]).toString()); o += q[o] + 1 }
      process.stdout.write('query ' + name.join('.') + '\\n')
      if (process.argv[1] !== 'nxdomain') return
      const a = Buffer.from(q.subarray(0, o + 5))
      a[2] = 0x80 | (q[2] & 0x79); a[3] = 0x83; a.writeUInt16BE(1, 4); a.fill(0, 6, 12)
      s.send(a, r.port, r.address)
    })
    s.bind(53, '127.0.0.1', () => process.stdout.write('ready\\n'))`
  const k = spawn('ip', ['netns', 'exec', ctx.topo!.ns.c, process.execPath, '-e', code, mode], {stdio: ['ignore', 'pipe', 'inherit']})
  ctx.kids.push(k)
  let out = ''
  k.stdout!.on('data', (b: Buffer) => (out += b))
  const lines = (): string[] => out.split('\n')
  await waitFor('DNS stub', () => lines().includes('ready'))
  return {queries: () => lines().filter((l) => l.startsWith('query ')).map((l) => l.slice(6))}
}

t('a --gateway name that does not exist (NXDOMAIN) or never resolves: one line naming the name and the cause, bounded, no device', async (ctx) => {
  const conf = file(ctx, 'resolv.conf', 'nameserver 127.0.0.1\n', 0o644)
  const wrap = bound([[conf, '/etc/resolv.conf']])
  const nx = await dnsStub(ctx, 'nxdomain')
  const a = client(ctx, ['--gateway', 'gw.tk-guard.invalid'], wrap)
  const r = await ends(a, 10_000)
  assert.is(r.code, 1, a.stderr)
  assert.equal(r.lines, ['tunkit key-exchange: error: --gateway gw.tk-guard.invalid does not resolve: no such name (NXDOMAIN)'])
  assert.ok(nx.queries().includes('gw.tk-guard.invalid'), 'the lookup went to the test\'s server')
  assert.match(a.stdout, /"code":"TK_HOST_NOT_FOUND"/)
  for (const k of ctx.kids.splice(0)) k.kill('SIGKILL')

  const silent = await dnsStub(ctx, 'silent')
  const b = client(ctx, ['--gateway', 'gw.tk-guard.invalid', '--connect-timeout', '2'], wrap)
  const s = await ends(b, 15_000)
  assert.is(s.code, 1, b.stderr)
  assert.equal(s.lines, ['tunkit key-exchange: error: --gateway gw.tk-guard.invalid does not resolve: no answer within 2 s'])
  assert.ok(silent.queries().includes('gw.tk-guard.invalid'))
  await noDevice(ctx)
})

t.run()

// --dns-apply needs a real resolvconf: openresolv (.ci/run installs it), whose configuration can
// be bound over in a mount namespace so that the host's resolv.conf is never touched.
const openresolv = (): string | null => {
  const why = missing(['/dev/net/tun', 'ip', 'nft', 'unshare', 'mount', 'resolvconf', '/etc/resolvconf.conf'])
  if (why) return why
  try {
    return /openresolv/.test(execFileSync('resolvconf', ['--version'], {encoding: 'utf8'})) ? null : 'needs openresolv (another resolvconf is installed)'
  } catch {
    return 'needs openresolv (resolvconf --version failed)'
  }
}
const d = unless(suite<Ctx>('key-exchange --dns-apply with openresolv', {procs: [], kids: []}), openresolv())
setUp(d)

d('--dns-apply: the pushed DNS server is in resolv.conf while up, gone after SIGTERM and after the gateway ends the SA (resolvconf -a/-d, in a mount namespace of its own)', async (ctx) => {
  const resolv = file(ctx, 'resolv.conf', '# tunkit test\n', 0o644)
  const conf = file(ctx, 'resolvconf.conf', `resolv_conf=${resolv}\nstate_dir=${join(ctx.dir!.dir, 'state')}\n`, 0o644)
  const gw = gateway(ctx)
  await event(gw, 'listening')
  const c = client(ctx, ['--gateway', '203.0.113.1', '--id', 'carol@tk.test', '--dns-apply'], bound([[conf, '/etc/resolvconf.conf']]))
  const up = await event(c, 'sa-up')
  assert.equal(up.dns, ['198.18.1.53'])
  assert.match(c.stderr, /DNS 198\.18\.1\.53 \(applied with resolvconf\)/)
  assert.match(readFileSync(resolv, 'utf8'), /^nameserver 198\.18\.1\.53$/m)
  assert.is(await stop(c), 0)
  assert.not.match(readFileSync(resolv, 'utf8'), /198\.18\.1\.53/)
  assert.ok(!existsSync(join(ctx.dir!.dir, 'state', 'interfaces', DEV)), 'resolvconf forgot the device')
  ctx.procs.splice(ctx.procs.indexOf(c), 1)

  // A failure path: the gateway goes away (its DELETE ends the client with exit 1), and the server goes too.
  const again = client(ctx, ['--gateway', '203.0.113.1', '--id', 'carol@tk.test', '--dns-apply'], bound([[conf, '/etc/resolvconf.conf']]))
  await event(again, 'sa-up')
  await waitFor('applied again', () => /^nameserver 198\.18\.1\.53$/m.test(readFileSync(resolv, 'utf8')))
  assert.is(await stop(gw), 0)
  const r = await ends(again, 10_000)
  assert.is(r.code, 1, again.stderr)
  assert.match(r.lines.at(-1)!, /error: the gateway deleted the IKE_SA$/)
  assert.not.match(readFileSync(resolv, 'utf8'), /198\.18\.1\.53/)
})

d('--dns-apply without a resolvconf on PATH: one line, exit 2, before any packet', async (ctx) => {
  const c = client(ctx, ['--gateway', '203.0.113.1', '--dns-apply'], ['env', 'PATH=/usr/bin:/bin'])
  const r = await ends(c, 10_000)
  assert.is(r.code, 2, c.stderr)
  assert.equal(r.lines, ['tunkit key-exchange: error: --dns-apply needs resolvconf (openresolv, resolvconf or systemd-resolved), and there is none on PATH'])
})

d.run()
