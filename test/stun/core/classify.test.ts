import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {classifyNat, type Observations} from '../../../src/stun/core/classify.js'

const local = {address: '198.18.0.2', port: 40000}
const m = (address: string, port: number) => ({address, port})
const base: Observations = {local, hairpinning: null, bindingLifetimeSec: null, otherAddressKnown: true}

test('no answer at all: UDP blocked, wrap', () => {
  const c = classifyNat({...base})
  assert.is(c.recommendation, 'wrap')
  assert.is(c.mapping, 'unknown')
})

test('no NAT: mapped = local, direct', () => {
  const c = classifyNat({...base, mapped1: local, mapped2: local, filterChangeIpPort: true})
  assert.equal([c.natPresent, c.mapping, c.filtering, c.recommendation, c.portPreserved], [false, 'endpoint-independent', 'endpoint-independent', 'direct', true])
})

test('each mapping and filtering behaviour', () => {
  const pub = m('203.0.113.1', 40000)
  assert.is(classifyNat({...base, mapped1: pub, mapped2: pub}).mapping, 'endpoint-independent')
  assert.is(classifyNat({...base, mapped1: pub, mapped2: m('203.0.113.1', 40001), mapped3: m('203.0.113.1', 40001)}).mapping, 'address-dependent')
  assert.is(classifyNat({...base, mapped1: pub, mapped2: m('203.0.113.1', 40001), mapped3: m('203.0.113.1', 40002)}).mapping, 'address-and-port-dependent')
  assert.is(classifyNat({...base, mapped1: pub, filterChangeIpPort: true}).filtering, 'endpoint-independent')
  assert.is(classifyNat({...base, mapped1: pub, filterChangeIpPort: false, filterChangePort: true}).filtering, 'address-dependent')
  assert.is(classifyNat({...base, mapped1: pub, filterChangeIpPort: false, filterChangePort: false}).filtering, 'address-and-port-dependent')
  const c = classifyNat({...base, mapped1: pub, mapped2: pub})
  assert.equal([c.natPresent, c.recommendation, c.portPreserved], [true, 'nat-t', true])
})

test('a server without RFC 5780 leaves mapping and filtering unknown and says why', () => {
  const c = classifyNat({...base, otherAddressKnown: false, mapped1: m('203.0.113.1', 5000)})
  assert.equal([c.mapping, c.filtering, c.natPresent], ['unknown', 'unknown', true])
  assert.ok(c.reasons.some((r) => /OTHER-ADDRESS/.test(r)))
})

test('bindings shorter than NAT-T keepalives recommend wrapping', () => {
  const c = classifyNat({...base, mapped1: m('203.0.113.1', 5000), bindingLifetimeSec: 10})
  assert.is(c.recommendation, 'wrap')
})

test.run()
