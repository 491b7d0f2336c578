import {spawn} from 'node:child_process'
import {chmodSync, copyFileSync, existsSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {BIN, event, freePort, runCli, stop, tmpDir, tunkit, waitFor} from '../helpers/procs.js'
import {makePki, startGate, type Pki} from '../helpers/tunnel.js'

// Issue 10 item 3: what no retry can fix ends the command at once, exit 1, one line naming the
// file and the cause; only what can heal (refused, unreachable, timed out) is retried.

const t = suite<Record<string, any>>('fail fast, retry what can heal') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('fail', 'alice') as Pki
  ctx.other = await makePki('fail-other', 'bob') as Pki
})

t.after((ctx) => {
  ctx.pki?.cleanup()
  ctx.other?.cleanup()
})

/**
 * Exit 1 (not retried: runCli kills a process still running after 20 s, and a killed one has no
 * exit code), one line on stderr matching `line`, and the --json error event's code.
 */
async function failsAtOnce(args: string[], line: RegExp, code: string): Promise<void> {
  const r = await runCli([...args, '--json'])
  assert.is(r.code, 1, `exit 1: ${r.stderr}`)
  const lines = r.stderr.trim().split('\n')
  assert.is(lines.length, 1, `one line: ${r.stderr}`)
  assert.match(lines[0], line)
  assert.match(r.stdout, new RegExp(`"event":"error".*"code":"${code}"`))
}

t('gate: a key of another certificate, a client certificate, a CA key or a leaf as --ca: exit 1 naming the file', async (ctx) => {
  const d = ctx.pki.dir
  const gate = (...extra: string[]): string[] => ['gate', '--listen', '127.0.0.1:0', '--pki-dir', d, ...extra]
  await failsAtOnce(gate('--key', join(ctx.other.dir, 'gate.key')), /--key: \S+gate\.key is not the key of the certificate \S+gate\.crt/, 'TK_TLS_CONFIG')
  await failsAtOnce(gate('--cert', join(d, 'client.crt'), '--key', join(d, 'client.key')), /--cert: \S+client\.crt is not for a gate \(TLS server\): its extended key usage lacks serverAuth/, 'TK_TLS_CONFIG')
  await failsAtOnce(gate('--ca', join(d, 'ca.key')), /--ca: \S+ca\.key holds a private key/, 'TK_TLS_CONFIG')
  await failsAtOnce(gate('--ca', join(d, 'gate.crt')), /--ca: \S+gate\.crt holds a certificate that is not a CA/, 'TK_TLS_CONFIG')
  await failsAtOnce(gate('--cert', join(d, 'ca.crt'), '--key', join(d, 'ca.key')), /--cert: \S+ca\.crt is a CA certificate/, 'TK_TLS_CONFIG')
})

t('portal: a gate certificate, or a key of another certificate, exits 1 before dialling', async (ctx) => {
  // Port 1 refuses: were the files not checked first, the portal would retry for ever.
  const d = ctx.pki.dir
  const portal = (...extra: string[]): string[] => ['portal', '--gate', '127.0.0.1:1', '--socks', '127.0.0.1:0', '--pki-dir', d, ...extra]
  await failsAtOnce(portal('--cert', join(d, 'gate.crt'), '--key', join(d, 'gate.key')), /--cert: \S+gate\.crt is not for a portal \(TLS client\): its extended key usage lacks clientAuth/, 'TK_TLS_CONFIG')
  await failsAtOnce(portal('--key', join(ctx.other.dir, 'client.key')), /--key: \S+client\.key is not the key of the certificate/, 'TK_TLS_CONFIG')
})

t('pki issue with a CA key that is not the CA certificate\'s: refused, nothing issued', async (ctx) => {
  const {dir, cleanup} = tmpDir('ca-pair')
  try {
    copyFileSync(join(ctx.pki.dir, 'ca.crt'), join(dir, 'ca.crt'))
    copyFileSync(join(ctx.other.dir, 'ca.key'), join(dir, 'ca.key'))
    const r = await runCli(['pki', 'issue', 'carol', '--dir', dir])
    assert.is(r.code, 2, r.stderr)
    assert.match(r.stderr, /^tunkit pki[ :]issue: error: --dir: \S+ca\.key is not the key of the CA certificate \S+ca\.crt\n$/)
    assert.not.ok(existsSync(join(dir, 'carol.crt')))
  } finally {
    cleanup()
  }
})

t('an unreadable key is "permission denied", not "file not found" (exit 1)', async (ctx) => {
  const {dir, cleanup} = tmpDir('eacces')
  try {
    for (const f of ['gate.crt', 'gate.key', 'ca.crt']) copyFileSync(join(ctx.pki.dir, f), join(dir, f))
    chmodSync(dir, 0o755)
    chmodSync(join(dir, 'gate.crt'), 0o644)
    chmodSync(join(dir, 'ca.crt'), 0o644)
    const args = [BIN, 'gate', '--listen', '127.0.0.1:0', '--pki-dir', dir]
    chmodSync(join(dir, 'gate.key'), 0)
    // Root reads any file through CAP_DAC_OVERRIDE: drop it (and DAC_READ_SEARCH) from the bounding
    // set, so root stays root and can still read the checkout wherever it lives.
    const asRoot = process.getuid?.() === 0
    const [cmd, argv] = asRoot ? ['setpriv', ['--bounding-set', '-dac_override,-dac_read_search', process.execPath, ...args]] : [process.execPath, args]
    const child = spawn(cmd, argv, {env: {PATH: process.env.PATH ?? '', HOME: '/nonexistent', NO_COLOR: '1', CI: '1'}, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr!.on('data', (b: Buffer) => (stderr += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000)
    const code = await new Promise((r) => child.on('exit', r))
    clearTimeout(timer)
    assert.is(code, 1, stderr)
    assert.match(stderr, /^tunkit gate: error: --key: \S+gate\.key cannot be read: permission denied \(EACCES\)\n$/, stderr)
  } finally {
    cleanup()
  }
})

t('a key others may read: a warning naming the mode, and the gate runs', async (ctx) => {
  const {dir, cleanup} = tmpDir('mode')
  try {
    for (const f of ['gate.crt', 'gate.key', 'ca.crt']) copyFileSync(join(ctx.pki.dir, f), join(dir, f))
    chmodSync(join(dir, 'gate.key'), 0o644)
    const g = await startGate({dir, cleanup})
    assert.match(g.stderr, /warn +--key: \S+gate\.key is readable by every user \(mode 644\); chmod 600 it/)
    assert.is(await stop(g), 0)
  } finally {
    cleanup()
  }
})

t('--retries 3 against a refused port: three attempts, then exit 1 with the last cause', async (ctx) => {
  const port = await freePort()
  const r = await runCli(['portal', '--gate', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--retries', '3', '--backoff-max', '0.1'])
  assert.is(r.code, 1, r.stderr)
  assert.is((r.stderr.match(/ECONNREFUSED; retrying/g) ?? []).length, 2, r.stderr)
  assert.match(r.stderr, new RegExp(`error: cannot open a tunnel to 127\\.0\\.0\\.1:${port}: connect to 127\\.0\\.0\\.1:${port}: ECONNREFUSED \\(3 attempts failed in a row, --retries 3\\)\\n$`))
})

t('after a tunnel was up, a gate of another CA on its address ends the portal at once (exit 1), not retried', async (ctx) => {
  const g1 = await startGate(ctx.pki)
  const port = g1.port
  const p = tunkit(['portal', '--gate', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--json', '--backoff-max', '0.2'])
  let g2
  try {
    await event(p, 'tunnel-up')
    await stop(g1)
    g2 = await startGate(ctx.other, [], `127.0.0.1:${port}`)
    const code = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('still running'), 10000))])
    assert.is(code, 1, p.stderr)
    assert.match(p.stderr, /error: cannot open a tunnel to 127\.0\.0\.1:\d+: gate certificate rejected: .*\(SELF_SIGNED_CERT_IN_CHAIN\)\n$/)
    assert.match(p.stdout, /"event":"error".*"code":"TK_TLS_UNKNOWN_CA"/)
  } finally {
    await stop(p)
    if (g2) await stop(g2)
  }
})

t('a refused port is retried until the gate appears, then the tunnel comes up', async (ctx) => {
  const port = await freePort()
  const p = tunkit(['portal', '--gate', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--json', '--backoff-max', '0.3'])
  let g
  try {
    await waitFor('two refused attempts', () => (p.stderr.match(/ECONNREFUSED; retrying/g) ?? []).length >= 2)
    g = await startGate(ctx.pki, [], `127.0.0.1:${port}`)
    await event(p, 'tunnel-up')
  } finally {
    assert.is(await stop(p), 0)
    if (g) await stop(g)
  }
})

t.run()
