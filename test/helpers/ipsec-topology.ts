import {execFile} from 'node:child_process'
import {chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {suite, type Test} from 'uvu'
import {stop, tmpDir, tunkit, waitFor, type Proc} from './procs.js'
import {missing, unless} from './requires.js'

const run = promisify(execFile)

/**
 * Client, gateway and two private hosts in four namespaces, as the strongSwan lab has them (plus
 * a second protected subnet):
 *   P-c [P-c0 203.0.113.2] == [P-g0 203.0.113.1] P-g [P-g1 198.18.1.1] == [P-p0 198.18.1.10] P-p
 *                                                    [P-g2 198.18.9.1] == [P-q0 198.18.9.10] P-q
 * The gateway forwards, but nothing from its public side reaches the private nets in clear (nft),
 * so a ping from the client to 198.18.1.10 or 198.18.9.10 answers only through the tunnel.
 * Leftovers of a crashed run with the same prefix are removed first.
 */
export interface Topology {
  ns: {c: string; g: string; p: string; q: string}
  down(): Promise<void>
  /** Runs a command in a namespace; rejects with its output when it fails. */
  exec(ns: string, argv: string[], timeoutMs?: number): Promise<{stdout: string; stderr: string}>
}

export async function ipsecTopology(prefix: string): Promise<Topology> {
  const ns = {c: `${prefix}-c`, g: `${prefix}-g`, p: `${prefix}-p`, q: `${prefix}-q`}
  const down = async (): Promise<void> => {
    for (const n of Object.values(ns)) await run('ip', ['netns', 'del', n]).catch(() => {})
  }
  const ip = (args: string[]): Promise<unknown> => run('ip', args)
  await down()
  for (const n of Object.values(ns)) {
    await ip(['netns', 'add', n])
    await ip(['-n', n, 'link', 'set', 'lo', 'up'])
    await run('ip', ['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'])
  }
  const link = async (a: string, ifa: string, addrA: string, b: string, ifb: string, addrB: string): Promise<void> => {
    await ip(['link', 'add', ifa, 'netns', a, 'type', 'veth', 'peer', 'name', ifb, 'netns', b])
    await ip(['-n', a, 'addr', 'add', addrA, 'dev', ifa])
    await ip(['-n', b, 'addr', 'add', addrB, 'dev', ifb])
    await ip(['-n', a, 'link', 'set', ifa, 'up'])
    await ip(['-n', b, 'link', 'set', ifb, 'up'])
  }
  try {
    await link(ns.c, `${prefix}-c0`, '203.0.113.2/24', ns.g, `${prefix}-g0`, '203.0.113.1/24')
    await link(ns.g, `${prefix}-g1`, '198.18.1.1/24', ns.p, `${prefix}-p0`, '198.18.1.10/24')
    await link(ns.g, `${prefix}-g2`, '198.18.9.1/24', ns.q, `${prefix}-q0`, '198.18.9.10/24')
    await ip(['-n', ns.p, 'route', 'add', 'default', 'via', '198.18.1.1'])
    await ip(['-n', ns.q, 'route', 'add', 'default', 'via', '198.18.9.1'])
    await run('ip', ['netns', 'exec', ns.g, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    const nft = (...args: string[]): Promise<unknown> => run('ip', ['netns', 'exec', ns.g, 'nft', ...args])
    await nft('add', 'table', 'inet', 'tkfilter')
    await nft('add', 'chain', 'inet', 'tkfilter', 'forward', '{ type filter hook forward priority 0; }')
    await nft('add', 'rule', 'inet', 'tkfilter', 'forward', 'iifname', `${prefix}-g0`, 'drop')
    await nft('add', 'rule', 'inet', 'tkfilter', 'forward', 'oifname', `${prefix}-g0`, 'drop')
  } catch (e) {
    await down()
    throw e
  }
  return {
    ns,
    down,
    exec: (n, argv, timeoutMs = 30_000) => run('ip', ['netns', 'exec', n, ...argv], {timeout: timeoutMs, maxBuffer: 16 << 20}),
  }
}

/** What every tunkit ⇄ tunkit key-exchange test has: the namespaces, a directory, the processes it started. */
export interface KxCtx {
  /** The suite's prefix: namespaces `prefix`-c…, devices `prefix`-ct (client) and `prefix`-gt (gateway). */
  prefix?: string
  topo?: Topology
  dir?: {dir: string; cleanup(): void}
  procs: Proc[]
}

/**
 * A suite on its own topology (namespaces `prefix`-…): skipped without root and the tools; each
 * test's processes are stopped after it, the namespaces removed at the end.
 */
export function kxSuite(title: string, prefix: string): Test<KxCtx> {
  const t = unless(suite<KxCtx>(title, {procs: []}), missing(['/dev/net/tun', 'ip', 'nft']))
  t.before(async (ctx) => {
    ctx.prefix = prefix
    ctx.topo = await ipsecTopology(prefix)
    ctx.dir = tmpDir(prefix)
  })
  t.after.each(async (ctx) => {
    for (const p of ctx.procs.splice(0)) await stop(p)
  })
  t.after(async (ctx) => {
    await ctx.topo?.down()
    ctx.dir?.cleanup()
  })
  return t
}

/** `tunkit key-exchange ARGS` in namespace `ns` ('c' or 'g'), stopped after the test. */
export function kx(ctx: KxCtx, ns: 'c' | 'g', args: string[], env: Record<string, string> = {}): Proc {
  const p = tunkit(['key-exchange', ...args], env, ctx.topo!.ns[ns])
  ctx.procs.push(p)
  return p
}

export const PSK = 'tk-e2e-psk-7d1c0a'

/** A PSK gateway on 203.0.113.1 (pool 198.18.200.0/24, DNS 198.18.1.53) protecting 198.18.1.0/24 and any `--policy` in `args`, with --json. */
export function pskGateway(ctx: KxCtx, args: string[] = [], env: Record<string, string> = {}): Proc {
  return kx(ctx, 'g', ['--respond', '--listen', '203.0.113.1', '--psk-file', secretFile(ctx, 'gw.psk', `${PSK}\n`), '--pool', '198.18.200.0/24', '--dns', '198.18.1.53',
    '--policy', '198.18.1.0/24', '--dev', `${ctx.prefix}-gt`, '--json', ...args], env)
}

/** A PSK client of that gateway, as alice@tk.test unless `args` has --id, with --json unless it has --export. */
export function pskClient(ctx: KxCtx, o: {psk?: string; args?: string[]; env?: Record<string, string>} = {}): Proc {
  const args = o.args ?? []
  return kx(ctx, 'c', ['--gateway', '203.0.113.1', '--psk-file', secretFile(ctx, 'c.psk', `${o.psk ?? PSK}\n`), ...(args.includes('--id') ? [] : ['--id', 'alice@tk.test']),
    '--dev', `${ctx.prefix}-ct`, ...(args.includes('--export') ? [] : ['--json']), ...args], o.env)
}

/** Stops one of the test's processes before the test ends; its exit status. */
export async function stopNow(ctx: KxCtx, p: Proc): Promise<number | null> {
  ctx.procs.splice(ctx.procs.indexOf(p), 1)
  return stop(p)
}

/** Writes a file only we may read (a PSK or a key) into the test's directory; its path. */
export function secretFile(ctx: KxCtx, name: string, content: string | Buffer): string {
  const p = join(ctx.dir!.dir, name)
  writeFileSync(p, content, {mode: 0o600})
  chmodSync(p, 0o600)
  return p
}

/** The exit status of a process expected to exit by itself. */
export async function exited(p: Proc, ms?: number): Promise<number> {
  return (await waitFor(`exit\n--- stderr:\n${p.stderr}`, () => (p.child.exitCode !== null ? {code: p.child.exitCode} : undefined), ms)).code
}

/** The --trace lines of ESP packets under `spi` (hex), each as direction and sequence number and the line. */
export function espTrace(p: Proc, spi: string): {dir: 'in' | 'out'; seq: number; line: string}[] {
  const out: {dir: 'in' | 'out'; seq: number; line: string}[] = []
  for (const line of p.stderr.split('\n')) {
    const m = / (->|<-) \S+ ESP .*/.exec(line)
    if (!m || !line.includes(`spi=0x${spi}`)) continue
    out.push({dir: m[1] === '->' ? 'out' : 'in', seq: Number(/seq=(\d+)/.exec(line)?.[1] ?? NaN), line})
  }
  return out
}

/** The --trace lines of IKE messages of `exchange` (INFORMATIONAL, CREATE_CHILD_SA…): direction, request or response, line number in stderr. */
export function ikeTrace(p: Proc, exchange: string): {dir: 'in' | 'out'; kind: 'request' | 'response'; line: number}[] {
  const out: {dir: 'in' | 'out'; kind: 'request' | 'response'; line: number}[] = []
  p.stderr.split('\n').forEach((text, line) => {
    const m = new RegExp(` (->|<-) \\S+ ${exchange} (request|response) `).exec(text)
    if (m) out.push({dir: m[1] === '->' ? 'out' : 'in', kind: m[2] as 'request' | 'response', line})
  })
  return out
}
