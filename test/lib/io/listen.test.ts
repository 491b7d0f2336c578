import {connect, type Socket} from 'node:net'
import {once} from 'node:events'
import {readdirSync} from 'node:fs'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ListenError, listenScreened, startListener} from '../../../src/lib/io/listen.js'
import {createServer} from 'node:net'
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {resolve} from 'node:path'

// The addon's screened listener (native/accept.c): a refused connection is reset before Node
// makes a socket of it; an admitted one is an ordinary net.Socket.
const fds = (): number => readdirSync('/proc/self/fd').length

/** Connects, sends `hello`, resolves with what came back and how it ended. */
function probe(port: number, host = '127.0.0.1', localAddress?: string): Promise<{data: string; error?: string}> {
  return new Promise((res) => {
    const s = connect({port, host, localAddress}, () => s.write('hello'))
    let data = ''
    let error: string | undefined
    s.on('data', (d) => {
      data += d
      s.end()
    })
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code))
    s.on('close', () => res({data, error}))
    s.setTimeout(5000, () => s.destroy(new Error('timeout')))
  })
}

test('screened: the screen sees the source; admitted sockets work, refused ones are reset', async () => {
  const seen: string[] = []
  const l = await listenScreened('127.0.0.1', 0, (address, port) => {
    seen.push(`${address}:${port}`)
    if (address !== '127.0.0.1') return undefined
    return (s: Socket) => {
      assert.is(s.remoteAddress, address)
      assert.is(s.remotePort, port)
      s.on('data', (d) => s.end(d))
    }
  })
  assert.ok(l, 'the addon is built')
  try {
    assert.equal(await probe(l!.port), {data: 'hello', error: undefined})
    const refused = await probe(l!.port, '127.0.0.1', '127.0.0.9')
    assert.is(refused.data, '')
    assert.is(refused.error, 'ECONNRESET')
    assert.ok(seen[1].startsWith('127.0.0.9:'), seen.join(','))
  } finally {
    l!.close()
  }
})

test('screened: 3000 refused connections are reset and cost no descriptor', async () => {
  const l = (await listenScreened('127.0.0.1', 0, () => undefined))!
  const before = fds()
  let reset = 0
  for (let round = 0; round < 30; round++) {
    const rs = await Promise.all(Array.from({length: 100}, () => probe(l.port)))
    reset += rs.filter((r) => r.error === 'ECONNRESET' && !r.data).length
  }
  l.close()
  assert.is(reset, 3000)
  assert.ok(fds() <= before, `descriptors ${before} → ${fds()}`)
})

test('screened: names resolve, a taken port is a ListenError, close stops accepting (twice is harmless)', async () => {
  const l = (await listenScreened('localhost', 0, () => (s) => s.end('x')))!
  assert.ok(['127.0.0.1', '::1'].includes(l.address), l.address)
  const taken = createServer()
  await startListener(taken, '127.0.0.1', 0, () => {})
  const port = (taken.address() as {port: number}).port
  try {
    const e = await listenScreened('127.0.0.1', port, () => undefined).catch((x: unknown) => x)
    assert.instance(e, ListenError)
    assert.is((e as ListenError).code, 'EADDRINUSE')
  } finally {
    taken.close()
  }
  l.close()
  l.close()
  const after = await probe(l.port, l.address)
  assert.is(after.error, 'ECONNREFUSED')
})

test('screened: IPv6 and dual-stack', async () => {
  const l = (await listenScreened('::', 0, (address) => (s) => s.end(address)))!
  try {
    assert.is((await probe(l.port, '::1')).data, '::1')
    assert.is((await probe(l.port, '127.0.0.1')).data, '::ffff:127.0.0.1')
  } finally {
    l.close()
  }
})

test('screened: out of descriptors, the listener backs off instead of spinning, and recovers', async () => {
  // A child with 64 descriptors holding every connection it accepts.
  const listen = resolve('dist/src/lib/io/listen.js')
  const script = `const {listenScreened} = await import(${JSON.stringify(listen)}); const held = []
    const l = await listenScreened('127.0.0.1', 0, () => (s) => { held.push(s); s.on('data', (d) => s.write(d)) })
    process.stdout.write(l.port + '\\n'); process.stdin.on('data', () => { for (const s of held) s.destroy() })`
  const child = spawn('bash', ['-c', 'ulimit -n 64 && exec "$0" --input-type=module -e "$1"', process.execPath, script], {stdio: ['pipe', 'pipe', 'inherit']})
  try {
    const port = Number((await once(child.stdout, 'data'))[0].toString())
    const clients = Array.from({length: 100}, () => connect(port, '127.0.0.1').on('error', () => {}))
    await new Promise((r) => setTimeout(r, 500))
    const cpu = (): number => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0)
    const before = cpu()
    await new Promise((r) => setTimeout(r, 1000))
    const ticks = cpu() - before
    assert.ok(ticks < 30, `${ticks} clock ticks of CPU in 1 s with the accept queue full and no descriptor left`)
    child.stdin.write('release\n')
    for (const c of clients) c.destroy()
    assert.is((await probe(port)).data, 'hello', 'accepting again once descriptors are free')
  } finally {
    child.kill()
  }
})

test.run()
