import {execFile} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../helpers/requires.js'
import {transfer} from '../helpers/xfer.js'
import {event, runCli, stop, tmpDir, tunkit, type Proc} from '../helpers/procs.js'

/**
 * The user story across five namespaces, with host names as a user would type them:
 * portal (P) -> relay-b (B) -> relay-c (C, group "gates") -> gate1 (G, VPN) -> LAN host (H).
 * Names resolve through /etc/netns/NS/hosts, which `ip netns exec` mounts over /etc/hosts.
 */
const run = promisify(execFile)
const [P, B, C, G, H] = ['tkc-p', 'tkc-b', 'tkc-c', 'tkc-g', 'tkc-h']
const HOSTS: Record<string, string> = {[P]: '203.0.113.2 relay-b.example', [B]: '198.51.100.2 relay-c.example', [C]: '203.0.113.18 gate1.example'}

async function down(): Promise<void> {
  for (const ns of [P, B, C, G, H]) {
    await run('ip', ['netns', 'del', ns]).catch(() => {})
    rmSync(`/etc/netns/${ns}`, {recursive: true, force: true})
  }
}

async function up(): Promise<void> {
  await down()
  const cmds: string[][] = []
  for (const ns of [P, B, C, G, H]) cmds.push(['ip', 'netns', 'add', ns], ['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
  const link = (a: string, aIf: string, aIp: string, b: string, bIf: string, bIp: string): void => {
    cmds.push(['ip', 'link', 'add', aIf, 'netns', a, 'type', 'veth', 'peer', 'name', bIf, 'netns', b])
    for (const [ns, dev, addr] of [[a, aIf, aIp], [b, bIf, bIp]]) cmds.push(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev], ['ip', '-n', ns, 'link', 'set', dev, 'up'])
  }
  link(P, 'tkc-p0', '203.0.113.1/28', B, 'tkc-b0', '203.0.113.2/28')
  link(B, 'tkc-b1', '198.51.100.1/28', C, 'tkc-c0', '198.51.100.2/28')
  link(C, 'tkc-c1', '203.0.113.17/28', G, 'tkc-g0', '203.0.113.18/28')
  link(G, 'tkc-g1', '198.18.20.1/24', H, 'tkc-h0', '198.18.20.5/24')
  cmds.push(['ip', '-n', H, 'route', 'add', '198.18.10.0/24', 'via', '198.18.20.1'], ['ip', 'netns', 'exec', G, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  for (const c of cmds) await run(c[0], c.slice(1))
  for (const [ns, line] of Object.entries(HOSTS)) {
    mkdirSync(`/etc/netns/${ns}`, {recursive: true})
    writeFileSync(`/etc/netns/${ns}/hosts`, `127.0.0.1 localhost\n${line}\n`)
  }
}

type Ctx = {procs: Proc[]; portal?: Proc; relayB?: Proc; relayC?: Proc; pki?: {dir: string; cleanup(): void}}
const t = unless(suite<Ctx>('VPN through a relay chain: portal -> relay -> relay -> gate -> LAN host (five namespaces)', {procs: []}), missing(['/dev/net/tun', 'ip', 'ping']))

const setUp = async (ctx: Ctx): Promise<void> => {
  await up()
  ctx.pki = tmpDir('chain')
  const dir = ctx.pki.dir
  const r = await runCli(['pki', 'init', '--dir', dir, '--client', 'alice', '--san', 'gate1.example'])
  assert.is(r.code, 0, r.stderr)
  const start = async (args: string[], ns: string, ready: string): Promise<Proc> => {
    const p = tunkit([...args, '--json'], {}, ns)
    ctx.procs.push(p)
    await event(p, ready)
    return p
  }
  await start(['gate', '--listen', '203.0.113.18:4433', '--pki-dir', dir, '--vpn', '--pool', '198.18.10.0/24', '--route', '198.18.20.0/24', '--dev', 'tkc-tun1'], G, 'listening')
  ctx.relayC = await start(['relay', '--listen', '198.51.100.2:4500', '--name', 'relay-c.example', '--group', 'gates=gate1.example:4433'], C, 'listening')
  ctx.relayB = await start(['relay', '--listen', '203.0.113.2:4500', '--name', 'relay-b.example', '--allow-next', 'relay-c.example'], B, 'listening')
  ctx.portal = await start(['portal', '--via', 'relay-b.example:4500,relay-c.example:4500', '--gate', 'group:gates', '--pki-dir', dir, '--vpn', '--dev', 'tkc-tun0'], P, 'tunnel-up')
}

t.before(async (ctx) => {
  try {
    await setUp(ctx)
  } catch (e) {
    // uvu does not report errors thrown by hooks: say it here, then fail the suite.
    console.error(`relay-chain VPN set-up failed: ${(e as Error).stack}\n${ctx.procs.map((p) => p.stderr).join('\n')}`)
    throw e
  }
})

t.after(async (ctx) => {
  for (const p of ctx.procs.reverse()) await stop(p)
  await down()
  ctx.pki?.cleanup()
})

t('each relay forwarded the tunnel by name, and relay-c chose gate1 from its group', (ctx) => {
  assert.ok(ctx.relayB!.events.some((e) => e.event === 'tunnel-up' && String(e.next).startsWith('relay-c.example')), ctx.relayB!.stdout)
  assert.ok(ctx.relayC!.events.some((e) => e.event === 'tunnel-up' && e.gate === 'gate1.example:4433'), ctx.relayC!.stdout)
})

t('ping from the portal host reaches the LAN host behind the gate', async () => {
  const r = await run('ip', ['netns', 'exec', P, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '198.18.20.5'])
  assert.match(r.stdout, /5 packets transmitted, 5 received/)
})

t('a 50 MB TCP transfer from the portal host to the LAN host arrives intact (SHA-256)', async () => {
  const {sent, reply} = await transfer(P, H, '198.18.20.5', 5001, 50)
  assert.is(reply, sent)
})

t.run()
