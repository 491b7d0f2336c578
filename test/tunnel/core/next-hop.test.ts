import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {FALL, GateGroup, RISE} from '../../../src/tunnel/core/gate-group.js'
import {allowsAddress, allowsName, entryIsSelf, parseHopRule, placeInPath, reachesSelf} from '../../../src/tunnel/core/next-hop.js'

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

test('rules first: a name no rule could allow is refused before any lookup (no DNS oracle)', () => {
  const cidrOnly = ['198.18.0.0/15'].map(parseHopRule)
  assert.is(allowsName(cidrOnly, 'anything.example', 4500), undefined, 'an address rule might allow it: resolve')
  const named = ['gate.example:4433', '198.18.0.0/15:4500'].map(parseHopRule)
  assert.is(allowsName(named, 'other.example', 4433), false, 'only a name rule covers port 4433')
  assert.is(allowsName(named, 'other.example', 22), false, 'no rule covers the port')
  assert.is(allowsName(named, 'gate.example', 4433), true)
})

test('reachesSelf: exact listeners, wildcard listeners over loopback and interface addresses, unspecified and mapped forms', () => {
  const local = ['127.0.0.1', '::1', '198.18.0.5', 'fe80::1']
  const exact = [{address: '127.0.0.1', port: 4500}]
  assert.ok(reachesSelf('127.0.0.1', 4500, exact, local))
  assert.ok(reachesSelf('::ffff:127.0.0.1', 4500, exact, local), 'IPv4-mapped')
  assert.ok(reachesSelf('0.0.0.0', 4500, exact, local), 'connect(0.0.0.0) is the host itself')
  assert.ok(reachesSelf('::', 4500, exact, local))
  assert.not.ok(reachesSelf('127.0.0.2', 4500, exact, local), 'a listener on 127.0.0.1 does not take 127.0.0.2')
  assert.not.ok(reachesSelf('127.0.0.1', 4501, exact, local), 'another port')
  const wild = [{address: '0.0.0.0', port: 4500}]
  for (const ip of ['127.0.0.1', '127.3.2.1', '198.18.0.5', '::1', 'fe80::1', '0.0.0.0']) assert.ok(reachesSelf(ip, 4500, wild, local), ip)
  assert.not.ok(reachesSelf('198.18.0.6', 4500, wild, local), 'another host')
  assert.ok(reachesSelf('198.18.0.5', 4500, [{address: '::', port: 4500}], local))
  assert.not.ok(reachesSelf('not an address', 4500, wild, local))
  assert.not.ok(reachesSelf('127.0.0.1', 4500, [], local), 'not listening yet')
})

test('placeInPath: named twice, hop count over the limit or over our index (a loop), else our index', () => {
  const isMe = (e: string): boolean => e === 'r:1'
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn()
    } catch (e) {
      return (e as {code?: string}).code
    }
  }
  assert.is(placeInPath(['r:1', 'g:2'], 0, isMe, 'r', 8), 0)
  assert.is(placeInPath(['a:1', 'b:1', 'r:1', 'g:2'], 2, isMe, 'r', 8), 2)
  assert.is(placeInPath(['a:1', 'r:1', 'g:2'], 0, isMe, 'r', 8), 1, 'relays before us that predate HOPS count nothing')
  assert.is(code(() => placeInPath(['r:1', 'r:1', 'g:2'], 0, isMe, 'r', 8)), 'TK_HOP_LOOP', 'the issue 9 frame')
  assert.is(code(() => placeInPath(['r:1', 'b:1', 'g:2'], 2, isMe, 'r', 8)), 'TK_HOP_LOOP', 'back from b through an alias')
  assert.is(code(() => placeInPath(['a:1', 'r:1', 'g:2'], 8, isMe, 'r', 8)), 'TK_HOP_LIMIT')
  assert.is(code(() => placeInPath(['a:1', 'b:1', 'r:1', 'g:2'], 2, isMe, 'r', 2)), 'TK_HOP_LIMIT', 'path longer than --max-hops')
  assert.is(code(() => placeInPath(['x:1', 'g:2'], 0, isMe, 'r', 8)), 'TK_BAD_RELAY_FRAME')
  assert.is(code(() => placeInPath(['g:2', 'r:1'], 0, isMe, 'r', 8)), 'TK_BAD_RELAY_FRAME', 'last node')
})

test('entryIsSelf: an address literal our name resolves to or we listen on, at our port; never another port or a name', () => {
  // --name localhost (resolved at start to 127.0.0.1 and ::1), listening on 127.0.0.1:4500.
  const self = {addresses: ['127.0.0.1', '::1'], ports: [4500], listens: [{address: '127.0.0.1', port: 4500}], local: ['127.0.0.1', '192.0.2.7']}
  assert.ok(entryIsSelf('127.0.0.1:4500', self))
  assert.ok(entryIsSelf('[::1]:4500', self))
  assert.ok(entryIsSelf('127.0.0.1', self), 'no port: the port we listen on')
  assert.not.ok(entryIsSelf('127.0.0.1:4501', self), 'another relay of this host')
  assert.not.ok(entryIsSelf('192.0.2.7:4500', self), 'an interface address we do not listen on')
  assert.not.ok(entryIsSelf('localhost.example:4500', self), 'a name is never looked up')
  assert.not.ok(entryIsSelf('0.0.0.0:4500', self))
  // Listening on the wildcard: any local address at our port is us.
  const wild = {addresses: [], ports: [4500], listens: [{address: '0.0.0.0', port: 4500}], local: ['127.0.0.1', '192.0.2.7']}
  assert.ok(entryIsSelf('192.0.2.7:4500', wild))
  assert.ok(entryIsSelf('127.0.0.2:4500', wild))
  assert.not.ok(entryIsSelf('198.51.100.1:4500', wild))
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
