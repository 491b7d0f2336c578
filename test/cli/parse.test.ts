import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {parseDuration, parseWorkers, UsageError} from '../../src/cli/parse.js'

test('durations: plain seconds as before, or with ms, s, m, h', () => {
  for (const [s, secs] of [['10', 10], ['0', 0], ['0.5', 0.5], ['500ms', 0.5], ['30s', 30], ['5m', 300], ['1h', 3600], ['1.5m', 90]] as const) assert.is(parseDuration(s, '--x'), secs, s)
  for (const bad of ['', '-1', '5x', 'm', '1 day']) assert.throws(() => parseDuration(bad, '--keepalive'), (e: Error) => e instanceof UsageError && e.message.startsWith('--keepalive: '), bad)
})

test('--workers: 1 to max, or auto (one per CPU, at most max); anything else is a usage error', () => {
  assert.is(parseWorkers('1', '--workers', 8, 64), 1)
  assert.is(parseWorkers('64', '--workers', 8, 64), 64)
  assert.is(parseWorkers('auto', '--workers', 8, 64), 8)
  assert.is(parseWorkers('auto', '--workers', 128, 64), 64)
  for (const bad of ['0', '65', '-1', '1.5', 'two', '', ' ', '1e1', '0x2']) {
    assert.throws(() => parseWorkers(bad, '--workers', 8, 64), (e: Error) => e instanceof UsageError && /--workers: .* is not a number of workers from 1 to 64, or auto/.test(e.message), bad)
  }
})

test.run()
