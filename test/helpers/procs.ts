import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {createServer, type AddressInfo} from 'node:net'

export const BIN = resolve('bin/run.js')
/** The node flags of bin/run.js's `#!/usr/bin/env -S node …` line: the CLI runs as an installed one would. */
export const NODE_FLAGS = /^#!.*\bnode((?: --[\w-]+(?:=\S+)?)*)\s*$/m.exec(readFileSync(BIN, 'utf8').split('\n')[0])?.[1].trim().split(' ').filter(Boolean) ?? []

export interface Proc {
  child: ChildProcess
  stdout: string
  stderr: string
  events: Record<string, unknown>[]
  exited: Promise<number | null>
}

const running = new Set<ChildProcess>()

/**
 * Start the real CLI (inside network namespace `netns` if given: `ip netns exec` execs node in
 * place, so the PID is node's; so must `wrap`, a command that execs the rest of its argv);
 * stdout JSON lines are collected as events.
 */
export function tunkit(args: string[], env: Record<string, string> = {}, netns?: string, wrap: string[] = []): Proc {
  // TK_TEST_DATA_PATH=native runs whole suites over the native data path (gate and portal both offer it).
  const dataPath = process.env.TK_TEST_DATA_PATH
  if (dataPath && (args[0] === 'gate' || args[0] === 'portal') && !args.includes('--data-path') && !args.includes('-h') && !args.includes('--help')) args = [...args, '--data-path', dataPath]
  const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, ...wrap, process.execPath, ...NODE_FLAGS, BIN, ...args]] : [process.execPath, [...NODE_FLAGS, BIN, ...args]]
  const child = spawn(cmd, argv, {env: {...process.env, NO_COLOR: '1', CI: '1', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  running.add(child)
  const p: Proc = {child, stdout: '', stderr: '', events: [], exited: new Promise((r) => child.on('exit', (c) => { running.delete(child); r(c) }))}
  let line = ''
  child.stdout!.on('data', (d: Buffer) => {
    p.stdout += d
    line += d
    let i
    while ((i = line.indexOf('\n')) >= 0) {
      const l = line.slice(0, i)
      line = line.slice(i + 1)
      try { p.events.push(JSON.parse(l)) } catch { /* not JSON */ }
    }
  })
  child.stderr!.on('data', (d: Buffer) => (p.stderr += d))
  return p
}

/** Polls `fn` until it gives a value; `ms` only bounds a hang, it is no speed requirement. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export function event(p: Proc, name: string, pred: (e: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
  return waitFor(`event ${name}\n--- stderr:\n${p.stderr}`, () => p.events.find((e) => e.event === name && pred(e)))
}

/** Stop a process we started, by PID, and wait for it. */
export async function stop(p: Proc, sig: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(sig)
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5000)
  const code = await p.exited
  clearTimeout(t)
  return code
}

export function killAll(): void {
  for (const c of running) c.kill('SIGKILL')
}
process.on('exit', killAll)

export function tmpDir(tag: string): {dir: string; cleanup: () => void} {
  const dir = mkdtempSync(join(tmpdir(), `tk-${tag}-`))
  return {dir, cleanup: () => rmSync(dir, {recursive: true, force: true})}
}

export function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address() as AddressInfo
      s.close(() => res(port))
    })
  })
}

export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{code: number | null; stdout: string; stderr: string}> {
  const p = tunkit(args, env)
  const t = setTimeout(() => p.child.kill('SIGKILL'), 20000)
  const code = await p.exited
  clearTimeout(t)
  return {code, stdout: p.stdout, stderr: p.stderr}
}
