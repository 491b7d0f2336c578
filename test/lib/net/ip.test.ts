import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {formatIPv6, ipv4Bytes, ipv4Mask, ipv4ToU32, ipv6Bytes, unmapIPv4} from '../../../src/lib/net/ip.js'

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

test.run()
