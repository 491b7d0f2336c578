import * as net from 'node:net'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {formatIPv6, ipv4Bytes, ipv4Mask, ipv4ToU32, ipv6Bytes, isHostName, isIP, isIPv4, isIPv6, unmapIPv4} from '../../../src/lib/net/ip.js'

test('isIPv4/isIPv6 agree with node:net on edge cases', () => {
  const cases = ['198.51.100.7', '01.2.3.4', '1.2.3', '256.1.1.1', '0x1.2.3.4', ' 1.2.3.4', '1.2.3.4\n', '', '::', '::1', '1::',
    'fe80::1%eth0', 'fe80::1%', 'fe80::1%eth0:1', '::ffff:198.51.100.7', '::ffff:1.2.3.04', '::ffff:0x1.2.3.4', '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', ':::', '1::2::3',
    '12345::', '[::1]', '2001:DB8::A', 'example.com']
  for (const c of cases) {
    assert.is(isIPv4(c), net.isIPv4(c), `isIPv4(${JSON.stringify(c)})`)
    assert.is(isIPv6(c), net.isIPv6(c), `isIPv6(${JSON.stringify(c)})`)
    assert.is(isIP(c), net.isIP(c), `isIP(${JSON.stringify(c)})`)
  }
})

test('fuzz: isIPv4/isIPv6 agree with node:net on random strings', () => {
  const alphabet = '0123456789abcdefABCDEF:.%x -'
  for (let i = 0; i < 50000; i++) {
    let s = ''
    for (let n = 1 + Math.floor(Math.random() * 24); n > 0; n--) s += alphabet[Math.floor(Math.random() * alphabet.length)]
    if (isIPv4(s) !== net.isIPv4(s) || isIPv6(s) !== net.isIPv6(s)) assert.unreachable(JSON.stringify(s))
  }
})


test('IPv4: bytes, masks, numbers, mapped addresses', () => {
  assert.equal([...ipv4Bytes('198.51.100.7')], [198, 51, 100, 7])
  assert.is(ipv4Mask(24), '255.255.255.0')
  assert.is(ipv4Mask(0), '0.0.0.0')
  assert.is(ipv4ToU32('198.51.100.7'), 0xc6336407)
  for (const bad of ['198.51.100', '198.51.100.256', '1..2.3', 'a.b.c.d', '1.2.3.4.5', '']) assert.is(ipv4ToU32(bad), -1, bad)
  assert.is(unmapIPv4('::ffff:203.0.113.9'), '203.0.113.9')
  assert.is(unmapIPv4('203.0.113.9'), '203.0.113.9')
  assert.is(unmapIPv4('2001:db8::1'), null)
})

test('IPv6: bytes and RFC 5952 text round-trip', () => {
  for (const a of ['2001:db8::1', '::', '1:0:0:1::1', 'fe80::1:0:0:1', '::ffff:c633:6407']) assert.is(formatIPv6(ipv6Bytes(a), 0), a)
  assert.is(formatIPv6(ipv6Bytes('::ffff:198.51.100.7'), 0), '::ffff:c633:6407')
  const b = Buffer.concat([Buffer.from([9, 9]), ipv6Bytes('2001:db8::5')])
  assert.is(formatIPv6(b, 2), '2001:db8::5')
})

test('isHostName: literals without a zone and plain names; never NUL, 8-bit bytes or zones', () => {
  for (const h of ['198.18.0.1', '2001:db8::1', '::ffff:198.18.0.1', 'localhost', 'a.example.', '_srv.x-y', 'x'.repeat(253)]) assert.ok(isHostName(h), h)
  for (const h of ['', 'a\0b', '\u00e9'.repeat(200), 'fe80::1%a:b:c:d:e:f:1:2:3', 'fe80::1%eth0', 'a b', '-a', '.a', 'a:b', 'x'.repeat(254), '1.2.3.4:80']) assert.not.ok(isHostName(h), JSON.stringify(h))
})

test.run()
