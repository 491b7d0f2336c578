import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {freePort, waitFor} from '../helpers/procs.js'
import {Resolver} from 'node:dns/promises'
import {blackHole, hashSink, helloHttp, httpBody, socksConnect, tinyDns, udpAsk, udpEcho, upload} from '../helpers/servers.js'
import {makePki, startGate, startPortal, stop} from '../helpers/tunnel.js'

const run = promisify(execFile)
const MB = 1 << 20

/** One gate and one portal with SOCKS5, -L, -U and -R, shared by the tests of this file. */
const t = suite<Record<string, any>>('portal ⇄ gate, end to end') // eslint-disable-line @typescript-eslint/no-explicit-any
let ctx0: Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx0 = ctx
  ctx.pki = await makePki('pg')
  ctx.http = await helloHttp()
  ctx.sink = await hashSink()
  ctx.hole = await blackHole()
  ctx.echo = await udpEcho()
  ctx.rport = await freePort()
  ctx.gate = await startGate(ctx.pki)
  ctx.portal = await startPortal(ctx.pki, ctx.gate.port, [
    '--socks', '127.0.0.1:0',
    '-L', `127.0.0.1:0:127.0.0.1:${ctx.sink.port}`,
    '-L', `127.0.0.1:0:127.0.0.1:${ctx.hole.port}`,
    '-U', `127.0.0.1:0:127.0.0.1:${ctx.echo.port}`,
    '-R', `127.0.0.1:${ctx.rport}:localhost:${ctx.http.port}`,
  ], 4)
})

t.after(async (ctx) => {
  if (ctx.portal) assert.is(await stop(ctx.portal), 0, 'portal exits 0 on SIGTERM')
  if (ctx.gate) assert.is(await stop(ctx.gate), 0, 'gate exits 0 on SIGTERM')
  ctx.http?.close(); ctx.sink?.close(); ctx.echo?.close()
  for (const s of ctx.hole?.sockets ?? []) s.destroy()
  ctx.hole?.close()
  ctx.pki?.cleanup()
})

t('curl --socks5-hostname reaches an HTTP server by name through the tunnel', async (ctx) => {
  const {stdout} = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${ctx.portal.ports.socks}`, `http://localhost:${ctx.http.port}/through-socks`])
  assert.is(stdout, httpBody('/through-socks'))
})

t('curl --socks5 with an IPv4 literal works too', async (ctx) => {
  const {stdout} = await run('curl', ['-sS', '--max-time', '10', '--socks5', `127.0.0.1:${ctx.portal.ports.socks}`, `http://127.0.0.1:${ctx.http.port}/v4`])
  assert.is(stdout, httpBody('/v4'))
})

t('a 100 MB upload through -L arrives intact (SHA-256) and half-close returns the digest', async (ctx) => {
  const r = await upload(ctx.portal.ports.local, 100 * MB)
  assert.is(r.reply, r.sent)
})

t('a stalled session does not stall another one', async (ctx) => {
  const stalledPort = ctx.portal.ports.local1
  // Fill the stalled session's window and the black hole's socket buffers.
  let stalledDone = false
  const stalled = upload(stalledPort, 64 * MB).catch(() => null).finally(() => (stalledDone = true))
  await waitFor('the stalled session to reach its server', () => ctx.hole.sockets[0]?.bytesRead > 0)
  // The other session moves all its 50 MB while the first is still stuck. (Its speed beside a
  // stalled session is a benchmark figure, not a test assertion: it depends on the machine's load.)
  const r = await upload(ctx.portal.ports.local, 50 * MB)
  assert.is(r.reply, r.sent)
  assert.ok(ctx.hole.sockets.length >= 1, 'the stalled session reached its server')
  assert.not.ok(stalledDone, 'the stalled upload is still stalled')
  void stalled
})

t('a UDP datagram makes the round trip through -U', async (ctx) => {
  const reply = await udpAsk(ctx.portal.ports.udp, Buffer.from('ping-1'))
  assert.is(reply.toString(), 'echo:ping-1')
  const again = await udpAsk(ctx.portal.ports.udp, Buffer.from('ping-2'))
  assert.is(again.toString(), 'echo:ping-2')
})

t('DNS bridging: a real resolver asks through -U and gets the answer from behind the gate', async () => {
  const dns = await tinyDns('db.intranet.example', '198.18.7.7')
  const portal = await startPortal(ctx0.pki, ctx0.gate.port, ['-U', `127.0.0.1:0:127.0.0.1:${dns.port}`], 1)
  try {
    const r = new Resolver({timeout: 2000, tries: 2})
    r.setServers([`127.0.0.1:${portal.ports.udp}`])
    assert.equal(await r.resolve4('db.intranet.example'), ['198.18.7.7'])
    const err = await r.resolve4('nope.intranet.example').catch((e) => e)
    assert.is(err.code, 'ENOTFOUND')
    assert.ok(dns.queries >= 2)
  } finally {
    await stop(portal)
    dns.close()
  }
})

t('a remote forward (-R): the gate listens and connections come back to the portal side', async (ctx) => {
  const {stdout} = await run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${ctx.rport}/remote`])
  assert.is(stdout, httpBody('/remote'))
})

t('a refused target becomes SOCKS5 reply 5 (connection refused)', async (ctx) => {
  const dead = await freePort()
  const {rep, socket} = await socksConnect(ctx.portal.ports.socks, '127.0.0.1', dead)
  socket.destroy()
  assert.is(rep, 5)
})

t('an unknown host name becomes SOCKS5 reply 4 (host unreachable)', async (ctx) => {
  const {rep, socket} = await socksConnect(ctx.portal.ports.socks, 'no-such-host.invalid', 80)
  socket.destroy()
  assert.is(rep, 4)
})

t.run()
