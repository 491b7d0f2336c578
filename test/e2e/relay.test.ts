import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {encodeTunnel} from '../../src/tunnel/codec/tunnel.js'
import {event, freePort, runCli, stop, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {hashSink, helloHttp, httpBody, upload} from '../helpers/servers.js'
import {closeFor, makePki, startGate, startPortal, type Pki} from '../helpers/tunnel.js'

const run = promisify(execFile)
const MB = 1 << 20
const t = suite<Record<string, any>>('relay chains (seed 000)') // eslint-disable-line @typescript-eslint/no-explicit-any

async function startRelay(port: number, allow: string[]): Promise<Proc> {
  const r = tunkit(['relay', '--listen', `127.0.0.1:${port}`, '--name', `127.0.0.1:${port}`, '--json', ...allow.flatMap((a) => ['--allow-next', a])])
  await event(r, 'listening')
  return r
}

t.before(async (ctx) => {
  ctx.pki = await makePki('relay') as Pki
  ctx.http = await helloHttp()
  ctx.sink = await hashSink()
  ctx.gate = await startGate(ctx.pki)
  ctx.pc = await freePort()
  ctx.pb = await freePort()
  ctx.relayC = await startRelay(ctx.pc, [`127.0.0.1:${ctx.gate.port}`])
  ctx.relayB = await startRelay(ctx.pb, [`127.0.0.1:${ctx.pc}`])
})

t.after(async (ctx) => {
  for (const p of [ctx.relayB, ctx.relayC, ctx.gate]) if (p) await stop(p)
  ctx.http?.close()
  ctx.sink?.close()
  ctx.pki?.cleanup()
})

t('portal -> relay -> relay -> gate: curl through SOCKS5 and a 50 MB transfer checked by SHA-256', async (ctx) => {
  const p = await startPortal(ctx.pki, ctx.gate.port, ['--via', `127.0.0.1:${ctx.pb},127.0.0.1:${ctx.pc}`, '--socks', '127.0.0.1:0', '-L', `127.0.0.1:0:127.0.0.1:${ctx.sink.port}`], 2)
  try {
    const {stdout} = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${p.ports.socks}`, `http://localhost:${ctx.http.port}/chain`])
    assert.is(stdout, httpBody('/chain'))
    const r = await upload(p.ports.local, 50 * MB)
    assert.is(r.reply, r.sent)
  } finally {
    assert.is(await stop(p), 0)
  }
  // Each relay reports the tunnel's end with what it carried (TLS records: a little over 50 MB).
  for (const relay of [ctx.relayB, ctx.relayC]) {
    const e = await event(relay, 'tunnel-down')
    assert.ok((e.bytesOut as number) > 50 * MB && (e.bytesBack as number) > 0, JSON.stringify(e))
    assert.match(String(e.code), /^TK_[A-Z_]+$/, JSON.stringify(e))
    assert.match(String(e.peer), /^127\.0\.0\.1:\d+$/)
  }
})

t('a hop the relay may not forward to: the portal says so and exits 1; the relay logs why', async (ctx) => {
  const r = await runCli(['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--via', `127.0.0.1:${ctx.pb}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0'])
  assert.is(r.code, 1)
  assert.match(r.stderr, /hop-not-allowed/)
  await waitFor('relay log', () => /hop-not-allowed: next hop 127\.0\.0\.1:\d+ is not allowed/.test(ctx.relayB.stderr))
})

t('misaddressed, oversized and non-RELAY input is closed with a logged reason, and the relay keeps serving', async (ctx) => {
  const other = await closeFor(ctx.pb, encodeTunnel({kind: 'relay', origin: 'x', path: ['198.18.0.9:4500', `127.0.0.1:${ctx.gate.port}`]}))
  assert.equal(other.status, 'bad-relay-frame')
  assert.match(other.reason, /does not name this relay/)
  const big = Buffer.alloc(16)
  big.writeUInt32BE(1 << 20, 0)
  big.writeInt16BE(16, 4)
  big.writeUInt16BE(1, 6)
  assert.is((await closeFor(ctx.pb, big)).status, 'bad-relay-frame')
  assert.is((await closeFor(ctx.pb, Buffer.from('\x16\x03\x01\x00\x05hello', 'latin1'))).status, 'bad-relay-frame')
  const last = await closeFor(ctx.pb, encodeTunnel({kind: 'relay', origin: 'x', path: [`127.0.0.1:${ctx.pb}`]}))
  assert.match(last.reason, /last node/)
  // Still serving.
  const p = await startPortal(ctx.pki, ctx.gate.port, ['--via', `127.0.0.1:${ctx.pb},127.0.0.1:${ctx.pc}`, '--socks', '127.0.0.1:0'], 1)
  assert.is(await stop(p), 0)
})

t('an unreachable next hop is reported as hop-unreachable and retried (not fatal)', async (ctx) => {
  const dead = await freePort()
  const relay = await startRelay(await freePort(), ['127.0.0.1'])
  const port = Number(String((relay.events.find((e) => e.event === 'listening') as {port: number}).port))
  const p = tunkit(['portal', '--gate', `127.0.0.1:${dead}`, '--via', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--backoff-max', '1'])
  try {
    await waitFor('portal retries', () => /hop-unreachable.*retrying/.test(p.stderr))
    assert.is(p.child.exitCode, null, 'still running, retrying')
  } finally {
    await stop(p)
    await stop(relay)
  }
})

t.run()
