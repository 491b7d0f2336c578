import {execFile, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {promisify} from 'node:util'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../helpers/requires.js'

const run = promisify(execFile)
const NS = 'tkd-dhcp'


const t = unless(test, missing(['/dev/net/tun', 'ip', 'udhcpc', 'busybox', 'ping']))
t('pseudo adapter on TAP: busybox udhcpc gets address, router, routes and DNS; the host ARP resolves the gate to the reserved MAC', async () => {
  await run('ip', ['netns', 'del', NS]).catch(() => {})
  await run('ip', ['netns', 'add', NS])
  const dir = mkdtempSync(join(tmpdir(), 'tk-dhcp-'))
  const out = join(dir, 'lease')
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, 'test/fixtures/tap-adapter.mjs', 'tkd0'], {stdio: ['ignore', 'pipe', 'pipe']})
  let log = ''
  child.stdout.on('data', (d) => (log += d))
  child.stderr.on('data', (d) => (log += d))
  try {
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`adapter did not start: ${log}`)), 10000)
      const c = setInterval(() => { if (log.includes('ready')) { clearInterval(c); clearTimeout(t); res() } }, 20)
    })
    await run('ip', ['netns', 'exec', NS, 'udhcpc', '-i', 'tkd0', '-n', '-q', '-f', '-t', '4', '-T', '1', '-s', resolve('test/fixtures/udhcpc.sh')], {env: {...process.env, UDHCPC_OUT: out}, timeout: 20000})
    const lease = readFileSync(out, 'utf8')
    assert.match(lease, /ip=198\.18\.10\.2 subnet=255\.255\.255\.0 router=198\.18\.10\.1 dns=198\.18\.20\.53 lease=3600/)
    assert.match(lease, /staticroutes=198\.18\.20\.0\/24 198\.18\.10\.1 198\.18\.21\.0\/24 198\.18\.10\.1/)
    assert.match(log, /DHCP OFFER 198\.18\.10\.2/)
    assert.match(log, /DHCP ACK 198\.18\.10\.2/)
    const addr = await run('ip', ['netns', 'exec', NS, 'ip', '-4', 'addr', 'show', 'dev', 'tkd0'])
    assert.match(addr.stdout, /inet 198\.18\.10\.2\/24/)
    const routes = await run('ip', ['netns', 'exec', NS, 'ip', 'route', 'show', 'dev', 'tkd0'])
    assert.match(routes.stdout, /198\.18\.20\.0\/24 via 198\.18\.10\.1/)
    await run('ip', ['netns', 'exec', NS, 'ping', '-c', '1', '-W', '1', '198.18.10.1']).catch(() => {}) // no ICMP answer expected: this only makes the host ARP
    const neigh = await run('ip', ['netns', 'exec', NS, 'ip', 'neigh', 'show', '198.18.10.1', 'dev', 'tkd0'])
    assert.match(neigh.stdout, /lladdr 02:74:6b:00:00:01/)
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    await run('ip', ['netns', 'del', NS]).catch(() => {})
    rmSync(dir, {recursive: true, force: true})
  }
})

t.run()
