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

test('early drop: none below START, RATE% at START rising to FULL, for sources at or above an even share', () => {
  let dice = 0
  const s = new Startups<string>({start: 2, rate: 50, full: 6, perSource: 10}, () => dice)
  assert.ok(s.admit('a', 'a1').ok)
  assert.ok(s.admit('a', 'a2').ok)
  assert.ok(s.admit('b', 'b1').ok, 'b holds nothing: below its share (6 / 2 sources)')
  assert.ok(s.admit('a', 'a3').ok, 'a holds 2, below its share of 3')
  dice = 0.74
  assert.not.ok(s.admit('a', 'a4').ok, 'a holds its share: p = 75% at 4 pending')
  dice = 0.75
  assert.ok(s.admit('a', 'a4').ok)
  dice = 0.87
  assert.not.ok(s.admit('a', 'a5').ok, 'p = 87.5% at 5 pending')
  dice = 0.88
  assert.ok(s.admit('a', 'a5').ok)
  assert.is(s.size, 6)
})

test('a source below an even share is not early-dropped: a flood from some addresses costs others nothing', () => {
  const s = new Startups<string>({start: 2, rate: 100, full: 100, perSource: 10}, () => 0)
  for (let i = 0; i < 30; i++) for (let j = 0; j < 3; j++) s.admit(`attacker${i}`, `${i}.${j}`)
  assert.ok(s.size < 100)
  assert.ok(s.admit('legit', 'l1').ok, 'holds nothing: admitted whatever the dice say')
  assert.not.ok(s.admit('attacker0', 'x').ok, 'the flooder, at its share, is dropped early')
})

test('at FULL a newcomer below its share evicts the biggest holder\'s oldest; one at its share or equal to the biggest is refused', () => {
  const s = new Startups<string>({start: 4, rate: 100, full: 4, perSource: 10})
  for (const h of ['a1', 'a2', 'a3', 'b1']) assert.ok(s.admit(h[0], h).ok)
  assert.equal(s.admit('legit', 'l1'), {ok: true, evict: 'a1'})
  assert.not.ok(s.admit('a', 'a4').ok, 'a holds the most already: it cannot churn its way in')
  s.remove('a', 'a1') // evicted handles were already forgotten
  assert.is(s.size, 4)
  assert.not.ok(s.admit('b', 'b2').ok, 'b holds its share (4 / 3 sources): no eviction, only churn')
  s.remove('b', 'b1')
  assert.ok(s.admit('c', 'c1').ok, 'below FULL again')
  assert.equal(s.admit('b', 'b2'), {ok: true, evict: 'a2'}, 'b holds nothing now, below its share (4 / 4 sources); a holds the most')
  const even = new Startups<string>({start: 2, rate: 100, full: 2, perSource: 10})
  assert.ok(even.admit('x', 'x1').ok)
  assert.ok(even.admit('y', 'y1').ok)
  assert.not.ok(even.admit('x', 'x2').ok, 'no source holds more than x: refused')
})

test.run()
