import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {SocksServerMachine} from '../../../src/socks5/core/negotiation.js'
import {encodeReply, encodeUdp, parseGreeting, parseSocksRequest, parseUdp, parseUserPass} from '../../../src/socks5/codec/messages.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

test('greeting, user/pass and requests parse per RFC 1928 / RFC 1929', () => {
  assert.equal(parseGreeting(hex('05 02 00 02')), {value: [0, 2], used: 4})
  assert.is(parseGreeting(hex('05 02 00')), null)
  assert.equal(parseUserPass(hex('01 01 61 02 7879')), {value: {user: 'a', pass: 'xy'}, used: 6})
  assert.equal(parseSocksRequest(hex('05 01 00 01 c6120001 0050')), {value: {cmd: 1, host: '198.18.0.1', port: 80}, used: 10})
  assert.equal(parseSocksRequest(hex('05 01 00 03 09 6c6f63616c686f7374 1f90')), {value: {cmd: 1, host: 'localhost', port: 8080}, used: 16})
  assert.equal(parseSocksRequest(hex('05 03 00 04 20010db8000000000000000000000001 0035'))?.value, {cmd: 3, host: '2001:db8::1', port: 53})
  assert.is(parseSocksRequest(hex('05 01 00 03 09 6c6f')), null)
})

test('replies and UDP headers encode byte-exact', () => {
  assert.is(encodeReply(0, '198.18.0.1', 1080).toString('hex'), '05000001c61200010438')
  assert.is(encodeReply(2).toString('hex'), '05020001000000000000')
  assert.is(encodeReply(0, '2001:db8::1', 1).toString('hex'), '0500000420010db80000000000000000000000010001')
  assert.is(encodeUdp('a.b', 53, Buffer.from('q')).toString('hex'), '00000003036' + '12e62003571')
  const d = parseUdp(encodeUdp('198.18.0.2', 53, Buffer.from('hello')))
  assert.equal({...d, data: d.data.toString()}, {frag: 0, host: '198.18.0.2', port: 53, data: 'hello'})
})

test('bad versions and address types raise CodecError', () => {
  assert.throws(() => parseGreeting(hex('04 01 00')), /not a SOCKS5 client/)
  assert.throws(() => parseSocksRequest(hex('05 01 00 07 00')), /address type 7/)
})

/** The names that made the portal exit (issue 9): each a CONNECT, and a UDP datagram. */
const HOSTILE = [Buffer.from('a\0b'), Buffer.alloc(200, 0xe9), Buffer.from('fe80::1%a:b:c:d:e:f:1:2:3')]

test('a CONNECT to a name the tunnel cannot carry gets reply 4 (host unreachable), not an exception', () => {
  for (const name of HOSTILE) {
    const m = new SocksServerMachine()
    assert.equal(m.feed(hex('05 01 00')).map((s) => s.kind), ['send'])
    const steps = m.feed(Buffer.concat([hex('05 01 00 03'), Buffer.from([name.length]), name, hex('0050')]))
    assert.is(steps.length, 1)
    assert.is(steps[0].kind, 'fail')
    assert.is((steps[0] as {data?: Buffer}).data?.toString('hex'), '05040001000000000000')
    assert.throws(() => parseUdp(Buffer.concat([hex('000000 03'), Buffer.from([name.length]), name, hex('0035 00')])), /not a host name/)
  }
})

test('a reply from a zoned local IPv6 address encodes without its zone', () => {
  assert.is(encodeReply(0, 'fe80::1%a:b:c:d', 1).toString('hex'), '05000004fe8000000000000000000000000000010001')
})

test.run()
