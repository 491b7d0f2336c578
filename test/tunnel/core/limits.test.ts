import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {GateLimits, TokenBucket, TunnelUse, type LimitConfig} from '../../../src/tunnel/core/limits.js'

const config = (c: Partial<LimitConfig> = {}): LimitConfig => ({
  maxTunnelsPerIdentity: 4, maxSessionsPerIdentity: 1000, maxPendingPerTunnel: 1000, maxPendingPerIdentity: 1000,
  maxEarlyPerTunnel: 100, maxEarlyPerIdentity: 150, fdLimit: 1100, fdBase: 100, fdReserve: 100, fdShare: 0.5, ...c,
})

/** A connection admitted and authenticated as `identity`. */
function tunnel(l: GateLimits, identity: string): TunnelUse {
  assert.is(l.admitConnection(), null)
  const t = l.tunnel(identity)
  if (typeof t === 'string') throw new Error(t)
  return t
}

/** Opens until refused; returns how many were admitted and the refusal. */
function openAll(t: TunnelUse, max = 100_000): [number, string | null] {
  for (let n = 0; n < max; n++) {
    const why = t.admitOpen()
    if (why) return [n, why]
  }
  return [max, null]
}

test('tunnels per identity: the next one is refused, and allowed again once one closes', () => {
  const l = new GateLimits(config({maxTunnelsPerIdentity: 2}))
  const a = tunnel(l, 'mallory')
  tunnel(l, 'mallory')
  assert.is(l.admitConnection(), null)
  assert.match(l.tunnel('mallory') as string, /mallory already has 2 tunnels/)
  assert.ok(l.tunnel('alice') instanceof TunnelUse, 'other identities are not affected')
  a.close()
  a.close()
  assert.is(l.usage('mallory').tunnels, 1, 'closing twice counts once')
  assert.ok(l.tunnel('mallory') instanceof TunnelUse)
})

test('pending opens are capped per tunnel and per identity; dialed() frees the slot, not the descriptor', () => {
  const l = new GateLimits(config({maxPendingPerTunnel: 3, maxPendingPerIdentity: 5}))
  const t1 = tunnel(l, 'mallory')
  const t2 = tunnel(l, 'mallory')
  assert.equal(openAll(t1), [3, '3 opens of this tunnel are still connecting, the most allowed'])
  const [n, why] = openAll(t2)
  assert.is(n, 2)
  assert.match(why!, /5 opens of mallory are still connecting/)
  const held = l.descriptors
  t1.dialed()
  assert.is(t2.admitOpen(), null)
  assert.is(l.descriptors, held + 1)
  t1.sessionClosed()
  assert.is(l.descriptors, held)
})

test('sessions per identity count over all its tunnels', () => {
  const l = new GateLimits(config({maxSessionsPerIdentity: 10}))
  const t1 = tunnel(l, 'mallory')
  for (let i = 0; i < 6; i++) { assert.is(t1.admitOpen(), null); t1.dialed() }
  const [n, why] = openAll(tunnel(l, 'mallory'))
  assert.is(n, 4)
  assert.match(why!, /mallory has 10 sessions/)
})

test('descriptors: one identity gets at most its share; others can still open; the reserve stays for tunnels', () => {
  // capacity 1000, reserve 100: 900 for opens.
  const l = new GateLimits(config())
  assert.is(l.capacity, 1000)
  assert.is(l.reserve, 100)
  const m = tunnel(l, 'mallory')
  const [nm, whyM] = openAll(m)
  assert.match(whyM!, /mallory holds 450 descriptors, its share of the gate's 900/)
  assert.is(nm, 449, 'its tunnel counts too')
  // A second attacker gets half of what is left, and a third identity still has room.
  const e = tunnel(l, 'eve')
  const [ne] = openAll(e)
  assert.is(ne + 1, Math.floor(0.5 * (900 - 450)), 'half of what mallory leaves')
  const a = tunnel(l, 'alice')
  assert.is(a.admitOpen(), null, 'another identity can still open')
  // Opens stop at 900 descriptors in all, whatever the shares; new connections may use the reserve.
  const big = new GateLimits(config({fdShare: 1}))
  const [n1, why] = openAll(tunnel(big, 'mallory'))
  assert.is(n1, 899)
  assert.match(why!, /descriptors are in use \(900; 100 kept for new tunnels\)/)
  for (let i = 0; i < 100; i++) assert.is(big.admitConnection(), null)
  assert.match(big.admitConnection()!, /holds 1000 descriptors, all it may/)
  big.connectionClosed()
  assert.is(big.admitConnection(), null)
})

test('a low descriptor limit keeps at most a quarter in reserve', () => {
  const l = new GateLimits(config({fdLimit: 200, fdBase: 40}))
  assert.is(l.reserve, 40)
})

test('early data: per tunnel and per identity, given back in full', () => {
  const l = new GateLimits(config())
  const t1 = tunnel(l, 'mallory')
  const t2 = tunnel(l, 'mallory')
  assert.ok(t1.takeEarly(100))
  assert.not.ok(t1.takeEarly(1), 'the tunnel holds its most')
  assert.ok(t2.takeEarly(50))
  assert.not.ok(t2.takeEarly(1), 'the identity holds its most')
  assert.ok(tunnel(l, 'alice').takeEarly(100), 'another identity has its own budget')
  t1.giveEarly(100)
  assert.ok(t2.takeEarly(50))
  assert.is(l.usage('mallory').early, 100)
})

test('an identity that holds nothing is forgotten', () => {
  const l = new GateLimits(config())
  const t = tunnel(l, 'mallory')
  assert.is(t.admitOpen(), null)
  t.close()
  t.dialed()
  assert.equal(l.usage('mallory'), {tunnels: 0, sessions: 1, pending: 0, early: 0})
  t.sessionClosed()
  assert.equal(l.usage('mallory'), {tunnels: 0, sessions: 0, pending: 0, early: 0})
  assert.is(l.descriptors, 1, 'the connection is released by its own close')
})

test('token bucket: a burst, then the rate; 0 means no limit', () => {
  const b = new TokenBucket(100, 10, 0)
  let n = 0
  while (b.take(0)) n++
  assert.is(n, 10)
  assert.ok(b.take(10), 'one token after 10 ms at 100/s')
  assert.not.ok(b.take(10))
  let later = 0
  for (let i = 0; i < 1000; i++) if (b.take(1000)) later++
  assert.is(later, 10, 'never more than the burst')
  const free = new TokenBucket(0, 1, 0)
  for (let i = 0; i < 1000; i++) assert.ok(free.take(0))
})

test('every refusal is counted under the flag that sets its limit (for --metrics)', () => {
  const l = new GateLimits(config({maxTunnelsPerIdentity: 1, maxPendingPerTunnel: 2, fdLimit: 120, fdBase: 100, fdReserve: 0}))
  const t = tunnel(l, 'mallory')
  assert.is(typeof l.tunnel('mallory'), 'string')
  openAll(t)
  assert.is(t.takeEarly(1000), false)
  for (let i = 0; i < 30; i++) l.admitConnection() // 3 held of 20: 17 admitted, 13 refused
  assert.equal(Object.fromEntries(l.hits.entries()), {'max-tunnels-per-identity': 1, 'max-pending-per-tunnel': 1, 'early-data': 1, fd: 13})
})

test.run()
