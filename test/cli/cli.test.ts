import {execFile, spawn} from 'node:child_process'
import {statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, runCli, stop, tmpDir, tunkit, waitFor} from '../helpers/procs.js'
import {helloHttp} from '../helpers/servers.js'
import {lacking, unless} from '../helpers/requires.js'
import {makePki, startGate} from '../helpers/tunnel.js'

const run = promisify(execFile)
const t = suite<Record<string, any>>('CLI') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('cli')
})
t.after((ctx) => ctx.pki?.cleanup())

function oneLineError(r: {code: number | null; stderr: string}, flag: RegExp): void {
  assert.is(r.code, 2, `exit code 2, stderr: ${r.stderr}`)
  const lines = r.stderr.trim().split('\n')
  assert.is(lines.length, 1, `one line: ${r.stderr}`)
  assert.match(lines[0], flag)
  assert.not.match(r.stderr, /^\s+at /m, 'no stack trace')
}

t('bad flags: one line naming the flag, exit code 2', async (ctx) => {
  oneLineError(await runCli(['gate', '--listen', '127.0.0.1:70000', '--pki-dir', ctx.pki.dir]), /--listen: port "70000"/)
  oneLineError(await runCli(['gate', '--listen', '300.1.2.3:80', '--pki-dir', ctx.pki.dir]), /--listen: "300.1.2.3" is not a valid IPv4/)
  oneLineError(await runCli(['gate', '--cert', '/nonexistent/gate.crt', '--pki-dir', ctx.pki.dir]), /--cert: file not found/)
  oneLineError(await runCli(['portal', '--gate', '127.0.0.1:1', '-L', 'nonsense', '--pki-dir', ctx.pki.dir]), /-L: "nonsense"/)
  oneLineError(await runCli(['gate', '--allow', 'alice=198.18.0.0/99', '--pki-dir', ctx.pki.dir]), /--allow: .*198.18.0.0\/99/)
  oneLineError(await runCli(['gate', '--no-such-flag']), /no-such-flag/)
  oneLineError(await runCli(['gate', '--trace-format', 'xml']), /trace-format/)
})

t('a missing required value without a terminal is an error, not a prompt', async () => {
  oneLineError(await runCli(['portal']), /missing required flag --gate/)
})

t('--config supplies flags; the command line wins; unknown keys are refused', async (ctx) => {
  const {dir, cleanup} = tmpDir('cfg')
  try {
    const cfg = join(dir, 'gate.json')
    writeFileSync(cfg, JSON.stringify({'listen': '127.0.0.1:70000', 'pki-dir': ctx.pki.dir, 'allow': ['*=198.18.0.0/15']}))
    oneLineError(await runCli(['gate', '--config', cfg]), /--listen: port "70000"/)
    const g = tunkit(['gate', '--config', cfg, '--listen', '127.0.0.1:0', '--json'])
    const e = await event(g, 'listening')
    assert.ok((e.port as number) > 0)
    assert.match(g.stderr, /1 access rule/)
    assert.is(await stop(g, 'SIGINT'), 0, 'SIGINT stops cleanly with exit 0')
    writeFileSync(cfg, JSON.stringify({'lisen': 'x'}))
    oneLineError(await runCli(['gate', '--config', cfg]), /unknown flag "lisen"/)
  } finally {
    cleanup()
  }
})

t('--policy reads rules from a file, ignoring comments and blank lines; a bad rule names itself', async (ctx) => {
  const {dir, cleanup} = tmpDir('policy')
  try {
    const file = join(dir, 'policy')
    writeFileSync(file, '# who may go where\nalice=198.18.0.0/15:22\n\n*=intranet.example:443  # everyone\n')
    const g = tunkit(['gate', '--listen', '127.0.0.1:0', '--pki-dir', ctx.pki.dir, '--policy', file, '--json'])
    await event(g, 'listening')
    assert.match(g.stderr, /with 2 access rule\(s\)/)
    assert.is(await stop(g), 0)
    writeFileSync(file, 'alice=198.18.0.0/33\n')
    oneLineError(await runCli(['gate', '--pki-dir', ctx.pki.dir, '--policy', file]), /198\.18\.0\.0\/33/)
  } finally {
    cleanup()
  }
})

t('pki init writes keys 0600 and refuses to overwrite a CA', async (ctx) => {
  for (const k of ['ca.key', 'gate.key', 'client.key']) assert.is(statSync(join(ctx.pki.dir, k)).mode & 0o777, 0o600, k)
  oneLineError(await runCli(['pki', 'init', '--dir', ctx.pki.dir]), /already holds a CA/)
  const r = await runCli(['pki', 'issue', 'bob', '--dir', ctx.pki.dir])
  assert.is(r.code, 0, r.stderr)
  assert.is(statSync(join(ctx.pki.dir, 'bob.key')).mode & 0o777, 0o600)
})

t('man pages and completions match the oclif manifest', async () => {
  await run(process.execPath, ['scripts/gen-docs.mjs', '--check'])
})

t('--trace prints one line per frame, as text or JSON', async (ctx) => {
  const http = await helloHttp()
  const gate = await startGate(ctx.pki, ['--trace', '--trace-format', 'json'])
  const portal = tunkit(['portal', '--gate', `127.0.0.1:${gate.port}`, '--pki-dir', ctx.pki.dir, '--json', '--trace', '-L', `127.0.0.1:0:localhost:${http.port}`])
  try {
    const l = await event(portal, 'listening')
    await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${l.port}/`])
    await waitFor('trace lines', () => /<- \S+ UsherSend/.test(portal.stderr) && /"type":"UsherOpen"/.test(gate.stderr))
    // len: the message's bytes on the wire, its 8-byte header included (docs/events.md).
    assert.match(portal.stderr, /-> 127\.0\.0\.1:\d+ RELAY len=\d+ origin=\S+ path=127\.0\.0\.1:\d+/)
    assert.match(portal.stderr, /-> 127\.0\.0\.1:\d+ UsherOpen len=\d+ session=\d+ proto=tcp addr=localhost port=\d+/)
    assert.match(portal.stderr, /<- 127\.0\.0\.1:\d+ UsherOpenReply len=10 session=\d+ rc=\d+/)
    const open = gate.stderr.split('\n').filter((x) => x.startsWith('{')).map((x) => JSON.parse(x)).find((o) => o.type === 'UsherOpen')
    assert.is(open.dir, 'in')
    assert.is(open.addr, 'localhost')
    assert.is(open.port, http.port)
    assert.ok(open.time && typeof open.session === 'number')
    assert.match(open.peer, /^127\.0\.0\.1:\d+$/, 'peer is an address')
    assert.is(open.identity, 'alice', 'identity is its own field')
    assert.is(open.len, 8 + 6 + 'localhost'.length + 1, 'len counts header and body')
  } finally {
    await stop(portal)
    await stop(gate)
    http.close()
  }
})

// util-linux "script" gives the CLI a pseudo-terminal.
unless(t, lacking(['script']))('on a terminal a missing --gate is asked for with a prompt', async (ctx) => {
  const gate = await startGate(ctx.pki)
  const env: NodeJS.ProcessEnv = {...process.env, TUNKIT_PKI: ctx.pki.dir}
  delete env.CI
  const child = spawn('script', ['-qec', `${process.execPath} bin/run.js portal --socks 127.0.0.1:0 --json`, '/dev/null'], {env, stdio: ['pipe', 'pipe', 'pipe']})
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  try {
    await waitFor('prompt', () => out.includes('Gate address'))
    child.stdin.write(`127.0.0.1:${gate.port}\r`)
    await waitFor('tunnel through the prompted gate', () => out.includes('"event":"tunnel-up"'))
  } finally {
    child.kill('SIGTERM')
    child.stdin.end()
    await stop(gate)
  }
})

t.run()
