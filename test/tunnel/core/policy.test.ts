import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {parseListenRule, parseRule, Policy} from '../../../src/tunnel/core/policy.js'

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

test('remote forwards without listen rules: loopback and ports from 1024 only; a wildcard binds loopback', () => {
  const p = new Policy([])
  assert.equal(p.listen('mallory', '0.0.0.0', 47999), {bind: '127.0.0.1', asked: '0.0.0.0'})
  assert.equal(p.listen('mallory', '::', 47999), {bind: '::1', asked: '::'})
  assert.equal(p.listen('mallory', '', 47999), {bind: '127.0.0.1', asked: '0.0.0.0'})
  assert.equal(p.listen('mallory', 'localhost', 0), {bind: '127.0.0.1'})
  assert.equal(p.listen('mallory', '127.0.0.1', 8080), {bind: '127.0.0.1'})
  assert.ok('denied' in p.listen('mallory', '127.0.0.1', 22), 'privileged port')
  assert.ok('denied' in p.listen('mallory', '198.18.0.1', 8080), 'a specific outside address is refused, not moved')
  assert.ok('denied' in p.listen('mallory', 'gate.example', 8080), 'names are not looked up')
})

test('listen rules: who may listen where; the wildcard only when a rule covers it', () => {
  const p = new Policy([], ['alice=0.0.0.0:8000-8099', 'bob=127.0.0.1:9000', '*=198.18.0.0/15:7000', 'carol=*'].map(parseListenRule))
  assert.equal(p.listen('alice', '0.0.0.0', 8080), {bind: '0.0.0.0'})
  assert.ok('denied' in p.listen('alice', '0.0.0.0', 9000))
  assert.equal(p.listen('bob', '0.0.0.0', 9000), {bind: '127.0.0.1', asked: '0.0.0.0'})
  assert.ok('denied' in p.listen('bob', '127.0.0.1', 9001))
  assert.ok('denied' in p.listen('bob', '127.0.0.1', 0), 'port 0 needs a rule for every unprivileged port')
  assert.equal(p.listen('dave', '198.18.0.9', 7000), {bind: '198.18.0.9'})
  assert.ok('denied' in p.listen('dave', '127.0.0.1', 8080), 'with rules, loopback needs one too')
  assert.equal(p.listen('carol', '::', 0), {bind: '::'})
  assert.throws(() => parseListenRule('alice=gate.example:80'), /IP address/)
})

test.run()
