import {spawn} from 'node:child_process'
import {createSocket} from 'node:dgram'
import {readFileSync} from 'node:fs'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {BIN, event, freePort, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {blackHole} from '../helpers/servers.js'
import {lacking, unless} from '../helpers/requires.js'
import {makePki, startGate, startPortal, type Pki} from '../helpers/tunnel.js'

// Issue 10 item 4: SIGINT and SIGTERM end every command with 0 and "stopped on SIGNAL", at each
// stage (before the first tunnel, during backoff, while up), in bounded time and with one signal.

const t = suite<Record<string, any>>('SIGINT and SIGTERM: exit 0 at any stage') // eslint-disable-line @typescript-eslint/no-explicit-any

/** How long one signal may take to end a command before the test calls it hung (a hang bound, not a
 * timing claim: the command's own grace is 1.5 s, and no second signal is ever sent). */
const HANG_MS = 10_000

t.before(async (ctx) => {
  ctx.pki = await makePki('signals') as Pki
})

t.after((ctx) => ctx.pki?.cleanup())

/** Sends `sig` once; asserts exit 0 without a second signal and the "stopped on" line. */
async function endsWith0(p: Proc, sig: NodeJS.Signals): Promise<void> {
  const t0 = Date.now()
  p.child.kill(sig)
  const code = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('still running'), HANG_MS))])
  if (code === 'still running') p.child.kill('SIGKILL')
  assert.is(code, 0, `exit 0 on ${sig} (${Date.now() - t0} ms): ${p.stderr}`)
  assert.match(p.stderr, new RegExp(`info +stopped on ${sig}\\n$`))
}

/**
 * bin/run.js has run its first lines and is loading the modules: libuv's pool (16 threads, set
 * there) starts with the first import, after the signal handlers are in place.
 */
const loading = (p: Proc): boolean => {
  try {
    return Number(readFileSync(`/proc/${p.child.pid}/status`, 'utf8').match(/^Threads:\s*(\d+)/m)?.[1]) >= 16
  } catch {
    return false
  }
}

t('gate and portal while their modules still load (long before a listener or a tunnel): exit 0', async (ctx) => {
  for (const [args, sig] of [[['gate', '--listen', '127.0.0.1:0', '--pki-dir', ctx.pki.dir, '--json'], 'SIGINT'], [['portal', '--gate', '127.0.0.1:1', '--pki-dir', ctx.pki.dir, '--json'], 'SIGTERM']] as const) {
    const p = tunkit([...args])
    await waitFor('bin/run.js loading the modules', () => loading(p), 5000)
    await endsWith0(p, sig)
    assert.not.match(p.stdout, /"event":"listening"/)
  }
})

t('gate: while listening (SIGINT) and with a tunnel up (SIGTERM)', async (ctx) => {
  await endsWith0(await startGate(ctx.pki), 'SIGINT')
  const g = await startGate(ctx.pki)
  const p = await startPortal(ctx.pki, g.port, ['--socks', '127.0.0.1:0'], 1)
  await event(g, 'tunnel-up')
  await endsWith0(g, 'SIGTERM')
  await endsWith0(p, 'SIGINT')
})

t('portal before its first tunnel: waiting for the answer to RELAY from a silent listener', async (ctx) => {
  const silent = await blackHole()
  const p = tunkit(['portal', '--gate', `127.0.0.1:${silent.port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--log-level', 'debug'])
  try {
    await waitFor('RELAY sent', () => /sent RELAY/.test(p.stderr))
    await endsWith0(p, 'SIGTERM')
  } finally {
    silent.close()
  }
})

t('portal during reconnect backoff (SIGINT), and while its tunnel is up (SIGTERM)', async (ctx) => {
  const port = await freePort()
  const p = tunkit(['portal', '--gate', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--backoff-max', '30'])
  await waitFor('a retry scheduled', () => /ECONNREFUSED; retrying in/.test(p.stderr))
  await endsWith0(p, 'SIGINT')
  const g = await startGate(ctx.pki)
  const up = await startPortal(ctx.pki, g.port, ['--socks', '127.0.0.1:0'], 1)
  await endsWith0(up, 'SIGTERM')
  await endsWith0(g, 'SIGINT')
})

t('relay and nat-discover --serve while listening', async () => {
  const r = tunkit(['relay', '--listen', '127.0.0.1:0', '--name', 'tk-sig-relay', '--json'])
  await event(r, 'listening')
  await endsWith0(r, 'SIGTERM')
  const s = tunkit(['nat-discover', '--serve', '--listen', '127.0.0.1:0', '--json'])
  await event(s, 'listening')
  await endsWith0(s, 'SIGINT')
})

t('nat-discover client in the middle of its probes (the server never answers)', async () => {
  const mute = createSocket('udp4')
  await new Promise<void>((r) => mute.bind(0, '127.0.0.1', r))
  const c = tunkit(['nat-discover', '--server', `127.0.0.1:${mute.address().port}`, '--trace'])
  try {
    await waitFor('a Binding request sent', () => /Binding request/.test(c.stderr))
    await endsWith0(c, 'SIGTERM')
  } finally {
    mute.close()
  }
})

const tty = unless(t, lacking(['script']))
tty('relay asking for --name on a terminal: Ctrl-C ends it with 0, no second key needed', async () => {
  const env: Record<string, string> = {...process.env as Record<string, string>, NO_COLOR: '1'}
  delete env.CI
  // script(1) gives the relay a terminal; Ctrl-C typed into it reaches the prompt as a key.
  const child = spawn('script', ['-qec', `${process.execPath} ${BIN} relay --listen 127.0.0.1:0`, '/dev/null'], {env, stdio: ['pipe', 'pipe', 'pipe']})
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  const exited = new Promise((r) => child.on('exit', r))
  try {
    await waitFor('the prompt', () => /This relay's name/.test(out))
    child.stdin!.write('\x03')
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), HANG_MS))])
    assert.is(code, 0, out)
    assert.match(out, /stopped on SIGINT/)
  } finally {
    child.kill('SIGKILL')
  }
})

t.run()
