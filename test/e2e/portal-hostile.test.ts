import {readdirSync} from 'node:fs'
import {createServer as httpServer} from 'node:http'
import {connect, createServer, type Server, type Socket} from 'node:net'
import {createSocket} from 'node:dgram'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, freePort, runCli, stop, tunkit, waitFor} from '../helpers/procs.js'
import {helloHttp, httpBody, listening} from '../helpers/servers.js'
import {makePki, startGate, startPortal} from '../helpers/tunnel.js'

/**
 * Issue 9, the portal's items: what one local client, a busy port or a peer that is not a gate
 * can do to a running portal. Every attack is bounded in count; nothing waits on the clock.
 */
const t = suite<Record<string, any>>('portal under attack') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('ph')
  ctx.http = await helloHttp()
  ctx.gate = await startGate(ctx.pki)
  ctx.portal = await startPortal(ctx.pki, ctx.gate.port, ['--socks', '127.0.0.1:0'], 1)
})

t.after(async (ctx) => {
  if (ctx.portal) await stop(ctx.portal)
  if (ctx.gate) assert.is(await stop(ctx.gate), 0, 'gate exits 0 on SIGTERM')
  ctx.http?.close()
  ctx.pki?.cleanup()
})

/** Sends a whole SOCKS5 exchange at once; resolves with every byte the server sent until it closed. */
function socksRaw(port: number, bytes: Buffer, end = false): Promise<Buffer> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1')
    let got = Buffer.alloc(0)
    s.on('data', (d) => (got = Buffer.concat([got, d])))
    s.on('error', rej)
    s.on('close', () => res(got))
    s.on('end', () => s.end())
    if (end) s.end(bytes)
    else s.write(bytes)
  })
}

const connectTo = (name: Buffer, atyp = 3): Buffer => Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, atyp, name.length]), name, Buffer.from([0, 80])])
const HOSTILE = [Buffer.from('a\0b'), Buffer.alloc(200, 0xe9), Buffer.from('fe80::1%a:b:c:d:e:f:1:2:3'), Buffer.from('x\0'.repeat(100))]

/** UDP ASSOCIATE; resolves with the control socket (left open) and the relay's port. */
function associate(port: number): Promise<{ctl: Socket; relay: number}> {
  return new Promise((res, rej) => {
    const ctl = connect(port, '127.0.0.1')
    let got = Buffer.alloc(0)
    ctl.on('error', rej)
    ctl.on('data', (d) => {
      got = Buffer.concat([got, d])
      if (got.length >= 12) res({ctl, relay: got.readUInt16BE(10)})
    })
    ctl.write(Buffer.from([5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
  })
}

const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

t('CONNECT to a name with a NUL, 200 bytes of 0xE9 or a zoned IPv6 literal: reply 4, the portal lives on', async (ctx) => {
  const port = ctx.portal.ports.socks
  for (const name of HOSTILE) {
    const reply = await socksRaw(port, connectTo(name))
    assert.is(reply.subarray(0, 2).toString('hex'), '0500', 'method selected')
    assert.is(reply[3], 4, `host unreachable for ${JSON.stringify(name.toString('latin1').slice(0, 20))}`)
  }
  // Variants: an unknown address type, an empty name, a request cut short then closed.
  assert.is((await socksRaw(port, connectTo(Buffer.from('abc'), 9)))[3], 8, 'address type not supported')
  assert.is((await socksRaw(port, Buffer.from([5, 1, 0, 5, 1, 0, 3, 0, 0, 80])))[3], 4, 'an empty name: host unreachable')
  assert.is((await socksRaw(port, Buffer.from([5, 1, 0, 5, 1, 0, 3, 200, 0x41]), true)).length, 2, 'a half-sent request ends with the client')
  // A UDP ASSOCIATE datagram to the same names is dropped; the association and the portal survive.
  const {ctl, relay} = await associate(port)
  const u = createSocket('udp4')
  for (const name of HOSTILE) u.send(Buffer.concat([Buffer.from([0, 0, 0, 3, name.length]), name, Buffer.from([0, 53]), Buffer.from('q')]), relay, '127.0.0.1')
  await new Promise((r) => u.send(Buffer.from([0, 0, 0, 7]), relay, '127.0.0.1', r))
  u.close()
  const ok = await socksRaw(port, Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, 9]), Buffer.from('localhost'), Buffer.from([ctx.http.port >> 8, ctx.http.port & 255]), Buffer.from('GET /after HTTP/1.0\r\n\r\n')]))
  assert.is(ok[3], 0, 'a good CONNECT still succeeds')
  assert.ok(ok.toString().includes(httpBody('/after')), 'and carries data')
  ctl.destroy()
  assert.is(ctx.portal.child.exitCode, null, 'the portal is still running')
  assert.not.match(ctx.portal.stderr, /CodecError|RangeError|at .*\.js/, 'no stack trace')
})

t('300 clients that UDP ASSOCIATE then end their side leave no descriptor behind', async (ctx) => {
  const pid = ctx.portal.child.pid as number
  const idle = fds(pid)
  for (let round = 0; round < 3; round++) {
    await Promise.all(Array.from({length: 100}, async () => {
      const {ctl} = await associate(ctx.portal.ports.socks)
      // Half-close only: the portal must see 'end' and finish the association (and the socket).
      await new Promise<void>((r) => {
        ctl.on('close', () => r())
        ctl.end()
      })
    }))
  }
  const back = await waitFor(`fds back to ${idle} (now ${fds(pid)})`, () => fds(pid) <= idle && fds(pid))
  assert.ok(back <= idle)
})

t('SIGINT with 50 live UDP associations and 20 half-done handshakes exits 0 at once', async (ctx) => {
  const p = await startPortal(ctx.pki, ctx.gate.port, ['--socks', '127.0.0.1:0'], 1)
  const held = await Promise.all(Array.from({length: 50}, () => associate(p.ports.socks)))
  const half = await Promise.all(Array.from({length: 20}, () => new Promise<Socket>((r) => {
    const s = connect(p.ports.socks, '127.0.0.1', () => r(s))
    s.on('error', () => {})
    s.write(Buffer.from([5, 1]))
  })))
  p.child.kill('SIGINT')
  // stop() gives up after 5 s with SIGKILL, which would make the code null.
  assert.is(await stop(p), 0)
  await event(p, 'stopped')
  for (const {ctl} of held) ctl.destroy()
  for (const s of half) s.destroy()
})

t('a -L port in use ends the portal with exit 2 and closes its other listeners', async (ctx) => {
  const busy: Server = await listening(createServer())
  const busyPort = (busy.address() as {port: number}).port
  const socksPort = await freePort()
  const r = await runCli(['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--pki-dir', ctx.pki.dir, '--socks', `127.0.0.1:${socksPort}`, '-L', `127.0.0.1:${busyPort}:127.0.0.1:${ctx.http.port}`])
  assert.is(r.code, 2, r.stderr)
  assert.match(r.stderr, new RegExp(`error: -L: cannot listen on 127\\.0\\.0\\.1:${busyPort}: EADDRINUSE`))
  // -U on the same port (UDP is free there, so use a bound UDP socket) and --skip-unbindable.
  const u = createSocket('udp4')
  await new Promise<void>((res) => u.bind(0, '127.0.0.1', () => res()))
  const uPort = u.address().port
  const r2 = await runCli(['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--pki-dir', ctx.pki.dir, '-U', `127.0.0.1:${uPort}:127.0.0.1:53`])
  assert.is(r2.code, 2, r2.stderr)
  assert.match(r2.stderr, /error: -U: cannot listen on .*EADDRINUSE/)
  const p = tunkit(['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--pki-dir', ctx.pki.dir, '--json', '--skip-unbindable', '--socks', '127.0.0.1:0', '-L', `127.0.0.1:${busyPort}:127.0.0.1:80`, '-U', `127.0.0.1:${uPort}:127.0.0.1:53`])
  await waitFor('two skipped listeners', () => p.events.filter((e) => e.event === 'listen-skipped').length === 2)
  await event(p, 'listening', (e) => e.kind === 'socks')
  assert.match(p.stderr, /warn {2}-L: cannot listen .*skipped/)
  assert.is(await stop(p, 'SIGINT'), 0)
  u.close()
  busy.close()
})

t('-R to a port the gate cannot bind ends the portal with exit 2 naming the forward', async (ctx) => {
  const busy: Server = await listening(createServer())
  const busyPort = (busy.address() as {port: number}).port
  const r = await runCli(['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--pki-dir', ctx.pki.dir, '-R', `127.0.0.1:${busyPort}:127.0.0.1:${ctx.http.port}`])
  assert.is(r.code, 2, r.stderr)
  assert.match(r.stderr, new RegExp(`error: -R 127\\.0\\.0\\.1:${busyPort}: the gate cannot listen there`))
  busy.close()
})

/** Things that are not a gate, on loopback. */
async function impostor(kind: 'silent' | 'http' | 'ssh'): Promise<Server & {port: number}> {
  if (kind === 'http') return listening(httpServer((_q, res) => res.end('hello')) as unknown as Server)
  const held: Socket[] = []
  const s = createServer((sock) => {
    held.push(sock)
    sock.on('error', () => {})
    if (kind === 'ssh') sock.write('SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n')
  })
  s.on('close', () => held.forEach((h) => h.destroy()))
  const l = await listening(s)
  const close = l.close.bind(l)
  return Object.assign(l, {close: () => (held.forEach((h) => h.destroy()), close())}) as Server & {port: number}
}

for (const [kind, answered] of [['http', 'HTTP/1.1 400 Bad Request'], ['ssh', 'SSH-2.0-OpenSSH_9.6p1']] as const) {
  t(`a portal pointed at ${kind === 'http' ? 'an HTTP server' : 'an SSH server'} exits 1: "not a tunkit gate", code TK_NOT_A_GATE`, async (ctx) => {
    const srv = await impostor(kind)
    const r = await runCli(['portal', '--gate', `127.0.0.1:${srv.port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--json'])
    assert.is(r.code, 1, r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.is(lines.length, 1, r.stderr)
    assert.match(lines[0], new RegExp(`not a tunkit gate at 127\\.0\\.0\\.1:${srv.port} \\(it answered "${answered.replace(/[.()]/g, '\\$&')}`))
    assert.match(r.stdout, /"event":"error","[^\n]*"code":"TK_NOT_A_GATE"/)
    srv.close()
  })
}

t('a silent listener: each set-up step is logged, the RELAY answer wait is bounded and retried', async (ctx) => {
  const srv = await impostor('silent')
  const p = tunkit(['portal', '--gate', `127.0.0.1:${srv.port}`, '--pki-dir', ctx.pki.dir, '--connect-timeout', '0.3', '--log-level', 'debug', '--backoff-max', '0.2'])
  await waitFor('two bounded attempts', () => (p.stderr.match(/no answer to the RELAY frame from 127\.0\.0\.1:\d+ within 0\.3 s/g) ?? []).length >= 2)
  assert.match(p.stderr, /debug tunnel: connecting to 127\.0\.0\.1/)
  assert.match(p.stderr, /debug tunnel: connected to .* sent RELAY/)
  assert.is(await stop(p, 'SIGINT'), 0)
  srv.close()
})

t.run()
