import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {MAX_ASK, MAX_KEY_LENGTH, ShareError, ShareLedger, ShareWallet} from '../../../src/tunnel/core/shares.js'

const caps = {tunnels: 3, sessions: 1000}

test('grants up to the cap, never beyond, whoever asks', () => {
  const l = new ShareLedger(caps, 2)
  // Tight from the start: the cap is less than a block per worker.
  assert.equal(l.ask(0, 'tunnels', 'alice', 1), {granted: 1, tight: true})
  assert.equal(l.ask(1, 'tunnels', 'alice', 1), {granted: 1, tight: true})
  assert.equal(l.ask(0, 'tunnels', 'alice', 1), {granted: 1, tight: true})
  assert.equal(l.ask(1, 'tunnels', 'alice', 1), {granted: 0, tight: true})
  assert.is(l.used('tunnels', 'alice'), 3)
  // Another identity has its own cap.
  assert.is(l.ask(1, 'tunnels', 'bob', 1).granted, 1)
  // Far from the cap a block is granted whole and the worker may keep it.
  assert.equal(l.ask(1, 'sessions', 'bob', 16), {granted: 16, tight: false})
})

test('near the cap a block ask gets a fair share of what is left, at least one unit', () => {
  const l = new ShareLedger({sessions: 10}, 2)
  assert.equal(l.ask(0, 'sessions', 'a', 16), {granted: 5, tight: true})
  assert.equal(l.ask(1, 'sessions', 'a', 16), {granted: 2, tight: true})
  assert.equal(l.ask(0, 'sessions', 'a', 16), {granted: 1, tight: true})
  assert.equal(l.ask(1, 'sessions', 'a', 16), {granted: 1, tight: true})
  assert.equal(l.ask(0, 'sessions', 'a', 16), {granted: 1, tight: true})
  assert.equal(l.ask(1, 'sessions', 'a', 1), {granted: 0, tight: true})
  assert.is(l.used('sessions', 'a'), 10)
})

test('over-asking is clamped to MAX_ASK and to what is left', () => {
  const l = new ShareLedger({sessions: 100000}, 1)
  assert.equal(l.ask(0, 'sessions', 'a', 1e9), {granted: MAX_ASK, tight: true})
  assert.is(l.heldBy(0, 'sessions', 'a'), MAX_ASK)
  const small = new ShareLedger({s: 3}, 1)
  assert.is(small.ask(0, 's', 'a', MAX_ASK).granted, 3)
  assert.is(small.ask(0, 's', 'a', MAX_ASK).granted, 0)
})

test('malformed asks throw ShareError and change nothing', () => {
  const l = new ShareLedger(caps, 2)
  const bad: Array<[number, unknown, unknown, unknown]> = [
    [0, 'tunnels', 'a', 0], [0, 'tunnels', 'a', -1], [0, 'tunnels', 'a', 1.5], [0, 'tunnels', 'a', NaN], [0, 'tunnels', 'a', '2'],
    [0, 'nope', 'a', 1], [0, '__proto__', 'a', 1], [0, 'constructor', 'a', 1], [0, 'tunnels', 7, 1], [0, 'tunnels', 'x'.repeat(MAX_KEY_LENGTH + 1), 1],
    [-1, 'tunnels', 'a', 1], [0.5, 'tunnels', 'a', 1],
  ]
  for (const [w, pool, key, n] of bad) {
    assert.throws(() => l.ask(w, pool as string, key as string, n as number), (e: Error) => e instanceof ShareError, `ask ${String(pool)} ${String(n)}`)
    assert.throws(() => l.giveBack(w, pool as string, key as string, n as number), (e: Error) => e instanceof ShareError)
  }
  assert.is(l.keys, 0)
})

test('giving back more than held, or what was never leased, is clamped to what the worker holds', () => {
  const l = new ShareLedger(caps, 1)
  l.ask(0, 'tunnels', 'a', 2)
  l.ask(1, 'tunnels', 'a', 1)
  // Worker 1 tries to free worker 0's units by returning too many: only its own one goes.
  assert.is(l.giveBack(1, 'tunnels', 'a', 3), 1)
  assert.is(l.giveBack(1, 'tunnels', 'a', 1), 0)
  assert.is(l.giveBack(1, 'tunnels', 'never', 5), 0)
  assert.is(l.used('tunnels', 'a'), 2)
  assert.is(l.heldBy(0, 'tunnels', 'a'), 2)
  assert.is(l.ask(1, 'tunnels', 'a', 5).granted, 1)
  assert.is(l.ask(1, 'tunnels', 'a', 1).granted, 0)
})

test('a dead worker\'s leases are reclaimed, and only its own', () => {
  const l = new ShareLedger(caps, 2)
  l.ask(0, 'tunnels', 'a', 1)
  l.ask(1, 'tunnels', 'a', 1)
  l.ask(1, 'tunnels', 'a', 1)
  l.ask(1, 'sessions', 'b', 16)
  assert.is(l.ask(0, 'tunnels', 'a', 1).granted, 0)
  assert.is(l.drop(1), 2 + 16)
  assert.is(l.drop(1), 0)
  assert.is(l.used('tunnels', 'a'), 1)
  assert.is(l.used('sessions', 'b'), 0)
  assert.is(l.heldBy(0, 'tunnels', 'a'), 1)
  // What it held is free for the others (and for its successor).
  assert.is(l.ask(0, 'tunnels', 'a', 1).granted, 1)
  assert.is(l.ask(2, 'tunnels', 'a', 1).granted, 1)
  assert.is(l.ask(2, 'tunnels', 'a', 1).granted, 0)
  assert.equal(l.holders('tunnels', 'a', 2), [0])
})

test('keys with nothing leased are forgotten: memory follows leases, not history', () => {
  const l = new ShareLedger(caps, 1)
  for (let i = 0; i < 1000; i++) {
    l.ask(0, 'sessions', `id${i}`, 1)
    l.giveBack(0, 'sessions', `id${i}`, 1)
  }
  assert.is(l.keys, 0)
})

test('a hostile sequence never leaves more leased than the cap, and a full return frees everything', () => {
  let seed = 12345
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n)
  const l = new ShareLedger({s: 7}, 3)
  for (let i = 0; i < 5000; i++) {
    const w = rnd(3)
    const op = rnd(4)
    if (op === 0) l.drop(w)
    else if (op === 1) l.giveBack(w, 's', 'k', 1 + rnd(10))
    else l.ask(w, 's', 'k', 1 + rnd(200))
    const sum = [0, 1, 2].reduce((a, x) => a + l.heldBy(x, 's', 'k'), 0)
    assert.ok(sum <= 7, `leased ${sum}`)
    assert.is(l.used('s', 'k'), sum)
  }
  for (const w of [0, 1, 2]) l.drop(w)
  assert.is(l.keys, 0)
})

test('wallet: a block is asked once, then opens use spare units without a round trip', () => {
  const l = new ShareLedger({sessions: 1000}, 2)
  const w = new ShareWallet(16)
  assert.is(w.take('sessions', 'a'), false)
  assert.is(w.want('sessions', 'a'), 16)
  w.add('sessions', 'a', l.ask(0, 'sessions', 'a', 16))
  for (let i = 0; i < 16; i++) assert.ok(w.take('sessions', 'a'))
  assert.is(w.take('sessions', 'a'), false)
  // Releasing keeps one block spare; all of it goes back once idle.
  let back = 0
  for (let i = 0; i < 15; i++) back += w.release('sessions', 'a')
  assert.is(back, 0)
  back += w.release('sessions', 'a')
  assert.is(back, 16)
  assert.is(w.held('sessions', 'a'), 0)
  assert.is(w.release('sessions', 'a'), 0, 'a release with nothing used gives nothing')
})

test('wallet: when the pool is tight it asks one at a time and keeps no spare; a recall gives spare back', () => {
  const l = new ShareLedger({tunnels: 3}, 2)
  const w0 = new ShareWallet(16)
  const w1 = new ShareWallet(16)
  w0.add('tunnels', 'a', l.ask(0, 'tunnels', 'a', w0.want('tunnels', 'a')))
  assert.is(w0.held('tunnels', 'a'), 1)
  assert.ok(w0.take('tunnels', 'a'))
  assert.is(w0.want('tunnels', 'a'), 1)
  w1.add('tunnels', 'a', l.ask(1, 'tunnels', 'a', 16))
  assert.ok(w1.take('tunnels', 'a'))
  w1.add('tunnels', 'a', l.ask(1, 'tunnels', 'a', 1))
  assert.ok(w1.take('tunnels', 'a'))
  w0.add('tunnels', 'a', l.ask(0, 'tunnels', 'a', 1))
  assert.is(w0.take('tunnels', 'a'), false, 'the limit+1-th is refused on the other worker')
  const back = w1.release('tunnels', 'a')
  assert.is(back, 1, 'tight: a released unit goes straight back')
  l.giveBack(1, 'tunnels', 'a', back)
  w0.add('tunnels', 'a', l.ask(0, 'tunnels', 'a', 1))
  assert.ok(w0.take('tunnels', 'a'))
  // A recall: spare units go back even when the wallet thought the pool roomy.
  const w2 = new ShareWallet(16)
  w2.add('x', 'k', {granted: 10, tight: false})
  w2.take('x', 'k')
  assert.is(w2.recall('x', 'k'), 9)
  assert.is(w2.held('x', 'k'), 1)
  assert.is(w2.spare('x', 'k'), 0)
})

test.run()
