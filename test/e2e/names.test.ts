import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, freePort, runCli, stop, tunkit} from '../helpers/procs.js'
import {helloHttp, socksConnect} from '../helpers/servers.js'
import {encodeTunnel} from '../../src/tunnel/codec/tunnel.js'
import {closeFor, makePki, startGate, type Pki} from '../helpers/tunnel.js'

// Issue 10 item 5: a gate certificate verified against a name other than the address dialled,
// relays named by address as well as by their --name text, and relay --name shown as required.

const t = suite<Record<string, any>>('names: --gate-name, relays by address') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('names', 'alice') as Pki
  // A gate certificate whose only SAN is gate.test: dialling 127.0.0.1 cannot match it.
  const r = await runCli(['pki', 'issue', 'gate.test', '--server', '--dir', ctx.pki.dir])
  if (r.code !== 0) throw new Error(r.stderr)
  const d = ctx.pki.dir
  ctx.gate = await startGate(ctx.pki, ['--cert', join(d, 'gate.test.crt'), '--key', join(d, 'gate.test.key')])
  ctx.http = await helloHttp()
})

t.after(async (ctx) => {
  if (ctx.gate) await stop(ctx.gate)
  ctx.http?.close()
  ctx.pki?.cleanup()
})

const portalArgs = (ctx: Record<string, any>, ...extra: string[]): string[] => // eslint-disable-line @typescript-eslint/no-explicit-any
  ['portal', '--gate', `127.0.0.1:${ctx.gate.port}`, '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--json', ...extra]

t('a gate certificate without the dialled address: exit 1, hostname mismatch (no reissue needed with --gate-name)', async (ctx) => {
  for (const extra of [[], ['--gate-name', 'other.test']]) {
    const r = await runCli(portalArgs(ctx, ...extra))
    assert.is(r.code, 1, r.stderr)
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, /gate certificate rejected: .*(127\.0\.0\.1|other\.test).*ERR_TLS_CERT_ALTNAME_INVALID/)
    assert.match(r.stdout, /"event":"error".*"code":"TK_TLS_HOSTNAME_MISMATCH"/)
  }
})

t('--gate-name gate.test: the tunnel to 127.0.0.1 comes up and carries a request', async (ctx) => {
  const p = tunkit(portalArgs(ctx, '--gate-name', 'gate.test'))
  try {
    await event(p, 'tunnel-up')
    const socks = (await event(p, 'listening')).port as number
    const {rep, socket} = await socksConnect(socks, '127.0.0.1', ctx.http.port)
    assert.is(rep, 0)
    socket.destroy()
  } finally {
    assert.is(await stop(p), 0)
  }
})

t('relay --name localhost: a portal naming it --via 127.0.0.1:PORT passes; 127.0.0.1 at another port is not it', async (ctx) => {
  const port = await freePort()
  const relay = tunkit(['relay', '--listen', `127.0.0.1:${port}`, '--name', 'localhost', '--json', '--allow-next', `127.0.0.1:${ctx.gate.port}`])
  try {
    await event(relay, 'listening')
    const p = tunkit(portalArgs(ctx, '--gate-name', 'gate.test', '--via', `127.0.0.1:${port}`))
    await event(p, 'tunnel-up')
    await event(relay, 'tunnel-up')
    assert.is(await stop(p), 0)
    // Another relay of this host (another port) is not this one: the frame does not name it.
    const gate = `127.0.0.1:${ctx.gate.port}`
    const r = await closeFor(port, encodeTunnel({kind: 'relay', origin: 'tk-test', path: [`127.0.0.1:${port + 1}`, gate]}))
    assert.is(r.status, 'bad-relay-frame')
    assert.match(r.reason, /does not name this relay \(localhost\)/)
  } finally {
    await stop(relay)
  }
})

t('relay --help shows --name as required', async () => {
  const r = await runCli(['relay', '--help'])
  assert.is(r.code, 0)
  assert.match(r.stdout, /USAGE\n\s+\$ tunkit relay --name NAME \[/)
  assert.match(r.stdout, /--name=<value>\s+Required: this relay's name/)
})

t.run()
