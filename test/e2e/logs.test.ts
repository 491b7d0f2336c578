import {execFile, spawnSync} from 'node:child_process'
import {createServer} from 'node:net'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, freePort, runCli, stop, tunkit, waitFor} from '../helpers/procs.js'
import {helloHttp, httpBody, listening, udpAsk, udpEcho} from '../helpers/servers.js'
import {lacking} from '../helpers/requires.js'
import {makePki, startGate, startPortal} from '../helpers/tunnel.js'

const run = promisify(execFile)
const t = suite<Record<string, any>>('logs and events') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('logs')
})
t.after((ctx) => ctx.pki?.cleanup())

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /
const curl = (port: number, path = '/'): Promise<{stdout: string}> => run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${port}${path}`])

/** Every line of `text` parsed as JSON; fails naming the first line that is not. */
function jsonLines(text: string, what: string): Record<string, unknown>[] {
  return text.split('\n').filter((l) => l !== '').map((l) => {
    try {
      return JSON.parse(l)
    } catch {
      return assert.unreachable(`${what}: not a JSON line: ${l}`)
    }
  })
}

/** stdout is only JSON lines, and the last one is the error event the exit status agrees with. */
function errorEvent(r: {code: number | null; stdout: string; stderr: string}, code: string, exit: number): Record<string, unknown> {
  assert.is(r.code, exit, r.stderr)
  const lines = jsonLines(r.stdout, 'stdout')
  const last = lines[lines.length - 1]
  assert.ok(last, `an error event on stdout; stderr: ${r.stderr}`)
  assert.is(last.event, 'error')
  assert.is(last.code, code)
  assert.is(last.exit, exit)
  assert.ok(typeof last.time === 'string' && ISO.test(`${last.time} `))
  assert.ok(r.stderr.includes(last.message as string), 'the same message as on stderr')
  return last
}

t('--json: a fatal error before or after parsing is an error event on stdout', async (ctx) => {
  // Parsing failed: there is no logger yet, the command line says --json.
  errorEvent(await runCli(['gate', '--listen', '127.0.0.1:70000', '--json']), 'TK_USAGE', 2)
  errorEvent(await runCli(['gate', '--no-such-flag', '--json']), 'TK_USAGE', 2)
  // A run-time failure: something that is not a gate answers (fatal on the first tunnel).
  const ssh = await listening(createServer((s) => s.end('SSH-2.0-OpenSSH_9.6\r\n')))
  try {
    const e = errorEvent(await runCli(['portal', '--gate', `127.0.0.1:${ssh.port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--json']), 'TK_NOT_A_GATE', 1)
    assert.match(e.message as string, /not a tunkit gate/)
  } finally {
    ssh.close()
  }
  // Without --json stdout stays empty.
  const r = await runCli(['gate', '--listen', '127.0.0.1:70000'])
  assert.is(r.stdout, '')
})

t('--json: each reconnect wait of the portal is a retry event', async (ctx) => {
  const port = await freePort()
  const p = tunkit(['portal', '--gate', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--json', '--backoff-max', '1'])
  try {
    await waitFor('two retry events', () => p.events.filter((e) => e.event === 'retry').length >= 2)
    const [a, b] = p.events.filter((e) => e.event === 'retry')
    assert.is(a.gate, `127.0.0.1:${port}`)
    assert.is(a.code, 'TK_CONNECT_REFUSED')
    assert.is(a.attempt, 1)
    assert.is(b.attempt, 2)
    assert.ok(typeof a.delay === 'number' && a.delay > 0 && a.delay <= 1)
    assert.match(a.reason as string, /ECONNREFUSED|refused/)
  } finally {
    await stop(p)
  }
})

t('--log-format json: every stderr line of a gate and portal run is JSON, logs and trace alike', async (ctx) => {
  const http = await helloHttp()
  const gate = await startGate(ctx.pki, ['--log-format', 'json', '--trace', '-v'])
  const portal = await startPortal(ctx.pki, gate.port, ['--log-format', 'json', '--trace', '--trace-format', 'json', '-L', `127.0.0.1:0:localhost:${http.port}`], 1)
  try {
    assert.is((await curl(portal.ports.local)).stdout, httpBody('/'))
    await waitFor('the audit line', () => gate.stderr.includes('"session: alice'))
  } finally {
    await stop(portal)
    await stop(gate)
    http.close()
  }
  for (const [name, p] of [['gate', gate], ['portal', portal]] as const) {
    const lines = jsonLines(p.stderr, `${name} stderr`)
    const logs = lines.filter((l) => 'level' in l)
    const traces = lines.filter((l) => 'type' in l && 'dir' in l)
    assert.is(logs.length + traces.length, lines.length, `${name}: each line a log line or a trace record`)
    assert.ok(logs.some((l) => l.level === 'info' && typeof l.message === 'string' && ISO.test(`${l.time} `)), `${name}: info lines`)
    assert.ok(traces.some((l) => l.type === 'UsherOpen'), `${name}: trace records`)
  }
  const debug = jsonLines(gate.stderr, 'gate').filter((l) => l.level === 'debug')
  assert.ok(debug.length > 0, 'gate -v: debug lines, as JSON too')
  if (!lacking(['jq'])) {
    for (const p of [gate, portal]) {
      const jq = spawnSync('jq', ['-e', '.time'], {input: p.stderr, encoding: 'utf8'})
      assert.is(jq.status, 0, `jq reads every line: ${jq.stderr}`)
    }
  }
})

t('text log lines start with the UTC time; --log-time none leaves it out', async (ctx) => {
  const a = await startGate(ctx.pki)
  const b = await startGate(ctx.pki, ['--log-time', 'none'])
  await stop(a)
  await stop(b)
  const lines = (s: string): string[] => s.trim().split('\n')
  assert.ok(lines(a.stderr).length > 0)
  for (const l of lines(a.stderr)) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn |info |debug) /)
  for (const l of lines(b.stderr)) assert.match(l, /^(error|warn |info |debug) /)
})

t('the gate logs one audit line per forwarded connection: TCP, UDP and -R, with identity, source, target, bytes and reason', async (ctx) => {
  const http = await helloHttp()
  const echo = await udpEcho()
  const gate = await startGate(ctx.pki)
  const portal = await startPortal(ctx.pki, gate.port, ['-L', `127.0.0.1:0:localhost:${http.port}`, '-U', `127.0.0.1:0:127.0.0.1:${echo.port}`, '-R', `0:127.0.0.1:${http.port}`], 2)
  try {
    const up = await event(portal, 'tunnel-up')
    const remotePort = (up.remoteForwards as {port: number}[])[0].port
    const body = (await curl(portal.ports.local, '/via-L')).stdout
    assert.is(body, httpBody('/via-L'))
    assert.is((await udpAsk(portal.ports.udp, Buffer.from('ping'))).toString(), 'echo:ping')
    assert.is((await curl(remotePort, '/via-R')).stdout, httpBody('/via-R'))
    await waitFor('TCP and -R audit events', () => gate.events.filter((e) => e.event === 'session-closed').length >= 2)
    await stop(portal) // ends the UDP session too
    await waitFor('UDP audit event', () => gate.events.some((e) => e.event === 'session-closed' && e.protocol === 'udp'))
  } finally {
    await stop(portal)
    await stop(gate)
    http.close()
    echo.close()
  }
  const closed = gate.events.filter((e) => e.event === 'session-closed')
  const tcp = closed.find((e) => e.kind === 'open' && e.protocol === 'tcp')!
  assert.ok(tcp, JSON.stringify(closed))
  assert.is(tcp.identity, 'alice')
  assert.match(tcp.peer as string, /^127\.0\.0\.1:\d+$/)
  assert.is(tcp.target, `localhost:${http.port}`)
  assert.match(tcp.address as string, new RegExp(`^(127\\.0\\.0\\.1|\\[::1\\]):${http.port}$`))
  assert.ok((tcp.bytesOut as number) > 40, 'the request went up')
  assert.ok((tcp.bytesBack as number) >= httpBody('/via-L').length, 'the response came back')
  assert.ok(typeof tcp.seconds === 'number' && typeof tcp.reason === 'string')
  const udp = closed.find((e) => e.protocol === 'udp')!
  assert.is(udp.target, `127.0.0.1:${echo.port}`)
  assert.is(udp.bytesOut, 4)
  assert.is(udp.bytesBack, 'echo:ping'.length)
  const remote = closed.find((e) => e.kind === 'remote')!
  assert.ok(remote, JSON.stringify(closed))
  assert.match(remote.from as string, /^127\.0\.0\.1:\d+$/, 'who connected to the -R listener')
  assert.match(remote.target as string, new RegExp(`:${(remote.target as string).split(':').pop()}$`))
  assert.ok((remote.bytesBack as number) > 40 && (remote.bytesOut as number) >= httpBody('/via-R').length, 'request to the portal, response from it')
  // The same on stderr, as one info line each.
  assert.match(gate.stderr, new RegExp(`info  session: alice from 127\\.0\\.0\\.1:\\d+: tcp localhost:${http.port} \\(\\S+\\) closed after \\d+\\.\\d s, \\d+ bytes out, \\d+ back: `))
  assert.match(gate.stderr, new RegExp(`info  session: alice from 127\\.0\\.0\\.1:\\d+: udp 127\\.0\\.0\\.1:${echo.port} closed after .* 4 bytes out, 9 back: `))
  assert.match(gate.stderr, /info  session: alice from 127\.0\.0\.1:\d+: -R \S+ from 127\.0\.0\.1:\d+ closed after /)
})

t('repeated audit lines beyond the burst are counted, not dropped silently; every event is kept', async (ctx) => {
  const http = await helloHttp()
  const gate = await startGate(ctx.pki)
  const portal = await startPortal(ctx.pki, gate.port, ['-L', `127.0.0.1:0:localhost:${http.port}`], 1)
  const n = 14
  try {
    for (let i = 0; i < n; i++) await curl(portal.ports.local)
    await waitFor(`${n} audit events`, () => gate.events.filter((e) => e.event === 'session-closed').length >= n)
  } finally {
    await stop(portal)
    await stop(gate)
    http.close()
  }
  const lines = gate.stderr.split('\n').filter((l) => l.includes('info  session: alice'))
  // The summariser's burst (lib/log.ts REPEAT_LIMIT) is 10 lines a key per 10 s; the count of
  // the rest is printed when the interval ends, or at exit.
  assert.is(lines.length, 11, gate.stderr)
  assert.match(lines[10], new RegExp(`… \\(${n - 10} more suppressed\\)$`))
})

t('-v logs the handshake steps and each open with its policy decision; -vv adds the trace', async (ctx) => {
  const http = await helloHttp()
  const gate = await startGate(ctx.pki, ['-v', '--allow', `alice=localhost:${http.port}`])
  const portal = await startPortal(ctx.pki, gate.port, ['-vv', '-L', `127.0.0.1:0:localhost:${http.port}`, '-L', '127.0.0.1:0:localhost:1'], 2)
  try {
    await curl(portal.ports.local)
    await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${portal.ports.local1}/`]).catch(() => undefined)
    await waitFor('the denial', () => /denied: alice/.test(gate.stderr))
  } finally {
    await stop(portal)
    await stop(gate)
    http.close()
  }
  assert.match(gate.stderr, /debug 127\.0\.0\.1:\d+: RELAY from \S+, path 127\.0\.0\.1:\d+; TLS handshake/)
  assert.match(gate.stderr, /debug 127\.0\.0\.1:\d+ \(\S+\): TLS up \(TLSv1\.3 \S+\), client certificate "alice"/)
  assert.match(gate.stderr, /debug 127\.0\.0\.1:\d+: REQUEST from alice: 0 remote forward\(s\), early data/)
  assert.match(gate.stderr, new RegExp(`debug open tcp localhost:${http.port} for alice from 127\\.0\\.0\\.1:\\d+: allowed by a name rule`))
  assert.match(gate.stderr, /warn  denied: alice from 127\.0\.0\.1:\d+ asked for tcp localhost:1/)
  assert.not.match(gate.stderr, / -> \S+ RELAY /, '-v alone: no trace')
  assert.match(portal.stderr, /debug tunnel: connecting to 127\.0\.0\.1:\d+/)
  assert.match(portal.stderr, /debug tunnel: TLS up with 127\.0\.0\.1:\d+; sent REQUEST/)
  assert.match(portal.stderr, /debug -L 127\.0\.0\.1:\d+ → localhost:\d+: connection from 127\.0\.0\.1:\d+/)
  assert.match(portal.stderr, /-> 127\.0\.0\.1:\d+ RELAY len=\d+/, '-vv: the trace')
})

t.run()
