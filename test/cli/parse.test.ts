import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {parseDuration, UsageError} from '../../src/cli/parse.js'

test('durations: plain seconds as before, or with ms, s, m, h', () => {
  for (const [s, secs] of [['10', 10], ['0', 0], ['0.5', 0.5], ['500ms', 0.5], ['30s', 30], ['5m', 300], ['1h', 3600], ['1.5m', 90]] as const) assert.is(parseDuration(s, '--x'), secs, s)
  for (const bad of ['', '-1', '5x', 'm', '1 day']) assert.throws(() => parseDuration(bad, '--keepalive'), (e: Error) => e instanceof UsageError && e.message.startsWith('--keepalive: '), bad)
})

test.run()
