import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {parseRule, Policy} from '../../../src/tunnel/core/policy.js'

test('no rules: everything is allowed', () => {
  const p = new Policy([])
  assert.ok(p.allowsName('anyone', 'x.example', 1))
  assert.ok(p.allowsAddress('anyone', '198.18.0.1', 1))
})

test('CIDR, host, wildcard, port lists and IPv6', () => {
  const p = new Policy(['alice=198.18.0.0/15:22,80-81', '*=intranet.example:443', 'bob=*.corp.example', 'carol=[2001:db8::/32]:*'].map(parseRule))
  assert.ok(p.allowsAddress('alice', '198.19.1.1', 22))
  assert.ok(p.allowsAddress('alice', '198.19.1.1', 81))
  assert.not.ok(p.allowsAddress('alice', '198.19.1.1', 82))
  assert.not.ok(p.allowsAddress('alice', '203.0.113.1', 22))
  assert.ok(p.allowsAddress('alice', '::ffff:198.18.0.5', 22), 'IPv4-mapped addresses match IPv4 rules')
  assert.ok(p.allowsName('dave', 'intranet.example', 443))
  assert.is(p.allowsName('dave', 'intranet.example', 80), false)
  assert.is(p.allowsName('alice', 'db.example', 22), undefined, 'a name may still match alice\'s CIDR once resolved')
  assert.ok(p.allowsName('bob', 'git.corp.example', 9418))
  assert.is(p.allowsName('bob', 'corp.example.evil', 1), false)
  assert.ok(p.allowsAddress('carol', '2001:db8::5', 1))
  assert.not.ok(p.allowsAddress('carol', '2001:db9::5', 1))
})

test('bad rules are refused with a message naming the rule', () => {
  for (const bad of ['nobody', '=198.18.0.0/15', 'a=198.18.0.0/99', 'a=host:0', 'a=host:70000', 'a=[2001:db8::/32']) {
    assert.throws(() => parseRule(bad), (e: Error) => e.message.includes(bad) || /CIDR|port|IDENTITY|\]/.test(e.message), bad)
  }
})

test.run()
