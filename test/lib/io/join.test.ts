import {connect, createServer, type Server, type Socket} from 'node:net'
import {once} from 'node:events'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {joinSockets, type JoinEnd} from '../../../src/lib/io/join.js'
import {tryNative} from '../../../src/lib/io/native.js'

/**
 * The relay's join, with real loopback sockets: left client L -> (a | join | b) -> right server R.
 * Returns both ends as the relay would hold them, paused.
 */
async function pair(onRight: (r: Socket) => void): Promise<{l: Socket; a: Socket; b: Socket; close(): void}> {
  const servers: Server[] = []
  const listen = async (onConn: (s: Socket) => void): Promise<number> => {
    const s = createServer({allowHalfOpen: true, pauseOnConnect: true}, onConn)
    servers.push(s)
    s.listen(0, '127.0.0.1')
    await once(s, 'listening')
    return (s.address() as {port: number}).port
  }
  const rPort = await listen((r) => { r.resume(); onRight(r) })
  let a!: Socket
  const accepted = new Promise<void>((res) => void listen((s) => { a = s; res() }).then((port) => { l = connect({port, host: '127.0.0.1', allowHalfOpen: true}) }))
  let l!: Socket
  await accepted
  const b = connect({port: rPort, host: '127.0.0.1', allowHalfOpen: true})
  await once(b, 'connect')
  b.pause()
  return {l, a, b, close: () => servers.forEach((s) => s.close())}
}

const collect = (s: Socket): Promise<Buffer> => new Promise((res) => {
  const parts: Buffer[] = []
  s.on('data', (d) => parts.push(d))
  s.once('end', () => res(Buffer.concat(parts)))
})

test('the native splice is available (CI builds the addon)', () => {
  assert.ok(tryNative(), 'addon built')
})

for (const [how, native] of [['kernel splice', tryNative()], ['stream pipes', null]] as const) {
  test(`${how}: bytes both ways, the first chunk first, half-close passed on each way, done once`, async () => {
    const big = Buffer.alloc(8 << 20, 7)
    let right!: Promise<Buffer>
    const {l, a, b, close} = await pair((r) => {
      right = collect(r)
      r.write('early ') // before the join: must still reach L, first
      right.then(() => r.end('bye'))
    })
    let dones = 0
    let how: JoinEnd | undefined
    const ended = new Promise<void>((res) => joinSockets(a, b, Buffer.from('first '), (h) => { dones++; how = h; res() }, native))
    const left = collect(l)
    l.end(big)
    const got = await right
    assert.is(got.subarray(0, 6).toString(), 'first ')
    assert.ok(got.subarray(6).equals(big), 'the 8 MB arrived intact after the first chunk')
    assert.is((await left).toString(), 'early bye')
    await ended
    // After both sockets have closed nothing is left that could call done again.
    await Promise.all([a, b].map((s) => (s.closed ? null : once(s, 'close'))))
    await new Promise((r) => setImmediate(r))
    assert.is(dones, 1)
    assert.ok(how!.aToB >= big.length && how!.bToA >= 3 && !how!.error, JSON.stringify(how))
    close()
  })
}

test('stopping a join ends both connections', async () => {
  let rEnded!: Promise<unknown>
  let rGot!: Promise<unknown>
  const {l, a, b, close} = await pair((r) => { r.on('error', () => {}); rEnded = once(r, 'end'); rGot = once(r, 'data') })
  l.on('error', () => {})
  l.resume()
  let done = false
  const stop = joinSockets(a, b, Buffer.from('x'), () => (done = true))
  await rGot // the join is carrying bytes
  stop()
  await Promise.all([rEnded, once(l, 'end')])
  assert.ok(done, 'done ran')
  close()
})

test.run()
