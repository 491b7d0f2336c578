import {execFile, spawn} from 'node:child_process'
import {promisify} from 'node:util'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../../helpers/requires.js'

const run = promisify(execFile)
const NS = 'tkt-tun'


const t = unless(test, missing(['/dev/net/tun', 'ip', 'ping']))
const waitOut = (ok: () => boolean) => new Promise<void>((res, rej) => {
  const stop = setTimeout(() => { clearInterval(check); rej(new Error('the TUN helper did not answer')) }, 5000)
  const check = setInterval(() => { if (ok()) { clearInterval(check); clearTimeout(stop); res() } }, 20)
})
t('TUN binding: the kernel ping gets replies that tunkit reads from and writes to a TUN device', async () => {
  await run('ip', ['netns', 'del', NS]).catch(() => {}) // a leftover of a crashed run
  await run('ip', ['netns', 'add', NS])
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, 'test/fixtures/tun-echo.mjs', 'tkt0', '198.18.250.1', '198.18.250.2'], {stdio: ['pipe', 'pipe', 'pipe']})
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
    // Paused, the device is not read: a request waits in its queue, and is answered once resumed.
    child.stdin!.write('pause\n')
    await waitOut(() => out.includes('paused'))
    const late = run('ip', ['netns', 'exec', NS, 'ping', '-c', '1', '-W', '5', '198.18.250.2'])
    await new Promise((r) => setTimeout(r, 1000))
    child.stdin!.write('resume\n')
    const rtt = Number(/time=([\d.]+) ms/.exec((await late).stdout)?.[1])
    assert.ok(rtt >= 900, `answered after ${rtt} ms: the reader was not paused`)
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    await run('ip', ['netns', 'del', NS]).catch(() => {})
  }
  const stats = JSON.parse(out.trim().split('\n').pop()!)
  assert.ok(stats.answered >= 2006, `answered ${stats.answered}`)
  assert.ok(stats.batches < stats.answered, `batches ${stats.batches} < packets ${stats.answered}`)
})

// Deleting the interface under a reader: the kernel fails its reads (EBADFD); the device reports
// that once as an 'error' event, and a gate's VPN logs it and stops, instead of the process dying.
for (const mode of ['device', 'gate'] as const) {
  t(`TUN binding: a read failure is an 'error' event with a code, not a crash (${mode})`, async () => {
    const ns = `tkt-tunfail-${mode[0]}`
    const dev = `tktf${mode[0]}0`
    await run('ip', ['netns', 'del', ns]).catch(() => {}) // a leftover of a crashed run
    await run('ip', ['netns', 'add', ns])
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, 'test/fixtures/tun-fail.mjs', mode, dev], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const until = (what: RegExp, label: string) => new Promise<void>((res, rej) => {
      const t = setTimeout(() => { clearInterval(check); rej(new Error(`no ${label}: ${out} ${err}`)) }, 10000)
      const check = setInterval(() => { if (what.test(out)) { clearInterval(check); clearTimeout(t); res() } }, 20)
    })
    try {
      await until(/^ready /m, 'ready')
      await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'del', dev])
      await until(/"alive":true/, 'alive line after the failure')
      child.kill('SIGTERM')
      assert.is(await exited, 0, err)
    } finally {
      child.kill('SIGTERM')
      await run('ip', ['netns', 'del', ns]).catch(() => {})
    }
    const lines = out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    if (mode === 'device') {
      const e = lines.find((l) => l.event === 'error')
      assert.ok(e, out)
      assert.is(e.name, 'TunError')
      assert.is(e.code, 'TUN_READ_FAILED')
      assert.is(e.errno, 'EBADFD')
      assert.match(e.message, new RegExp(`^${dev}: reading the device failed: .*\\(EBADFD\\)$`))
    } else {
      const e = lines.find((l) => l.level === 'error')
      assert.ok(e, out)
      assert.is(e.code, 'TUN_READ_FAILED')
      assert.match(e.msg, /VPN: .*\(EBADFD\); VPN mode stops/)
    }
    assert.is(lines.filter((l) => l.event === 'error' || l.level === 'error').length, 1, 'reported once')
    assert.not.match(err, /Error|uncaught/i)
  })
}


t.run()
