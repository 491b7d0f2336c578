import {X509Certificate} from 'node:crypto'
import {copyFileSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {request} from 'node:http'
import {connect, createServer, type Socket} from 'node:net'
import {join} from 'node:path'
import {connect as tlsConnect} from 'node:tls'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, freePort, runCli, tmpDir, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {helloHttp, listening, socksConnect} from '../helpers/servers.js'
import {encodeTunnel} from '../../src/tunnel/codec/tunnel.js'
import {normalSerial} from '../../src/pki/crl.js'
import {closeFor, makePki, startGate, startPortal, stop, type Pki} from '../helpers/tunnel.js'

// Operating a long-running gate or relay (issue 10, item 9): SIGHUP reloads, pki revoke, --metrics.
const t = suite<Record<string, any>>('operate: reload, revoke, metrics') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('operate', 'alice') as Pki
  assert.is((await runCli(['pki', 'issue', 'bob', '--dir', ctx.pki.dir])).code, 0)
  ctx.tmp = tmpDir('operate')
  ctx.http1 = await helloHttp()
  ctx.http2 = await helloHttp()
  ctx.echo = await listening(createServer((s) => {
    s.on('error', () => {})
    s.pipe(s)
  }))
})

t.after((ctx) => {
  for (const s of [ctx.http1, ctx.http2, ctx.echo]) s?.close()
  ctx.pki?.cleanup()
  ctx.tmp?.cleanup()
})

/** One round trip over an established SOCKS session to the echo server. */
function echo(s: Socket, text: string): Promise<string> {
  return new Promise((res, rej) => {
    let got = ''
    const on = (d: Buffer): void => {
      got += d
      if (got.length >= text.length) {
        s.off('data', on)
        res(got)
      }
    }
    s.on('data', on)
    s.once('error', rej)
    s.write(text)
  })
}

async function hangup(p: Proc, outcome: 'reloaded' | 'reload-failed'): Promise<Record<string, unknown>> {
  const before = p.events.filter((e) => e.event === outcome).length
  p.child.kill('SIGHUP')
  return waitFor(`${outcome} event\n${p.stderr}`, () => p.events.filter((e) => e.event === outcome)[before])
}

// The revoke test revokes alice's certificate (client.crt): the tests after it use bob's.
const bobFlags = (dir: string): string[] => ['--cert', join(dir, 'bob.crt'), '--key', join(dir, 'bob.key')]

t('SIGHUP re-reads the policy file: the tunnel and its open session carry on, new opens follow the new rules; a broken file keeps the old ones', async (ctx) => {
  const policy = join(ctx.tmp.dir, 'policy')
  writeFileSync(policy, `alice=127.0.0.1:${ctx.echo.port}\nalice=127.0.0.1:${ctx.http1.port}\n`)
  const gate = await startGate(ctx.pki, ['--policy', policy])
  const p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1)
  try {
    const held = await socksConnect(p.ports.socks, '127.0.0.1', ctx.echo.port)
    assert.is(held.rep, 0)
    assert.is(await echo(held.socket, 'before'), 'before')
    assert.is((await socksConnect(p.ports.socks, '127.0.0.1', ctx.http2.port)).rep, 2, 'http2 is not allowed yet')

    writeFileSync(policy, `alice=127.0.0.1:${ctx.echo.port}\nalice=127.0.0.1:${ctx.http2.port}\nlisten alice=127.0.0.1:9000\n`)
    const ok = await hangup(gate, 'reloaded')
    assert.equal(ok.changed, ['policy: 2 access and 1 listen rule(s) (was 2 access and 0 listen rule(s))'])
    assert.match(gate.stderr, /info  reloaded: policy: 2 access and 1 listen rule/)
    assert.is(await echo(held.socket, 'after'), 'after', 'the session opened before the reload still carries data')
    const denied = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http1.port)
    denied.socket.destroy()
    assert.is(denied.rep, 2, 'http1 is no longer allowed')
    const allowed = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http2.port)
    allowed.socket.destroy()
    assert.is(allowed.rep, 0, 'http2 is allowed now')

    writeFileSync(policy, 'alice=198.18.0.0/99\n')
    const failed = await hangup(gate, 'reload-failed')
    assert.is(failed.code, 'TK_USAGE')
    assert.is(gate.stderr.split('\n').filter((l) => l.includes('reload failed')).length, 1, `one error line:\n${gate.stderr}`)
    assert.match(gate.stderr, /error reload failed, the running configuration stays: --allow: .*198\.18\.0\.0\/99/)
    const still = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http2.port)
    still.socket.destroy()
    assert.is(still.rep, 0, 'the old rules still apply')
    assert.is(await echo(held.socket, 'still'), 'still')
    held.socket.destroy()
    assert.is(p.events.filter((e) => e.event === 'tunnel-up').length, 1, 'the tunnel never went down')
    assert.is(gate.events.filter((e) => e.event === 'tunnel-down').length, 0)
  } finally {
    await stop(p)
    assert.is(await stop(gate), 0, 'the gate is still running and stops cleanly')
  }
})

t('pki revoke + SIGHUP: the revoked identity\'s open tunnel is closed and its new tunnels refused; others keep theirs; pki list shows it', async (ctx) => {
  const dir = ctx.pki.dir
  const gate = await startGate(ctx.pki, ['--allow', '*=127.0.0.1', '--metrics', '0'])
  const alice = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', '--backoff-max', '1'], 1)
  const bob = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', ...bobFlags(dir)], 1)
  try {
    const r = await runCli(['pki', 'revoke', 'alice', '--dir', dir])
    assert.is(r.code, 0, r.stderr)
    assert.match(r.stderr, /revoked client\.crt \(identity alice, serial [0-9a-f]+\)/)
    assert.is(statSync(join(dir, 'crl.pem')).mode & 0o777, 0o600, 'crl.pem is 0600')
    const list = await runCli(['pki', 'list', '--dir', dir, '--json'])
    assert.is(list.code, 0, list.stderr)
    const certs = list.stdout.trim().split('\n').map((l) => JSON.parse(l))
    const by = Object.fromEntries(certs.map((c) => [c.name, c]))
    assert.equal(Object.keys(by).sort(), ['bob', 'client', 'gate'])
    assert.equal([by.client.identity, by.client.role, by.client.revoked], ['alice', 'client', true])
    assert.equal([by.bob.role, by.bob.revoked, by.gate.role, by.gate.revoked], ['client', false, 'server', false])
    assert.match(by.bob.serial, /^[0-9a-f]+$/)

    const ok = await hangup(gate, 'reloaded')
    assert.equal(ok.changed, ['revocation list: 1 revoked', 'closed 1 tunnel(s) of revoked certificates'])
    const down = await event(gate, 'tunnel-down', (e) => e.identity === 'alice')
    assert.is(down.status, 'not-authorized')
    assert.match(gate.stderr, /closing the tunnel of alice from .*: its certificate \(serial [0-9a-f]+\) is revoked/)
    await waitFor('gate refuses the portal\'s reconnect', () => /client certificate is not acceptable \(CERT_REVOKED\)/.test(gate.stderr))
    const fresh = await runCli(['portal', '--gate', `127.0.0.1:${gate.port}`, '--pki-dir', dir, '--socks', '127.0.0.1:0'])
    assert.is(fresh.code, 1, 'a new tunnel with the revoked certificate is refused')
    const m = parse((await scrape(gate.events.find((e) => e.event === 'listening')!.metrics as string)).body)
    assert.ok(m['tunkit_handshake_failures_total{reason="TK_TLS_BAD_CERTIFICATE",role="gate"}'] >= 2, 'the reconnect and the new portal, counted as TLS failures')
    assert.is(m['tunkit_tunnels{role="gate"}'], 1, 'bob\'s')
    const b = await socksConnect(bob.ports.socks, '127.0.0.1', ctx.http1.port)
    b.socket.destroy()
    assert.is(b.rep, 0, 'bob\'s tunnel still carries opens')
    assert.is(gate.events.filter((e) => e.event === 'tunnel-down' && e.identity === 'bob').length, 0)
  } finally {
    await stop(alice)
    await stop(bob)
    await stop(gate)
  }
})

/** The serial of the certificate the gate presents now (RELAY frame, its echo, then TLS). */
async function servedSerial(port: number, ca: string): Promise<string> {
  const raw = connect(port, '127.0.0.1')
  await new Promise((r) => raw.once('connect', r))
  raw.write(encodeTunnel({kind: 'relay', origin: 'test', path: ['127.0.0.1']}))
  await new Promise((r) => raw.once('data', r))
  raw.pause()
  const tls = tlsConnect({socket: raw, ca: readFileSync(ca), servername: 'localhost', minVersion: 'TLSv1.3'})
  tls.on('error', () => {})
  await new Promise((r) => tls.once('secureConnect', r))
  const serial = normalSerial(tls.getPeerCertificate().serialNumber)
  tls.destroy()
  return serial
}

t('SIGHUP rotates the gate\'s certificate: the next handshake presents the new one, the established tunnel stays', async (ctx) => {
  const dir = ctx.pki.dir
  const cert = join(ctx.tmp.dir, 'rotate.crt')
  const key = join(ctx.tmp.dir, 'rotate.key')
  copyFileSync(join(dir, 'gate.crt'), cert)
  copyFileSync(join(dir, 'gate.key'), key)
  const gate = await startGate(ctx.pki, ['--cert', cert, '--key', key])
  const p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', ...bobFlags(dir)], 1)
  try {
    const ca = join(dir, 'ca.crt')
    const before = await servedSerial(gate.port, ca)
    assert.is((await runCli(['pki', 'issue', 'gate-next', '--server', '--san', 'localhost', '--san', '127.0.0.1', '--dir', dir])).code, 0)
    copyFileSync(join(dir, 'gate-next.crt'), cert)
    copyFileSync(join(dir, 'gate-next.key'), key)
    const ok = await hangup(gate, 'reloaded')
    assert.equal(ok.changed, ['certificate and key'])
    const after = await servedSerial(gate.port, ca)
    assert.is.not(after, before)
    assert.is(after, normalSerial(new X509Certificate(readFileSync(cert)).serialNumber))
    const s = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http1.port)
    s.socket.destroy()
    assert.is(s.rep, 0, 'the tunnel set up with the old certificate still carries opens')
    assert.is(p.events.filter((e) => e.event === 'tunnel-up').length, 1)
  } finally {
    await stop(p)
    await stop(gate)
  }
})

t('a reload whose key does not match the certificate keeps the running TLS configuration; unknown names cannot be revoked; another CA\'s CRL is refused at start', async (ctx) => {
  const dir = ctx.pki.dir
  const cert = join(ctx.tmp.dir, 'gate.crt')
  const key = join(ctx.tmp.dir, 'gate.key')
  copyFileSync(join(dir, 'gate.crt'), cert)
  copyFileSync(join(dir, 'gate.key'), key)
  const gate = await startGate(ctx.pki, ['--cert', cert, '--key', key])
  try {
    copyFileSync(join(dir, 'bob.key'), key)
    const failed = await hangup(gate, 'reload-failed')
    // The start-up check (lib/io/tls-config.ts) names the mismatch before OpenSSL would.
    assert.match(failed.message as string, /is not the key of the certificate/)
    assert.is(failed.code, 'TK_TLS_CONFIG')
    const p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', ...bobFlags(dir)], 1)
    assert.is(await stop(p), 0, 'handshakes still use the old certificate and key')
  } finally {
    await stop(gate)
  }
  const r = await runCli(['pki', 'revoke', 'nobody', '--dir', dir])
  assert.is(r.code, 2)
  assert.match(r.stderr, /no certificate named nobody/)
  const other = await makePki('operate-other', 'mallory')
  try {
    assert.is((await runCli(['pki', 'revoke', 'mallory', '--dir', other.dir])).code, 0)
    const wrong = await runCli(['gate', '--listen', '127.0.0.1:0', '--pki-dir', dir, '--crl', join(other.dir, 'crl.pem')])
    assert.is(wrong.code, 2, 'a CRL of another CA would refuse every client: refused at start')
    assert.match(wrong.stderr, /--crl: .*crl\.pem: it is not signed by the CA/)
  } finally {
    other.cleanup()
  }
})

/** GET over a real HTTP client; returns status and body. */
function scrape(where: string, path = '/metrics', method = 'GET'): Promise<{status: number; body: string; type: string}> {
  return new Promise((res, rej) => {
    const [host, port] = where.split(':')
    const req = request({host, port: Number(port), path, method, timeout: 5000}, (r) => {
      let body = ''
      r.on('data', (d) => (body += d))
      r.on('end', () => res({status: r.statusCode ?? 0, body, type: String(r.headers['content-type'])}))
    })
    req.on('error', rej)
    req.end()
  })
}

/** Prometheus text → {'name{label="v",…}': value}; labels kept as written. */
function parse(text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/)
    assert.ok(m, `a sample line: ${line}`)
    out[m![1]] = Number(m![2])
  }
  return out
}

t('gate --metrics: a scrape during traffic parses, and tunnels, sessions, bytes, refusals, handshake failures and limit hits move; only GET /metrics is served', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--metrics', '0', '--allow', `*=127.0.0.1:${ctx.echo.port}`, '--max-sessions-per-identity', '2'])
  const at = gate.events.find((e) => e.event === 'listening')!.metrics as string
  assert.match(at, /^127\.0\.0\.1:\d+$/, 'a bare port binds loopback')
  const held: Socket[] = []
  let p: (Proc & {ports: Record<string, number>}) | undefined
  try {
    const first = await scrape(at)
    assert.is(first.status, 200)
    assert.match(first.type, /^text\/plain; version=0\.0\.4/)
    const m0 = parse(first.body)
    assert.is(m0['tunkit_tunnels{role="gate"}'], 0)
    assert.is(m0['tunkit_bytes_total{direction="out",role="gate"}'], 0)

    p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', ...bobFlags(ctx.pki.dir)], 1)
    const raw = connect(gate.port, '127.0.0.1') // pre-authentication: says nothing
    await new Promise((r) => raw.once('connect', r))
    const denied = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http1.port)
    denied.socket.destroy()
    assert.is(denied.rep, 2)
    for (let i = 0; i < 2; i++) {
      const s = await socksConnect(p.ports.socks, '127.0.0.1', ctx.echo.port)
      assert.is(s.rep, 0)
      held.push(s.socket)
      assert.is(await echo(s.socket, 'x'.repeat(100_000)), 'x'.repeat(100_000))
    }
    const over = await socksConnect(p.ports.socks, '127.0.0.1', ctx.echo.port)
    over.socket.destroy()
    assert.is(over.rep, 1, 'a third session is over --max-sessions-per-identity')
    assert.is((await closeFor(gate.port, Buffer.from('GET / HTTP/1.0\r\n\r\n'))).status, 'bad-relay-frame')

    // The bad RELAY frame's connection leaves the handshake count once its close is seen: with
    // gate workers, a scrape can reach the worker first.
    const m1 = await waitFor('the bad connection gone', async () => {
      const m = parse((await scrape(at)).body)
      return m['tunkit_preauth_connections{role="gate"}'] === 1 && m
    }, 5000)
    assert.is(m1['tunkit_tunnels{role="gate"}'], 1)
    assert.is(m1['tunkit_sessions{role="gate"}'], 2)
    assert.is(m1['tunkit_preauth_connections{role="gate"}'], 1)
    assert.ok(m1['tunkit_bytes_total{direction="out",role="gate"}'] > 200_000, 'bytes out counted while the tunnel is up')
    assert.ok(m1['tunkit_bytes_total{direction="back",role="gate"}'] > 200_000)
    assert.is(m1['tunkit_opens_refused_total{reason="TK_DENIED",role="gate"}'], 1)
    assert.is(m1['tunkit_opens_refused_total{reason="TK_RESOURCE_LIMIT",role="gate"}'], 1)
    assert.is(m1['tunkit_limit_hits_total{limit="max-sessions-per-identity",role="gate"}'], 1)
    assert.is(m1['tunkit_handshake_failures_total{reason="TK_BAD_RELAY_FRAME",role="gate"}'], 1)
    raw.destroy()

    for (const s of held) s.destroy()
    await stop(p)
    p = undefined
    await event(gate, 'tunnel-down')
    const m2 = parse((await scrape(at)).body)
    assert.is(m2['tunkit_tunnels{role="gate"}'], 0)
    assert.ok(m2['tunkit_bytes_total{direction="out",role="gate"}'] >= m1['tunkit_bytes_total{direction="out",role="gate"}'], 'a counter never goes back')

    assert.is((await scrape(at, '/metrics', 'POST')).status, 405)
    assert.is((await scrape(at, '/')).status, 404)
    assert.is((await scrape(at, '/metrics', 'HEAD')).status, 200)
  } finally {
    for (const s of held) s.destroy()
    if (p) await stop(p)
    assert.is(await stop(gate), 0)
  }
})

t('the metrics endpoint drops a client that sends nothing, and serves others meanwhile', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--metrics', '127.0.0.1:0'])
  const at = gate.events.find((e) => e.event === 'listening')!.metrics as string
  try {
    const [host, port] = at.split(':')
    const idle = connect(Number(port), host)
    idle.on('error', () => {})
    const closed = new Promise((r) => idle.once('close', r))
    assert.is((await scrape(at)).status, 200)
    // It sends nothing, so only the endpoint's idle timeout (5 s) can close it; the bound stops a hang.
    assert.is(await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 20_000))]), 'closed')
  } finally {
    await stop(gate)
  }
})

t('relay: SIGHUP re-reads --allow-next from --config and names flags that need a restart; --metrics counts the refusal and the forwarded tunnel', async (ctx) => {
  const gate = await startGate(ctx.pki)
  const cfg = join(ctx.tmp.dir, 'relay.json')
  const port = await freePort()
  writeFileSync(cfg, JSON.stringify({'allow-next': ['127.0.0.1:1']}))
  const relay = tunkit(['relay', '--config', cfg, '--listen', `127.0.0.1:${port}`, '--name', `127.0.0.1:${port}`, '--metrics', '0', '--json'])
  const at = (await event(relay, 'listening')).metrics as string
  let p: (Proc & {ports: Record<string, number>}) | undefined
  try {
    const refused = await runCli(['portal', '--gate', `127.0.0.1:${gate.port}`, '--via', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, ...bobFlags(ctx.pki.dir), '--socks', '127.0.0.1:0'])
    assert.is(refused.code, 1)
    assert.match(refused.stderr, /hop-not-allowed|not allowed/)
    writeFileSync(cfg, JSON.stringify({'allow-next': [`127.0.0.1:${gate.port}`], 'handshake-timeout': '20s'}))
    const ok = await hangup(relay, 'reloaded')
    assert.equal(ok.changed, [`next hops: 127.0.0.1:${gate.port} (was 127.0.0.1:1)`, 'not applied until a restart: --handshake-timeout'])
    p = await startPortal(ctx.pki, gate.port, ['--via', `127.0.0.1:${port}`, '--socks', '127.0.0.1:0', ...bobFlags(ctx.pki.dir)], 1)
    const s = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http1.port)
    s.socket.destroy()
    assert.is(s.rep, 0)
    const m = parse((await scrape(at)).body)
    assert.is(m['tunkit_tunnels{role="relay"}'], 1)
    assert.is(m['tunkit_handshake_failures_total{reason="TK_HOP_NOT_ALLOWED",role="relay"}'], 1)
    assert.is(m['tunkit_sessions{role="relay"}'], undefined, 'a relay has no sessions of its own')
    await stop(p)
    p = undefined
    await waitFor('bytes counted at the tunnel\'s end', async () => parse((await scrape(at)).body)['tunkit_bytes_total{direction="out",role="relay"}'] > 0)
  } finally {
    if (p) await stop(p)
    assert.is(await stop(relay), 0)
    await stop(gate)
  }
})

t.run()
