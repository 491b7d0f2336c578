import {connect, createServer, type Socket} from 'node:net'
import {once} from 'node:events'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {nativeBinding} from '../../../src/lib/io/native.js'

// The addon given what JS should never give it: an Error with a code, never a crash or undefined.
const n = nativeBinding()
const code = (f: () => unknown): string | undefined => {
  try {
    f()
  } catch (e) {
    return (e as {code?: string}).code
  }
  return 'no exception'
}
const call = n as unknown as Record<string, (...a: unknown[]) => unknown>

test('native: missing or wrong arguments throw, with a code', () => {
  assert.is(code(() => call.open()), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => call.startReading(0)), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => call.startReading(0, 'not a function')), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => call.splice(0, 1)), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => call.macKey()), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => call.write(0, 'not a buffer')), 'ENAPI')
  assert.is(code(() => n.open('x'.repeat(16), false, false)), 'ETUN')
  assert.is(code(() => n.splice(-1, -1, () => {})), 'ESPLICE')
})

test('native accept: bad addresses and ports, foreign handles and a non-function throw with a code', () => {
  assert.is(code(() => n.acceptListen('not an address', 0, 16, false)), 'EINVAL')
  assert.is(code(() => n.acceptListen('127.0.0.1', 70000, 16, false)), 'EINVAL')
  assert.is(code(() => n.acceptStop(n.macKey(Buffer.alloc(32)))), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => call.acceptStart(0, 'x')), 'ERR_INVALID_ARG_TYPE')
})

test('native: a handle of one kind is refused by the others', () => {
  const mac = n.macKey(Buffer.alloc(32, 1))
  assert.is(code(() => n.stopReading(mac)), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => n.spliceAbort(mac)), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => n.stopReading({})), 'ERR_INVALID_ARG_TYPE')
})

test('native: spliceAbort after the splice ended does nothing', async () => {
  const server = createServer((s) => s.pipe(s)).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as {port: number}).port
  const a = connect(port, '127.0.0.1')
  await once(a, 'connect')
  const front = createServer({pauseOnConnect: true}).listen(0, '127.0.0.1')
  await once(front, 'listening')
  const client = connect((front.address() as {port: number}).port, '127.0.0.1')
  const [x] = (await once(front, 'connection')) as [Socket]
  const fd = (s: Socket): number => (s as unknown as {_handle: {fd: number}})._handle.fd
  const ended = new Promise<[string | null, number, number]>((res) => {
    const h = n.splice(fd(x), fd(a), (err, aToB, bToA) => {
      res([err, aToB, bToA])
      setImmediate(() => n.spliceAbort(h))
    })
  })
  x.destroy()
  a.destroy()
  client.end('hello')
  const echoed = await new Promise<string>((res) => {
    let s = ''
    client.on('data', (d) => (s += d))
    client.on('end', () => res(s))
  })
  assert.is(echoed, 'hello')
  assert.equal(await ended, [null, 5, 5])
  await new Promise((r) => setTimeout(r, 20)) // the abort above has run
  server.close()
  front.close()
})

test.run()
