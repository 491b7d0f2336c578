import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {REPLAY_WINDOW, ReplayWindow} from '../../../src/esp/core/replay.js'
import {fuzz} from '../../helpers/fuzz.js'

test('replay window: 0 is never valid, each number once, anything new above the top', () => {
  const w = new ReplayWindow()
  assert.not.ok(w.check(0))
  for (const s of [1, 2, 5, 3]) assert.ok(w.accept(s), `${s}`)
  for (const s of [1, 2, 3, 5]) assert.not.ok(w.accept(s), `${s} again`)
  assert.ok(w.accept(4))
  assert.ok(w.accept(2 ** 32 - 1), 'the last 32-bit number')
  assert.is(w.top, 2 ** 32 - 1)
})

test(`replay window: ${REPLAY_WINDOW} numbers wide, exactly — top - ${REPLAY_WINDOW - 1} passes, top - ${REPLAY_WINDOW} does not`, () => {
  const w = new ReplayWindow()
  w.accept(5000)
  assert.ok(w.check(5000 - REPLAY_WINDOW + 1))
  assert.not.ok(w.check(5000 - REPLAY_WINDOW))
  // Seen numbers inside the window stay seen after the window slides by less than its width.
  for (let s = 3900; s < 5000; s++) w.accept(s)
  w.accept(5020)
  for (let s = 5020 - REPLAY_WINDOW + 1; s < 5000; s++) assert.not.ok(w.check(s), `${s} was seen`)
  for (let s = 5001; s < 5020; s++) assert.ok(w.check(s), `${s} was not`)
})

test('replay window: check() alone does not move it (a packet whose ICV fails leaves no trace)', () => {
  const w = new ReplayWindow()
  w.accept(10)
  assert.ok(w.check(100000))
  assert.is(w.top, 10)
  assert.ok(w.check(9))
})

test('replay window: a jump far beyond the window clears every old bit', () => {
  const w = new ReplayWindow()
  for (let s = 1; s <= 2000; s++) w.accept(s)
  w.accept(1_000_000)
  for (let s = 1_000_000 - REPLAY_WINDOW + 1; s < 1_000_000; s++) assert.ok(w.check(s), `${s}`)
})

test('replay window = its definition (a set of seen numbers, a top, a width) on 2000 seeded sequences', () => fuzz('replay window', (r) => {
  const w = new ReplayWindow(r.pick([32, 64, 1024]))
  const seen = new Set<number>()
  let top = 0
  for (let i = 0; i < 60; i++) {
    const s = Math.max(0, r.chance(0.5) ? top + r.int(-w.size - 40, 100) : r.below(2 ** 32))
    const want = s !== 0 && !seen.has(s) && (s > top || top - s < w.size)
    assert.is(w.accept(s), want, `seq ${s} top ${top}`)
    if (want) {
      seen.add(s)
      top = Math.max(top, s)
    }
  }
}, 2000))

test.run()
