import {execFile, spawn} from 'node:child_process'
import {createServer as httpServer} from 'node:http'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {issue, loadCa, writePair} from '../../src/pki/pki.js'
import {missing, unless} from '../helpers/requires.js'
import {event, runCli, stop, tmpDir, tunkit, type Proc} from '../helpers/procs.js'
import {httpBody, listening, socksConnect} from '../helpers/servers.js'

/**
 * Issue 9, name resolution at the gate. The gate runs in namespace NS, reached over a veth
 * (198.19.99.1 here, .2 there); its /etc/hosts names web.internal (our HTTP server) and
 * outside.internal, and its resolver is 127.0.0.53, where a socket in NS takes queries and never
 * answers. mallory's rule allows only an address range, so her names must be resolved; eve has no
 * rule; alice may open anything.
 */
const run = promisify(execFile)
const NS = 'tkf9g'
const [HOST_IP, GATE_IP] = ['198.19.99.1', '198.19.99.2']

async function down(): Promise<void> {
  await run('ip', ['netns', 'del', NS]).catch(() => {})
  rmSync(`/etc/netns/${NS}`, {recursive: true, force: true})
}

type Ctx = {procs: Proc[]; pki?: {dir: string; cleanup(): void}; gate?: Proc; http?: Awaited<ReturnType<typeof listening>>}
const t = unless(suite<Ctx>('gate name resolution: a dead resolver starves no one, a refused identity learns no names', {procs: []}), missing(['ip']))

t.before(async (ctx) => {
  await down()
  for (const c of [
    ['ip', 'netns', 'add', NS], ['ip', '-n', NS, 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'add', 'tkf9h', 'type', 'veth', 'peer', 'name', 'tkf9n', 'netns', NS],
    ['ip', 'addr', 'add', `${HOST_IP}/30`, 'dev', 'tkf9h'], ['ip', 'link', 'set', 'tkf9h', 'up'],
    ['ip', '-n', NS, 'addr', 'add', `${GATE_IP}/30`, 'dev', 'tkf9n'], ['ip', '-n', NS, 'link', 'set', 'tkf9n', 'up'],
  ]) await run(c[0], c.slice(1))
  mkdirSync(`/etc/netns/${NS}`, {recursive: true})
  writeFileSync(`/etc/netns/${NS}/hosts`, `127.0.0.1 localhost\n${HOST_IP} web.internal\n203.0.113.9 outside.internal\n`)
  writeFileSync(`/etc/netns/${NS}/resolv.conf`, 'nameserver 127.0.0.53\n')
  // The resolver that never answers: takes every query, replies to none.
  const hole = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', "require('dgram').createSocket('udp4').bind(53, '127.0.0.53'); require('net').createServer(() => {}).listen(53, '127.0.0.53')"], {stdio: 'ignore'})
  ctx.procs.push({child: hole, stdout: '', stderr: '', events: [], exited: new Promise((r) => hole.on('exit', r))})
  ctx.http = await listening(httpServer((req, res) => res.end(httpBody(req.url ?? '/'))), HOST_IP)
  ctx.pki = tmpDir('front-dns')
  const r = await runCli(['pki', 'init', '--dir', ctx.pki.dir, '--client', 'alice', '--san', GATE_IP])
  assert.is(r.code, 0, r.stderr)
  const ca = await loadCa(ctx.pki.dir)
  for (const cn of ['mallory', 'eve']) writePair(ctx.pki.dir, cn, await issue(ca, {cn, role: 'client'}))
  ctx.gate = tunkit(['gate', '--listen', `${GATE_IP}:4433`, '--pki-dir', ctx.pki.dir, '--json', '--allow', 'alice=*', '--allow', 'mallory=198.19.0.0/16:80'], {}, NS)
  ctx.procs.push(ctx.gate)
  await event(ctx.gate, 'listening')
})

t.after(async (ctx) => {
  for (const p of ctx.procs) await stop(p)
  ctx.http?.close()
  ctx.pki?.cleanup()
  await down()
})

async function portal(ctx: Ctx, who: string): Promise<Proc & {socks: number}> {
  const d = ctx.pki!.dir
  const cert = who === 'alice' ? [] : ['--cert', join(d, `${who}.crt`), '--key', join(d, `${who}.key`)]
  const p = tunkit(['portal', '--gate', `${GATE_IP}:4433`, '--pki-dir', d, '--json', '--socks', '127.0.0.1:0', ...cert])
  ctx.procs.push(p)
  await event(p, 'tunnel-up')
  return Object.assign(p, {socks: (await event(p, 'listening')).port as number})
}

/** `tunnels` of mallory's open 40 names each into the dead resolver; alice opens names meanwhile. */
async function starve(ctx: Ctx, tunnels: number): Promise<number[]> {
  const mallories = []
  for (let i = 0; i < tunnels; i++) mallories.push(await portal(ctx, 'mallory'))
  const alice = await portal(ctx, 'alice')
  let answered = 0
  const started = Date.now()
  const attack = mallories.flatMap((m, j) => Array.from({length: 40}, (_, i) => socksConnect(m.socks, `x${j}-${i}.nowhere.internal`, 80).then((r) => {
    // A refusal for the budget (1, general failure) comes at once: only the lookups count.
    if (r.rep !== 1) answered++
    r.socket.destroy()
    return r.rep
  })))
  // The attack is under way once the gate has taken mallory's lookups in.
  await new Promise((r) => setTimeout(r, 300))
  for (let i = 0; i < 5; i++) {
    const ok = await socksConnect(alice.socks, 'web.internal', ctx.http!.port)
    assert.is(ok.rep, 0)
    ok.socket.write('GET /name HTTP/1.0\r\n\r\n')
    const body = await new Promise<string>((r) => { let s = ''; ok.socket.on('data', (d) => (s += d)); ok.socket.on('end', () => r(s)) })
    assert.match(body, /hello from behind the gate: \/name/)
  }
  const aliceDone = Date.now() - started
  const before = answered
  const reps = await Promise.all(attack)
  console.log(`  ${tunnels} tunnel(s): alice's 5 opens by name done after ${aliceDone} ms with ${before}/${reps.length} of mallory's answered; all answered after ${Date.now() - started} ms`)
  assert.is(before, 0, 'alice was served while every attacking lookup still hung')
  return reps
}

t('40 opens by name into a dead resolver leave other identities\' opens by name unharmed', async (ctx) => {
  // A name only an address rule could allow, that does not resolve: answered as a denial.
  assert.equal([...new Set(await starve(ctx, 1))], [2])
})

t('the same from three tunnels of one identity: its lookup budget is per identity', async (ctx) => {
  const reps = await starve(ctx, 3)
  assert.ok(reps.every((r) => r === 2 || r === 1), String(reps))
  assert.ok(reps.filter((r) => r === 1).length > 0, 'beyond 4 running and 64 waiting, refused at once')
})

t('an identity no rule could allow gets the same answer for names that exist and names that do not, without a lookup', async (ctx) => {
  const eve = await portal(ctx, 'eve')
  const mallory = await portal(ctx, 'mallory')
  const ask = async (socks: number, host: string, port: number): Promise<number> => {
    const r = await socksConnect(socks, host, port)
    r.socket.destroy()
    return r.rep
  }
  // eve: no rule at all; mallory on port 22: her only rule is for port 80.
  const answers = [
    await ask(eve.socks, 'web.internal', 80), await ask(eve.socks, 'nope.nowhere.internal', 80),
    await ask(mallory.socks, 'web.internal', 22), await ask(mallory.socks, 'nope.nowhere.internal', 22),
    // Resolved, outside her range / not resolvable: both denials.
    await ask(mallory.socks, 'outside.internal', 80),
  ]
  // Before this fix, a name that exists was "denied" (2) and one that does not "not found" (4).
  assert.equal(answers, [2, 2, 2, 2, 2])
})

t.run()
