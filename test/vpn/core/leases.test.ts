import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {LeasePool} from '../../../src/vpn/core/leases.js'

test('the first host address is the gateway; leases start after it', () => {
  const p = new LeasePool('198.18.10.0/24')
  assert.is(p.gateway, '198.18.10.1')
  assert.is(p.prefix, 24)
  assert.is(p.lease('alice'), '198.18.10.2')
  assert.is(p.lease('bob'), '198.18.10.3')
})

test('an identity keeps its address across reconnects', () => {
  const p = new LeasePool('198.18.10.0/24')
  const a = p.lease('alice')
  p.lease('bob')
  assert.is(p.lease('alice'), a)
})

test('host bits in the pool are ignored', () => {
  const p = new LeasePool('198.18.10.77/24')
  assert.is(p.gateway, '198.18.10.1')
  assert.is(p.lease('alice'), '198.18.10.2')
})

test('a full pool leases no more, and never the broadcast address; known identities still get theirs', () => {
  const p = new LeasePool('203.0.113.8/29')
  const got = ['a', 'b', 'c', 'd', 'e'].map((id) => p.lease(id))
  assert.equal(got, ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13', '203.0.113.14'])
  assert.is(p.lease('f'), null)
  assert.is(p.lease('c'), '203.0.113.12')
})

test('a /31 or /32 pool has no addresses to lease', () => {
  assert.is(new LeasePool('198.51.100.4/31').lease('a'), null)
  assert.is(new LeasePool('198.51.100.4/32').lease('a'), null)
})

test('a pool that is not an IPv4 CIDR is refused', () => {
  assert.throws(() => new LeasePool('198.51.100.0'))
  assert.throws(() => new LeasePool('2001:db8::/64'))
})

test.run()
