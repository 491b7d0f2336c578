import {connect as tlsConnect} from 'node:tls'
import {connect} from 'node:net'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {encodeTunnel} from '../../src/tunnel/codec/tunnel.js'
import {issue, loadCa, writePair} from '../../src/pki/pki.js'
import {event, runCli, waitFor} from '../helpers/procs.js'
import {helloHttp, socksConnect} from '../helpers/servers.js'
import {makePki, startGate, startPortal, stop, type Pki} from '../helpers/tunnel.js'

const t = suite<Record<string, any>>('authentication and policy') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('auth', 'alice') as Pki
  ctx.other = await makePki('auth-other', 'mallory') as Pki
  ctx.http = await helloHttp()
  ctx.gate = await startGate(ctx.pki, ['--allow', `alice=localhost:${ctx.http.port}`, '--allow', 'alice=198.18.0.0/15:22'])
})

t.after(async (ctx) => {
  if (ctx.gate) await stop(ctx.gate)
  ctx.http?.close()
  ctx.pki?.cleanup()
  ctx.other?.cleanup()
})

t('a portal with a certificate from another CA is refused at the handshake; the gate says why', async (ctx) => {
  const o = ctx.other.dir
  const r = await runCli(['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--cert', join(o, 'client.crt'), '--key', join(o, 'client.key'), '--ca', join(ctx.pki.dir, 'ca.crt'), '--socks', '127.0.0.1:0'])
  assert.is(r.code, 1)
  assert.match(r.stderr, /cannot open a tunnel/)
  await waitFor('gate log', () => /not signed by our CA/.test(ctx.gate.stderr))
})

t('an expired client certificate: the portal refuses it at start, and the gate refuses it and says it expired', async (ctx) => {
  const ca = await loadCa(ctx.pki.dir)
  const past = Date.now() - 10 * 86400_000
  writePair(ctx.pki.dir, 'old', await issue(ca, {cn: 'alice', role: 'client', notBefore: new Date(past - 86400_000), notAfter: new Date(past)}))
  const d = ctx.pki.dir
  const r = await runCli(['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--cert', join(d, 'old.crt'), '--key', join(d, 'old.key'), '--pki-dir', d, '--socks', '127.0.0.1:0'])
  assert.is(r.code, 1)
  assert.match(r.stderr, /--cert: \S+old\.crt expired on /)
  // The gate's own check, for a client that does not check itself.
  const raw = connect(ctx.gate.port, '127.0.0.1')
  await new Promise((res) => raw.once('connect', res))
  raw.write(encodeTunnel({kind: 'relay', origin: 'test', path: ['127.0.0.1']}))
  await new Promise((res) => raw.once('data', res))
  raw.pause()
  const tls = tlsConnect({socket: raw, ca: readFileSync(join(d, 'ca.crt')), cert: readFileSync(join(d, 'old.crt')), key: readFileSync(join(d, 'old.key')), servername: 'localhost', minVersion: 'TLSv1.3'})
  tls.on('error', () => {})
  await waitFor('gate log', () => /expired/.test(ctx.gate.stderr))
  tls.destroy()
})

t('a client without a certificate is refused', async (ctx) => {
  const raw = connect(ctx.gate.port, '127.0.0.1')
  await new Promise((r) => raw.once('connect', r))
  raw.write(encodeTunnel({kind: 'relay', origin: 'test', path: ['127.0.0.1']}))
  await new Promise((r) => raw.once('data', r)) // the gate echoes the RELAY frame before TLS
  raw.pause()
  const tls = tlsConnect({socket: raw, ca: readFileSync(join(ctx.pki.dir, 'ca.crt')), servername: 'localhost', minVersion: 'TLSv1.3'})
  tls.on('error', () => {})
  await waitFor('gate log', () => /client sent no certificate/.test(ctx.gate.stderr))
  tls.destroy()
})

t('a connection that is not a tunkit portal (TLS first, no RELAY frame) is closed with a reason', async (ctx) => {
  const tls = tlsConnect({host: '127.0.0.1', port: ctx.gate.port, rejectUnauthorized: false})
  tls.on('error', () => {})
  await waitFor('gate log', () => /without a RELAY frame/.test(ctx.gate.stderr))
  tls.destroy()
})

t('a policy denial surfaces as SOCKS5 reply 2 and is logged; allowed targets still work', async (ctx) => {
  const p = await startPortal(ctx.pki, ctx.gate.port, ['--socks', '127.0.0.1:0'], 1)
  try {
    const denied = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http.port)
    denied.socket.destroy()
    assert.is(denied.rep, 2)
    await waitFor('denial log', () => /denied: alice .* asked for tcp 127\.0\.0\.1/.test(ctx.gate.stderr))
    const ok = await socksConnect(p.ports.socks, 'localhost', ctx.http.port)
    assert.is(ok.rep, 0)
    ok.socket.write('GET /allowed HTTP/1.0\r\n\r\n')
    const body = await new Promise<string>((r) => { let s = ''; ok.socket.on('data', (d) => (s += d)); ok.socket.on('end', () => r(s)) })
    assert.match(body, /hello from behind the gate: \/allowed/)
  } finally {
    assert.is(await stop(p), 0)
  }
})

t('gate restart: the portal reconnects by itself and carries traffic again', async (ctx) => {
  const gate = await startGate(ctx.pki)
  const port = gate.port
  const p = await startPortal(ctx.pki, port, ['--socks', '127.0.0.1:0', '--backoff-max', '1'], 1)
  try {
    assert.is((await socksConnect(p.ports.socks, 'localhost', ctx.http.port)).rep, 0)
    assert.is(await stop(gate), 0)
    await waitFor('portal notices', () => p.events.some((e) => e.event === 'tunnel-down'))
    const down = await socksConnect(p.ports.socks, 'localhost', ctx.http.port)
    assert.is(down.rep, 1, 'while the gate is away, CONNECT fails with general failure')
    const again = await startGate(ctx.pki, [], `127.0.0.1:${port}`)
    await waitFor('second tunnel-up', () => p.events.filter((e) => e.event === 'tunnel-up').length >= 2, 20000)
    const ok = await socksConnect(p.ports.socks, 'localhost', ctx.http.port)
    ok.socket.destroy()
    assert.is(ok.rep, 0)
    assert.is(await stop(again), 0)
  } finally {
    await stop(p)
  }
})

t('a dead gate (no answer to pings) is detected and the portal reconnects', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--keepalive', '0'])
  const p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', '--keepalive', '0.3', '--dead-after', '1', '--backoff-max', '1'], 1)
  // With TK_GATE_WORKERS the tunnels live in the workers: they are stopped too.
  const workers = (gate.events.find((e) => e.event === 'listening')?.workers as number[] | undefined) ?? []
  try {
    gate.child.kill('SIGSTOP')
    for (const w of workers) process.kill(w, 'SIGSTOP')
    await event(p, 'tunnel-down')
    assert.match(p.stderr, /no data from peer/)
  } finally {
    for (const w of workers) process.kill(w, 'SIGCONT')
    gate.child.kill('SIGCONT')
    await stop(p)
    await stop(gate)
  }
})

t.run()
