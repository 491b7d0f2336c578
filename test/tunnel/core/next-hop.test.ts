import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {FALL, GateGroup, RISE} from '../../../src/tunnel/core/gate-group.js'
import {allowsAddress, allowsName, parseHopRule} from '../../../src/tunnel/core/next-hop.js'

test('--allow-next: names, wildcards, CIDRs and ports', () => {
  const rules = ['relay-c.example:4500', '*.gates.example', '198.18.0.0/15', '[2001:db8::/32]:4433'].map(parseHopRule)
  assert.ok(allowsName(rules, 'relay-c.example', 4500))
  assert.is(allowsName(rules, 'relay-c.example', 4501), undefined, 'a CIDR rule may still match the address')
  assert.ok(allowsName(rules, 'gw1.gates.example', 1))
  assert.ok(allowsAddress(rules, '198.19.2.3', 9))
  assert.not.ok(allowsAddress(rules, '203.0.113.5', 9))
  assert.ok(allowsAddress(rules, '2001:db8::7', 4433))
  assert.not.ok(allowsAddress(rules, '2001:db8::7', 4434))
  assert.is(allowsName([], 'anything', 1), false, 'no rules: nothing is allowed')
  for (const bad of ['bad host!', '198.18.0.0/40', 'x.example:0']) assert.throws(() => parseHopRule(bad))
})

test('groups: least-connections, round-robin, fall and rise', () => {
  const g = new GateGroup('gates', [{host: '198.18.1.1', port: 4433}, {host: '198.18.1.2', port: 4433}], 'least-connections')
  const [a, b] = g.members
  a.tunnels = 3
  assert.is(g.candidates()[0], b)
  for (let i = 0; i < FALL - 1; i++) assert.is(g.report(b, false), null)
  assert.match(g.report(b, false)!, /down/)
  assert.equal(g.candidates(), [a, b], 'a down gate is tried last')
  for (let i = 0; i < RISE - 1; i++) assert.is(g.report(b, true), null)
  assert.match(g.report(b, true)!, /up/)
  const rr = new GateGroup('rr', [{host: '198.18.1.1', port: 1}, {host: '198.18.1.2', port: 1}], 'round-robin')
  assert.not.equal(rr.candidates()[0], rr.candidates()[0])
})

test.run()
