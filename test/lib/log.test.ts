import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {limitRepeats, repeatKey, type Level} from '../../src/lib/log.js'

/** A clock the test moves by hand: no wall-clock time in the assertions. */
function fakeClock(): {now(): number; later(fn: () => void, ms: number): ReturnType<typeof setTimeout>; advance(ms: number): void} {
  let t = 0
  let timers: {at: number; fn: () => void}[] = []
  return {
    now: () => t,
    later(fn, ms) {
      timers.push({at: t + ms, fn})
      return 0 as unknown as ReturnType<typeof setTimeout>
    },
    advance(ms) {
      t += ms
      const due = timers.filter((x) => x.at <= t)
      timers = timers.filter((x) => x.at > t)
      for (const x of due) x.fn()
    },
  }
}

test('lines that differ only in numbers share a key; a field key overrides', () => {
  assert.is(repeatKey('warn', 'refused 127.0.0.2:40000: 10 already'), repeatKey('warn', 'refused 127.0.0.9:51234: 10 already'))
  assert.is.not(repeatKey('warn', 'a 1'), repeatKey('info', 'a 1'))
  assert.is(repeatKey('warn', 'denied x', {key: 'k'}), repeatKey('warn', 'denied y', {key: 'k'}))
})

test('a flood becomes the burst plus one summary line per interval', () => {
  const out: string[] = []
  const clock = fakeClock()
  const log = limitRepeats((l: Level, m: string) => out.push(`${l} ${m}`), {burst: 3, intervalMs: 1000}, clock)
  for (let i = 0; i < 5000; i++) log('warn', `refused 127.0.0.2:${1000 + i}: full`)
  log('info', 'tunnel up')
  assert.is(out.length, 4)
  clock.advance(1000)
  assert.is(out.length, 5)
  assert.match(out[4], /^warn refused 127\.0\.0\.2:5999: full … \(4997 more suppressed\)$/)
  log('warn', 'refused 127.0.0.3:1: full')
  assert.is(out.length, 6, 'a new interval prints again')
})

test('many distinct keys share one budget beyond the key table', () => {
  const out: string[] = []
  const log = limitRepeats((l: Level, m: string) => out.push(m), {burst: 2, intervalMs: 1000}, fakeClock())
  for (let i = 0; i < 2000; i++) log('warn', `denied name-${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26) % 26)}${String.fromCharCode(97 + Math.floor(i / 676))}`)
  assert.ok(out.length < 600, `${out.length} lines`)
})

test('fields reach the writer, the summary line counts the rest, and flushAll reports an open interval', () => {
  const out: {m: string; f?: Record<string, unknown>}[] = []
  const log = limitRepeats((_l: Level, m: string, f?: Record<string, unknown>) => out.push({m, f}), {burst: 2, intervalMs: 1000}, fakeClock())
  for (let i = 0; i < 5; i++) log('info', `session ${i} closed`, {key: 'k', bytes: i})
  assert.is(out.length, 2)
  assert.equal(out[1].f, {key: 'k', bytes: 1})
  log.flushAll()
  assert.is(out.length, 3)
  assert.is(out[2].m, 'session 4 closed … (3 more suppressed)')
  assert.equal(out[2].f, {key: 'k', bytes: 4, suppressed: 3})
  log.flushAll()
  assert.is(out.length, 3, 'nothing twice')
})

test.run()
