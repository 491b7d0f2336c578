import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {ESP_TRACE} from '../../src/esp/trace.js'
import {traceKinds} from '../../src/lib/trace/registry.js'
import {ipv4} from './suites.js'

test('trace: an ESP record renders SPI, sequence and the inner IPv4 header; a short or IPv6 inner one never throws', () => {
  assert.ok(traceKinds().includes('esp'))
  const inner = ipv4('198.18.1.10', '198.18.200.5', Buffer.alloc(100)).subarray(0, 20)
  assert.equal(ESP_TRACE.render({dir: 'in', spi: 0xc0000001, seq: 7, length: 180, inner}), {type: 'ESP', spi: '0xc0000001', seq: 7, src: '198.18.1.10', dst: '198.18.200.5', ttl: 64, ipProto: 'udp', ipLen: 128})
  assert.is(ESP_TRACE.render({dir: 'out', spi: 1, seq: 1, length: 40, inner: Buffer.alloc(3, 0x45)}).inner, 'truncated')
  assert.is(ESP_TRACE.render({dir: 'out', spi: 1, seq: 1, length: 40, inner: Buffer.alloc(20, 0x60)}).inner, 'ipv6')
})

test.run()
