import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../helpers/requires.js'
import {BIN, stop, tunkit, waitFor, type Proc} from '../helpers/procs.js'

const run = promisify(execFile)
const LAB = 'test/nat/natlab.sh'


/** Interoperability with coturn (RFC 5780), stund (RFC 3489) and their clients, behind an EIM/APDF NAT. */
const t = unless(suite<{peers: ChildProcess[]; server?: Proc; dir: string}>('STUN interoperability with coturn and stund'), missing(['ip', 'ss', 'nft', 'turnserver', 'turnutils_natdiscovery', 'stun', 'stund']))

const inCli = (args: string[]): Promise<{stdout: string; code: number}> =>
  run('ip', ['netns', 'exec', 'tkn-cli', ...args], {timeout: 60000}).then((r) => ({stdout: r.stdout, code: 0}), (e) => ({stdout: String(e.stdout), code: e.code}))

t.before(async (ctx) => {
  await run('bash', [LAB, 'up', 'eim-apdf'])
  ctx.dir = mkdtempSync(join(tmpdir(), 'tk-coturn-'))
  const netns = (args: string[]): ChildProcess => spawn('ip', ['netns', 'exec', 'tkn-srv', ...args], {stdio: 'ignore'})
  ctx.peers = [
    netns(['turnserver', '-n', '--listening-ip', '203.0.113.10', '--listening-ip', '198.51.100.10', '--listening-port', '3478', '--alt-listening-port', '3479',
      '--relay-ip', '203.0.113.10', '--min-port', '50000', '--max-port', '50999', '--stun-only', '--no-auth', '--no-tls', '--no-dtls', '--no-cli',
      '--realm', 'tk', '--userdb', join(ctx.dir, 'turndb'), '--pidfile', join(ctx.dir, 'pid'), '--log-file', join(ctx.dir, 'log'), '--simple-log', '--no-stdout-log']),
    netns(['stund', '-h', '203.0.113.10', '-a', '198.51.100.10', '-p', '3480', '-o', '3481']),
  ]
  ctx.server = tunkit(['nat-discover', '--serve', '--listen', '203.0.113.10:3490', '--alt', '198.51.100.10:3491', '--json'], {}, 'tkn-srv')
  await waitFor('tunkit STUN server', () => ctx.server!.events.find((e) => e.event === 'listening'))
  // coturn and stund announce nothing: they are ready once their UDP ports are bound.
  const bound = async (): Promise<boolean> => {
    const ss = await run('ip', ['netns', 'exec', 'tkn-srv', 'ss', '-Hnlu'])
    return [3478, 3479, 3480, 3481].every((p) => new RegExp(`:${p}\\s`).test(ss.stdout))
  }
  await waitFor('coturn and stund to bind their UDP ports', bound)
})

t.after(async (ctx) => {
  for (const p of ctx.peers ?? []) p.kill('SIGTERM')
  if (ctx.server) await stop(ctx.server)
  await run('bash', [LAB, 'down'])
  if (ctx.dir) rmSync(ctx.dir, {recursive: true, force: true})
})

const discover = async (server: string): Promise<Record<string, any>> => { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await inCli([process.execPath, BIN, 'nat-discover', '--server', server, '--json', '--timeout', '5'])
  return JSON.parse(r.stdout)
}

t('tunkit client against coturn (RFC 5780): EIM / APDF', async () => {
  const d = await discover('203.0.113.10:3478')
  assert.equal([d.mapping, d.filtering, d.server.rfc5780], ['endpoint-independent', 'address-and-port-dependent', true])
  assert.match(d.server.software, /Coturn/)
})

t('tunkit client against classic stund (RFC 3489, CHANGED-ADDRESS): EIM / APDF', async () => {
  const d = await discover('203.0.113.10:3480')
  assert.equal([d.mapping, d.filtering, d.server.rfc5780, d.server.otherAddress], ['endpoint-independent', 'address-and-port-dependent', false, '198.51.100.10:3481'])
})

t('coturn\'s turnutils_natdiscovery against the tunkit server', async () => {
  const r = await inCli(['turnutils_natdiscovery', '-m', '-f', '-p', '3490', '203.0.113.10'])
  assert.match(r.stdout, /Other addr: : 198\.51\.100\.10:3491/)
  assert.match(r.stdout, /NAT with Endpoint Independent Mapping/)
  assert.match(r.stdout, /NAT with Address and Port Dependent Filtering/)
})

t('the classic stun client against the tunkit server: the same verdict as against stund', async () => {
  const ours = await inCli(['stun', '203.0.113.10:3490'])
  const theirs = await inCli(['stun', '203.0.113.10:3480'])
  assert.match(ours.stdout, /Independent Mapping, Port Dependent Filter/)
  assert.is(ours.code, 23)
  assert.is(ours.code, theirs.code)
})

t.run()
