import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {parseStartups, sourceKey, Startups} from '../../../src/tunnel/core/startups.js'

test('START:RATE:FULL and N parse; nonsense is refused', () => {
  assert.equal(parseStartups('10:30:100'), {start: 10, rate: 30, full: 100})
  assert.equal(parseStartups('50'), {start: 50, rate: 100, full: 50})
  for (const bad of ['', '10:30', '0:30:100', '10:101:100', '100:30:10', 'x']) assert.throws(() => parseStartups(bad), bad)
})

test('sources: IPv4 addresses, IPv4-mapped as IPv4, IPv6 by /64', () => {
  assert.is(sourceKey('198.51.100.7'), '198.51.100.7')
  assert.is(sourceKey('::ffff:198.51.100.7'), '198.51.100.7')
  assert.is(sourceKey('2001:db8:1:2:aaaa::1'), sourceKey('2001:0db8:1:2::ffff'))
  assert.is.not(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'))
  assert.is(sourceKey('::1'), '0:0:0:0::/64')
})

test('one source never holds more than perSource', () => {
  const s = new Startups<number>({start: 100, rate: 30, full: 100, perSource: 3})
  const r = [1, 2, 3, 4].map((h) => s.admit('a', h).ok)
  assert.equal(r, [true, true, true, false])
  s.remove('a', 2)
  assert.ok(s.admit('a', 5).ok)
  assert.ok(s.admit('b', 6).ok)
})

test('early drop: none below START, RATE% at START, all but eviction at FULL', () => {
  let dice = 0
  const s = new Startups<number>({start: 2, rate: 50, full: 4, perSource: 10}, () => dice)
  assert.ok(s.admit('a', 1).ok)
  assert.ok(s.admit('a', 2).ok)
  dice = 0.49
  assert.not.ok(s.admit('b', 3).ok, 'p = 50% at START')
  dice = 0.5
  assert.ok(s.admit('b', 3).ok)
  dice = 0.74
  assert.not.ok(s.admit('c', 4).ok, 'p = 75% half way')
  dice = 0.99
  assert.ok(s.admit('c', 4).ok)
  assert.is(s.size, 4)
})

test('at FULL a newcomer from a smaller source evicts the biggest holder\'s oldest; an equal one is refused', () => {
  const s = new Startups<string>({start: 4, rate: 100, full: 4, perSource: 10})
  for (const h of ['a1', 'a2', 'a3', 'b1']) assert.ok(s.admit(h[0], h).ok)
  assert.equal(s.admit('legit', 'l1'), {ok: true, evict: 'a1'})
  assert.not.ok(s.admit('a', 'a4').ok, 'a holds the most already: it cannot churn its way in')
  s.remove('a', 'a1') // evicted handles were already forgotten
  assert.is(s.size, 4)
  assert.equal(s.admit('b', 'b2'), {ok: true, evict: 'a2'}, 'b holds 1, a holds 2')
  const even = new Startups<string>({start: 2, rate: 100, full: 2, perSource: 10})
  assert.ok(even.admit('x', 'x1').ok)
  assert.ok(even.admit('y', 'y1').ok)
  assert.not.ok(even.admit('x', 'x2').ok, 'no source holds more than x: refused')
})

test.run()
