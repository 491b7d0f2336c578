import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {acceptVpnConfig, MAX_ROUTES, parseCidr4, routeProblem, VpnConfigError, type RoutePolicy} from '../../../src/vpn/core/pushed.js'
import {fuzz} from '../../helpers/fuzz.js'

const good = {address: '198.18.10.2', prefix: 24, gateway: '198.18.10.1', routes: ['198.18.20.0/24'], dns: ['198.18.20.53']}
const policy: RoutePolicy = {accept: null, avoid: ['203.0.113.2']}

test('a normal configuration is accepted as pushed', () => {
  assert.equal(acceptVpnConfig(good, policy), {...good, refused: []})
})

test('hostile address, prefix or gateway: the whole configuration is refused', () => {
  for (const bad of [
    {address: 'default'}, {address: '198.18.10.2; rm -rf /'}, {address: '2001:db8::2'}, {address: ''},
    {prefix: NaN}, {prefix: -1}, {prefix: 33}, {prefix: 24.5}, {prefix: 0}, {prefix: 1},
    {gateway: '198.18.11.1'}, {gateway: '198.18.10.2'}, {gateway: 'dev'}, {gateway: ''},
    {address: '203.0.113.9', gateway: '203.0.113.1'}, // its /24 covers the gate
  ]) assert.throws(() => acceptVpnConfig({...good, ...bad}, policy), (e: unknown) => e instanceof VpnConfigError, JSON.stringify(bad))
})

test('routes: a default route, /1 halves, junk and the path to the gate are refused one by one', () => {
  const routes = ['default', '0.0.0.0/0', '0.0.0.0/1', '128.0.0.0/1', '203.0.113.0/24', '203.0.0.0/8', '-net', '198.18.30.0/24 via 1.2.3.4', '198.18.20.0/33', '198.18.20.0/24', '198.18.40.7/24', '198.18.20.0/24']
  const r = acceptVpnConfig({...good, routes}, policy)
  assert.equal(r.routes, ['198.18.20.0/24', '198.18.40.0/24'], 'host bits cleared, duplicates once')
  assert.equal(r.refused.map((x) => x.value), routes.slice(0, 9))
  assert.match(r.refused.find((x) => x.value === '203.0.113.0/24')!.reason, /path to the gate/)
})

test('--accept-routes: only routes inside it, and still never the path to the gate', () => {
  const accept = [parseCidr4('0.0.0.0/0')!]
  const r = acceptVpnConfig({...good, routes: ['0.0.0.0/0', '0.0.0.0/1', '128.0.0.0/1', '198.18.20.0/24']}, {accept, avoid: ['203.0.113.2']})
  assert.equal(r.routes, ['0.0.0.0/1', '198.18.20.0/24'])
  const narrow = acceptVpnConfig({...good, routes: ['198.18.20.0/24', '198.18.0.0/15', '10.0.0.0/8']}, {accept: [parseCidr4('198.18.0.0/16')!], avoid: []})
  assert.equal(narrow.routes, ['198.18.20.0/24'])
  assert.is(routeProblem(parseCidr4('198.18.0.0/15')!, {accept: [parseCidr4('198.18.0.0/16')!], avoid: []}), 'not inside --accept-routes')
})

test('DNS: only IP addresses, bounded; routes bounded too', () => {
  const r = acceptVpnConfig({...good, dns: ['198.18.20.53', 'evil.example', '2001:db8::53', 'fe80::1%eth0', '', '1.2.3.4\nnameserver 6.6.6.6']}, policy)
  assert.equal(r.dns, ['198.18.20.53', '2001:db8::53'])
  const many = acceptVpnConfig({...good, routes: Array.from({length: 100}, (_, i) => `10.${i}.0.0/16`)}, policy)
  assert.is(many.routes.length, MAX_ROUTES)
})

test('parseCidr4 is strict', () => {
  assert.equal(parseCidr4('10.1.2.3/8'), {net: 0x0a000000, prefix: 8})
  for (const s of ['10.0.0.0', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/33', '10.0.0.256/8', 'a.b.c.d/8', '10.0.0.0/8/8', ' 10.0.0.0/8']) assert.is(parseCidr4(s), null, s)
})

test('fuzz: any pushed strings give a refusal or values that are IPv4 and CIDRs, never another exception', () => {
  fuzz('vpn pushed config', (r) => {
    const s = (): string => r.pick([r.ipv4(), `${r.ipv4()}/${r.int(0, 40)}`, r.text(30), 'default', ''])
    const cfg = {address: s(), prefix: r.pick([r.int(-2, 40), NaN, 24]), gateway: s(), routes: Array.from({length: r.int(0, 5)}, s), dns: Array.from({length: r.int(0, 3)}, s)}
    try {
      const a = acceptVpnConfig(cfg, {accept: r.chance(0.5) ? null : [parseCidr4(`${r.ipv4()}/${r.int(0, 32)}`)!], avoid: [r.ipv4()]})
      for (const x of a.routes) assert.ok(parseCidr4(x), x)
    } catch (e) {
      if (!(e instanceof VpnConfigError)) throw e
    }
  }, 2000)
})

test.run()
