import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../helpers/requires.js'
import {event, runCli, stop, tmpDir, tunkit, waitFor, type Proc} from '../helpers/procs.js'

const run = promisify(execFile)
const NS = 'tkvp-p'

/**
 * A gate that speaks the protocol itself (inside the namespace, on its loopback): it echoes
 * RELAY, completes TLS 1.3 with the gate certificate, and answers the VPN REQUEST with a RESPONSE
 * pushing `routes` and `dns` verbatim. It then stays silent until killed.
 */
function hostileGate(dir: string, routes: string[], dns: string[]): ChildProcess {
  const d = `${process.cwd()}/dist/src`
  const script = `
    import {createServer} from 'node:net'
    import {TLSSocket} from 'node:tls'
    import {readFileSync} from 'node:fs'
    import {encodeTunnel} from '${d}/tunnel/codec/tunnel.js'
    import {responseFrame} from '${d}/tunnel/core/handshake.js'
    createServer((raw) => {
      raw.on('error', () => {})
      raw.once('data', (relay) => {
        raw.write(relay)
        const s = new TLSSocket(raw, {isServer: true, cert: readFileSync('${dir}/gate.crt'), key: readFileSync('${dir}/gate.key'), ca: readFileSync('${dir}/ca.crt'), requestCert: true, minVersion: 'TLSv1.3'})
        s.on('error', () => {})
        s.once('data', () => s.write(encodeTunnel(responseFrame({identity: 'alice', remoteForwards: [], earlyData: false,
          vpn: {address: '198.18.10.2', prefix: 24, gateway: '198.18.10.1', routes: ${JSON.stringify(routes)}, dns: ${JSON.stringify(dns)}}}))))
      })
    }).listen(4433, '127.0.0.1', () => console.log('ready'))
  `
  return spawn('ip', ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'inherit']})
}

async function down(): Promise<void> {
  await run('ip', ['netns', 'del', NS]).catch(() => {})
}

const t = unless(suite<{pki?: {dir: string; cleanup(): void}; gate?: ChildProcess; portal?: Proc}>('VPN mode: what the portal accepts from its gate'), missing(['/dev/net/tun', 'ip']))

t.before(async (ctx) => {
  await down()
  await run('ip', ['netns', 'add', NS])
  await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up'])
  ctx.pki = tmpDir('vpnp')
  const r = await runCli(['pki', 'init', '--dir', ctx.pki.dir, '--client', 'alice', '--san', '127.0.0.1'])
  assert.is(r.code, 0, r.stderr)
})

t.after.each(async (ctx) => {
  if (ctx.portal) await stop(ctx.portal)
  if (ctx.gate && ctx.gate.exitCode === null) {
    const gone = new Promise((r) => ctx.gate!.once('exit', r))
    ctx.gate.kill('SIGKILL')
    await gone
  }
  ctx.portal = undefined
  ctx.gate = undefined
})

t.after(async (ctx) => {
  await down()
  ctx.pki?.cleanup()
})

async function portalAgainst(ctx: {pki?: {dir: string}; gate?: ChildProcess; portal?: Proc}, routes: string[], dns: string[], extra: string[] = []): Promise<Proc> {
  ctx.gate = hostileGate(ctx.pki!.dir, routes, dns)
  await new Promise((r) => ctx.gate!.stdout!.once('data', r))
  ctx.portal = tunkit(['portal', '--gate', '127.0.0.1:4433', '--pki-dir', ctx.pki!.dir, '--json', '--vpn', '--dev', 'tkvp-tun0', ...extra], {}, NS)
  await event(ctx.portal, 'tunnel-up')
  return ctx.portal
}

t('a pushed "default", 0.0.0.0/0, /1 halves and a route over the gate are refused and logged; the normal route is installed', async (ctx) => {
  const hostile = ['default', '0.0.0.0/0', '0.0.0.0/1', '128.0.0.0/1', '127.0.0.0/8', '198.18.20.0/24']
  const p = await portalAgainst(ctx, hostile, ['198.18.20.53', 'evil.example'])
  await event(p, 'vpn-route', (e) => e.route === '198.18.20.0/24')
  const refused = p.events.filter((e) => e.event === 'vpn-refused').map((e) => e.value)
  assert.equal(refused, [...hostile.slice(0, 5), 'evil.example'])
  assert.match(p.stderr, /VPN: refused route "default" pushed by the gate: not an IPv4 CIDR/)
  assert.match(p.stderr, /VPN: refused route "127\.0\.0\.0\/8" pushed by the gate: covers 127\.0\.0\.1, the path to the gate/)
  const table = (await run('ip', ['-n', NS, 'route', 'show'])).stdout
  assert.match(table, /198\.18\.20\.0\/24 via 198\.18\.10\.1 dev tkvp-tun0/)
  assert.not.match(table, /^default|0\.0\.0\.0\/1|128\.0\.0\.0\/1/m)
})

t('--accept-routes narrows what is installed', async (ctx) => {
  const p = await portalAgainst(ctx, ['198.18.20.0/24', '198.18.30.0/24'], [], ['--accept-routes', '198.18.30.0/24'])
  await event(p, 'vpn-route', (e) => e.route === '198.18.30.0/24')
  await waitFor('the refusal', () => p.events.find((e) => e.event === 'vpn-refused' && e.value === '198.18.20.0/24'))
  const table = (await run('ip', ['-n', NS, 'route', 'show'])).stdout
  assert.not.match(table, /198\.18\.20\.0\/24/)
})

t.run()
