import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {Limiter, LimitFull} from '../../src/lib/limit.js'

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('did not reject')
}

test('at most max at once; the rest wait in order and get the slot when one is released', async () => {
  const l = new Limiter(2)
  const a = await l.acquire()
  const b = await l.acquire()
  const order: string[] = []
  const c = l.acquire().then((r) => (order.push('c'), r))
  const d = l.acquire().then((r) => (order.push('d'), r))
  await Promise.resolve()
  assert.equal([l.busy, l.queued, order], [2, 2, []])
  a()
  a() // a second call gives nothing back twice
  const rc = await c
  assert.equal([l.busy, l.queued, order], [2, 1, ['c']])
  b()
  ;(await d)()
  rc()
  assert.ok(l.idle)
})

test('a full queue refuses at once; an aborted waiter leaves the queue', async () => {
  const l = new Limiter(1, 1)
  const r = await l.acquire()
  const ac = new AbortController()
  const waiting = l.acquire(ac.signal)
  assert.instance(await rejection(l.acquire()), LimitFull)
  ac.abort(new Error('too slow'))
  assert.match((await rejection(waiting)).message, /too slow/)
  assert.is(l.queued, 0)
  r()
  assert.ok(l.idle)
})

test.run()
