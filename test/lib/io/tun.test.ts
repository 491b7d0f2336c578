import {execFile, spawn} from 'node:child_process'
import {promisify} from 'node:util'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../../helpers/requires.js'

const run = promisify(execFile)
const NS = 'tkt-tun'


const t = unless(test, missing(['/dev/net/tun', 'ip', 'ping']))
t('TUN binding: the kernel ping gets replies that tunkit reads from and writes to a TUN device', async () => {
  await run('ip', ['netns', 'del', NS]).catch(() => {}) // a leftover of a crashed run
  await run('ip', ['netns', 'add', NS])
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, 'test/fixtures/tun-echo.mjs', 'tkt0', '198.18.250.1', '198.18.250.2'], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  try {
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`TUN helper did not start: ${err}`)), 10000)
      const check = setInterval(() => { if (out.includes('ready')) { clearInterval(check); clearTimeout(t); res() } }, 20)
    })
    assert.match(out, /ready tkt0/)
    const ping = await run('ip', ['netns', 'exec', NS, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '198.18.250.2'])
    assert.match(ping.stdout, /5 packets transmitted, 5 received/)
    // A flood with 32 requests in flight: the kernel queues packets, and reads come in batches.
    await run('ip', ['netns', 'exec', NS, 'ping', '-f', '-l', '32', '-c', '2000', '-W', '2', '198.18.250.2'])
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    await run('ip', ['netns', 'del', NS]).catch(() => {})
  }
  const stats = JSON.parse(out.trim().split('\n').pop()!)
  assert.ok(stats.answered >= 2005, `answered ${stats.answered}`)
  assert.ok(stats.batches < stats.answered, `batches ${stats.batches} < packets ${stats.answered}`)
})

t.run()
