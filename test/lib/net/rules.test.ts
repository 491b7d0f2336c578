import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {matchAddress, matchName, parsePorts, parseTarget, splitTarget, type Match} from '../../../src/lib/net/rules.js'

const rule = (text: string, strict = false): Match => {
  const {target, ports} = splitTarget(text)
  return {target: parseTarget(target, strict), ports: parsePorts(ports)}
}

test('ports: "*", single, lists and ranges; bad ones refused', () => {
  assert.is(parsePorts('*'), null)
  assert.is(parsePorts(''), null)
  assert.equal(parsePorts('22'), [[22, 22]])
  assert.equal(parsePorts('80,443,8000-8100'), [[80, 80], [443, 443], [8000, 8100]])
  for (const bad of ['0', '70000', '9-8', 'x', '1,,2', '-5']) assert.throws(() => parsePorts(bad), /bad port list/, bad)
})

test('targets: "*", IPv4/IPv6 CIDRs and addresses, bracketed IPv6, host names', () => {
  assert.equal(parseTarget('*'), {kind: 'any'})
  assert.is(parseTarget('198.18.0.0/15').kind, 'cidr')
  assert.is((parseTarget('203.0.113.5') as {cidr: [unknown, number]}).cidr[1], 32)
  assert.is((parseTarget('2001:db8::1') as {cidr: [unknown, number]}).cidr[1], 128)
  assert.equal(parseTarget('Intranet.Example'), {kind: 'host', pattern: 'intranet.example'})
  assert.equal(splitTarget('[2001:db8::/32]:443'), {target: '2001:db8::/32', ports: '443'})
  assert.equal(splitTarget('[2001:db8::1]'), {target: '2001:db8::1', ports: ''})
  assert.equal(splitTarget('host.example:22,80'), {target: 'host.example', ports: '22,80'})
  assert.throws(() => splitTarget('[2001:db8::1'), /missing "\]"/)
  assert.throws(() => splitTarget('[2001:db8::1]x'), /junk/)
  assert.throws(() => parseTarget('198.18.0.0/33'), /CIDR/)
  assert.throws(() => parseTarget('*', true), /host name/, 'strict: no catch-all')
  assert.throws(() => parseTarget('bad host!', true), /host name/)
})

test('names and addresses decide by target and port', () => {
  const rules = ['198.18.0.0/15:22', '[2001:db8::/32]:80-81', '*.corp.example:*', 'exact.example:443'].map((t) => rule(t))
  assert.ok(matchName(rules, 'git.CORP.example', 9418))
  assert.is(matchName(rules, 'corp.example.evil', 9), false)
  assert.ok(matchName(rules, 'exact.example', 443))
  assert.is(matchName(rules, 'exact.example', 22), undefined, 'may still match the CIDR once resolved')
  assert.ok(matchAddress(rules, '198.19.255.1', 22))
  assert.ok(matchAddress(rules, '::ffff:198.18.0.1', 22), 'IPv4-mapped matches IPv4')
  assert.not.ok(matchAddress(rules, '198.19.255.1', 23))
  assert.ok(matchAddress(rules, '2001:db8:1::9', 81))
  assert.not.ok(matchAddress(rules, '2001:db9::9', 81))
  assert.not.ok(matchAddress(rules, '203.0.113.1', 22))
  assert.ok(matchAddress([rule('*')], '203.0.113.1', 1), 'a catch-all allows every address')
  assert.is(matchName([], 'x', 1), false)
})

test.run()
