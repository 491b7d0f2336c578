import {execFile} from 'node:child_process'
import {createSocket} from 'node:dgram'
import {createServer as httpServer} from 'node:http'
import {connect} from 'node:net'
import {promisify} from 'node:util'
import {SocksClient} from 'socks'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {freePort, waitFor} from '../helpers/procs.js'
import {helloHttp, httpBody, listening, udpEcho} from '../helpers/servers.js'
import {makePki, startGate, startPortal, stop} from '../helpers/tunnel.js'

const run = promisify(execFile)
const t = suite<Record<string, any>>('SOCKS5 UDP, auth, IPv6, upstream proxy, gate limits') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('more')
  ctx.http = await helloHttp()
  ctx.echo = await udpEcho()
  ctx.gate = await startGate(ctx.pki, ['--handshake-timeout', '1'])
})

t.after(async (ctx) => {
  if (ctx.gate) await stop(ctx.gate)
  ctx.http?.close()
  ctx.echo?.close()
  ctx.pki?.cleanup()
})

t('SOCKS5 UDP ASSOCIATE carries datagrams to a target and back', async (ctx) => {
  const p = await startPortal(ctx.pki, ctx.gate.port, ['--socks', '127.0.0.1:0'], 1)
  const udp = createSocket('udp4')
  try {
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()))
    // createConnection() does not do UDP ASSOCIATE; the event API does.
    const client = new SocksClient({
      proxy: {host: '127.0.0.1', port: p.ports.socks, type: 5},
      command: 'associate',
      destination: {host: '127.0.0.1', port: udp.address().port},
    })
    const assoc = await new Promise<{socket: import('node:net').Socket; remoteHost?: {host: string; port: number}}>((res, rej) => {
      client.on('established', res)
      client.on('error', rej)
      client.connect()
    })
    const relay = assoc.remoteHost!
    const reply = new Promise<Buffer>((res) => udp.once('message', (m) => res(m)))
    udp.send(SocksClient.createUDPFrame({remoteHost: {host: '127.0.0.1', port: ctx.echo.port}, data: Buffer.from('via-associate')}), relay.port, relay.host)
    const frame = SocksClient.parseUDPFrame(await reply)
    assert.is(frame.data.toString(), 'echo:via-associate')
    assert.is(frame.remoteHost.port, ctx.echo.port)
    assoc.socket.destroy()
  } finally {
    udp.close()
    await stop(p)
  }
})

t('SOCKS5 username/password (RFC 1929): right credentials pass, wrong ones are refused', async (ctx) => {
  const p = await startPortal(ctx.pki, ctx.gate.port, ['--socks', '127.0.0.1:0', '--socks-user', 'ops'], 1, {TUNKIT_SOCKS_PASSWORD: 's3cret'})
  try {
    const ok = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${p.ports.socks}`, '--proxy-user', 'ops:s3cret', `http://localhost:${ctx.http.port}/auth`])
    assert.is(ok.stdout, httpBody('/auth'))
    const bad = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${p.ports.socks}`, '--proxy-user', 'ops:wrong', `http://localhost:${ctx.http.port}/`]).then(() => null, (e) => e)
    assert.ok(bad, 'curl fails with a wrong password')
    const none = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${p.ports.socks}`, `http://localhost:${ctx.http.port}/`]).then(() => null, (e) => e)
    assert.ok(none, 'curl fails without credentials')
  } finally {
    await stop(p)
  }
})

t('an IPv6 target is reached by address through SOCKS5', async (ctx) => {
  const v6 = await listening(httpServer((req, res) => res.end(`v6 ${req.url}`)), '::1')
  const p = await startPortal(ctx.pki, ctx.gate.port, ['--socks', '127.0.0.1:0'], 1)
  try {
    const r = await run('curl', ['-sS', '--max-time', '10', '--socks5', `127.0.0.1:${p.ports.socks}`, `http://[::1]:${v6.port}/six`])
    assert.is(r.stdout, 'v6 /six')
  } finally {
    v6.close()
    await stop(p)
  }
})

t('--upstream-socks: a portal reaches the gate through a SOCKS5 proxy', async (ctx) => {
  // The proxy is another portal's SOCKS5 server (seed 001 Fig. 3: a portal behind a firewall).
  const proxy = await startPortal(ctx.pki, ctx.gate.port, ['--socks', '127.0.0.1:0'], 1)
  const inner = await startPortal(ctx.pki, ctx.gate.port, ['--upstream-socks', `127.0.0.1:${proxy.ports.socks}`, '-L', `127.0.0.1:0:localhost:${ctx.http.port}`], 1)
  try {
    const r = await run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${inner.ports.local}/nested`])
    assert.is(r.stdout, httpBody('/nested'))
    await waitFor('two tunnels on the gate', () => (ctx.gate.stderr.match(/tunnel up: alice/g) ?? []).length >= 2)
  } finally {
    await stop(inner)
    await stop(proxy)
  }
})

t('the gate drops a client that never finishes the handshake', async (ctx) => {
  const s = connect(ctx.gate.port, '127.0.0.1')
  s.on('error', () => {})
  const closed = new Promise((r) => s.once('close', r))
  await closed
  assert.match(ctx.gate.stderr, /handshake not finished within 1 s/)
})

t('--idle-timeout closes a tunnel that carries no sessions', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--idle-timeout', '1'])
  const p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', '--backoff-max', '30'], 1)
  try {
    const down = await waitFor('idle close', () => p.events.find((e) => e.event === 'tunnel-down'))
    assert.match(String(down.reason), /idle for 1 s/)
    assert.is(down.status, 'timeout')
  } finally {
    await stop(p)
    await stop(gate)
  }
})

t('remote forwards are released on the gate when their portal goes away', async (ctx) => {
  const rport = await freePort()
  const p = await startPortal(ctx.pki, ctx.gate.port, ['-R', `127.0.0.1:${rport}:localhost:${ctx.http.port}`], 0)
  await waitFor('remote listener', () => /remote forward for alice: listening/.test(ctx.gate.stderr))
  const r = await run('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${rport}/r`])
  assert.is(r.stdout, httpBody('/r'))
  assert.is(await stop(p), 0)
  const refused = (): Promise<boolean> => new Promise((res) => {
    const c = connect(rport, '127.0.0.1')
    c.on('connect', () => { c.destroy(); res(false) })
    c.on('error', () => res(true))
  })
  await waitFor('the gate to stop listening on the remote-forward port', refused)
})

t.run()
