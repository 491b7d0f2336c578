import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {parsePrimaryMessage, parseWorkerMessage} from '../../../src/tunnel/core/worker-ipc.js'

const counts = {tunnels: 1, preauth: 0, sessions: 2, bytes: {out: 10, back: 20}, opensRefused: [['TK_DENIED', 1]], handshakeFailures: [], limitHits: [['max-sessions-per-identity', 3]]}

test('well-formed worker messages come back typed', () => {
  assert.equal(parseWorkerMessage({t: 'ready'}), {t: 'ready'})
  assert.equal(parseWorkerMessage({t: 'hello', x: 1}), {t: 'hello'})
  assert.equal(parseWorkerMessage({t: 'settled', id: 9, up: true}), {t: 'settled', id: 9, up: true})
  assert.equal(parseWorkerMessage({t: 'ask', id: 7, pool: 'sessions', key: 'alice', n: 16, extra: 'ignored'}), {t: 'ask', id: 7, pool: 'sessions', key: 'alice', n: 16})
  assert.equal(parseWorkerMessage({t: 'give', pool: 'gate', key: '', n: 3}), {t: 'give', pool: 'gate', key: '', n: 3})
  assert.equal(parseWorkerMessage({t: 'counts', id: 1, counts}), {t: 'counts', id: 1, counts})
  assert.equal(parseWorkerMessage({t: 'reloaded', id: 2, changed: ['CA']}), {t: 'reloaded', id: 2, changed: ['CA']})
  assert.equal(parseWorkerMessage({t: 'reload-failed', id: 2, message: 'bad key'}), {t: 'reload-failed', id: 2, message: 'bad key'})
})

test('hostile worker messages are refused with a reason, never thrown', () => {
  const bad: unknown[] = [
    null, undefined, 0, 'ask', [], [{t: 'ready'}], {}, {t: 5}, {t: 'nope'}, {t: 'x'.repeat(1e6)},
    {t: 'ask', id: -1, pool: 'sessions', key: 'a', n: 1}, {t: 'ask', id: 2 ** 40, pool: 'sessions', key: 'a', n: 1},
    {t: 'ask', id: 1, pool: '__proto__', key: 'a', n: 1}, {t: 'ask', id: 1, pool: 'toString', key: 'a', n: 1},
    {t: 'ask', id: 1, pool: 'sessions', key: {}, n: 1}, {t: 'ask', id: 1, pool: 'sessions', key: 'k'.repeat(300), n: 1},
    {t: 'ask', id: 1, pool: 'sessions', key: 'a', n: 0}, {t: 'ask', id: 1, pool: 'sessions', key: 'a', n: Infinity},
    {t: 'ask', id: 1, pool: 'sessions', key: 'a', n: 1e300}, {t: 'ask', id: 1, pool: 'sessions', key: 'a', n: '1'},
    {t: 'give', pool: 'sessions', key: 'a', n: -5}, {t: 'give', pool: 'sessions', key: 'a', n: NaN},
    {t: 'counts', id: 1}, {t: 'counts', id: 1, counts: {...counts, tunnels: -1}}, {t: 'counts', id: 1, counts: {...counts, bytes: null}},
    {t: 'counts', id: 1, counts: {...counts, limitHits: [['a{b="c"}', 1]]}}, {t: 'counts', id: 1, counts: {...counts, limitHits: Array.from({length: 65}, (_, i) => [`l${i}`, 1])}},
    {t: 'counts', id: 1, counts: {...counts, opensRefused: [['x', 1, 2]]}}, {t: 'counts', id: 1, counts: {...counts, opensRefused: {x: 1}}},
    {t: 'reloaded', id: 1, changed: 'CA'}, {t: 'reloaded', id: 1, changed: [1]}, {t: 'reloaded', id: 1, changed: Array(33).fill('x')},
    {t: 'reloaded', id: 1, changed: ['x'.repeat(1001)]}, {t: 'settled', up: false}, {t: 'settled', id: -1, up: false}, {t: 'settled', id: 1.5, up: true}, {t: 'settled', id: 1}, {t: 'reload-failed', id: 1}, {t: 'reload-failed', id: 1, message: 'm'.repeat(5000)},
  ]
  for (const m of bad) {
    const r = parseWorkerMessage(m)
    assert.type(r, 'string', `dropped: ${JSON.stringify(m)?.slice(0, 80)}`)
    assert.ok((r as string).length < 120, 'a reason of bounded length')
  }
})

test('primary messages are checked by the worker too', () => {
  assert.equal(parsePrimaryMessage({t: 'grant', id: 3, granted: 2, tight: false}), {t: 'grant', id: 3, granted: 2, tight: false})
  assert.equal(parsePrimaryMessage({t: 'recall', pool: 'tunnels', key: 'bob'}), {t: 'recall', pool: 'tunnels', key: 'bob'})
  assert.equal(parsePrimaryMessage({t: 'conn', id: 4}), {t: 'conn', id: 4})
  assert.equal(parsePrimaryMessage({t: 'evict', id: 4}), {t: 'evict', id: 4})
  const files = {'/etc/tunkit/policy': 'alice=198.18.0.0/15', '/root/.config/tunkit/gate.json': null}
  assert.equal(parsePrimaryMessage({t: 'config', files}), {t: 'config', files})
  assert.equal(parsePrimaryMessage({t: 'reload', id: 5, files}), {t: 'reload', id: 5, files})
  const badFiles = [undefined, null, [], 'x', {'': 'x'}, {a: 1}, {a: {}}, {['p'.repeat(4097)]: 'x'}, Object.fromEntries(Array.from({length: 65}, (_, i) => [`f${i}`, null]))]
  for (const m of [null, {t: 'conn'}, {t: 'evict', id: 2 ** 40}, {t: 'grant', id: 1, granted: -1, tight: true}, {t: 'grant', id: 1, granted: 1}, {t: 'recall', pool: 'x', key: 'a'}, {t: 'count', id: 'a'}, {t: 'kill'},
    {t: 'reload', id: 1}, {t: 'reload', files}, ...badFiles.map((f) => ({t: 'config', files: f})), ...badFiles.map((f) => ({t: 'reload', id: 1, files: f}))]) {
    assert.type(parsePrimaryMessage(m), 'string')
  }
})

test.run()
