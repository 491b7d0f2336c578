import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {Exchange, IdType, Notify, PayloadType as P} from '../../../src/ike/codec/constants.js'
import {decodeHeader} from '../../../src/ike/codec/header.js'
import {idFromString, idToString} from '../../../src/ike/codec/id.js'
import {decodeMessage, encodeMessage, type IkeMessage} from '../../../src/ike/codec/message.js'
import {notifyValue} from '../../../src/ike/codec/notify.js'
import {CriticalPayloadError, decodeChain, encodeChain, MAX_PAYLOADS, type Payload} from '../../../src/ike/codec/payload.js'
import {tsFromCidr} from '../../../src/ike/codec/ts.js'
import {codecErrorCode} from '../generators.js'

const t = suite('ike codec: payloads and bounds')

const head = {spiI: Buffer.alloc(8, 0xaa), spiR: Buffer.alloc(8), exchange: Exchange.IKE_SA_INIT, flags: 8, messageId: 0}
const msg = (payloads: Payload[]): IkeMessage => ({...head, payloads})
const nonce: Payload = {type: P.NONCE, data: Buffer.alloc(32, 7)}

const codeOf = codecErrorCode

/** A chain's bytes with one payload's generic header patched (critical bit, type of next…). */
function patched(ps: Payload[], at: number, fn: (b: Buffer) => void): Buffer {
  const wire = encodeMessage(msg(ps))
  fn(wire.subarray(at))
  return wire
}

t('an unknown payload without the critical bit is kept and re-encodes; with it, the message is refused naming the type (§2.5)', () => {
  const ps: Payload[] = [{type: 200, unknown: true, data: Buffer.from('abc')}, nonce]
  const wire = encodeMessage(msg(ps))
  assert.equal(decodeMessage(wire).payloads, ps)
  const critical = patched(ps, 28, (b) => (b[1] = 0x80))
  try {
    decodeMessage(critical)
    assert.unreachable()
  } catch (e) {
    assert.instance(e, CriticalPayloadError)
    assert.is((e as CriticalPayloadError).payloadType, 200)
  }
  // A known payload with the critical bit set is simply decoded (the bit is kept for the round trip).
  const known = patched([nonce], 28, (b) => (b[1] = 0x80))
  assert.equal(decodeMessage(known).payloads, [{...nonce, critical: true}])
})

t('header: another major version decodes as a header (for INVALID_MAJOR_VERSION) but not as a message; the length must be the datagram\'s', () => {
  const wire = encodeMessage(msg([nonce]))
  wire[17] = 0x30
  assert.is(decodeHeader(wire).major, 3)
  assert.is(codeOf(() => decodeMessage(wire)), 'VERSION')
  const ok = encodeMessage(msg([nonce]))
  assert.is(codeOf(() => decodeMessage(Buffer.concat([ok, Buffer.alloc(1)]))), 'LENGTH')
  assert.is(codeOf(() => decodeMessage(ok.subarray(0, 27))), 'TRUNCATED')
  const short = Buffer.from(ok)
  short.writeUInt32BE(27, 24)
  assert.is(codeOf(() => decodeHeader(short)), 'LENGTH')
})

t('chain bounds: trailing bytes, a payload overrunning its message, more than MAX_PAYLOADS, payloads after SK', () => {
  assert.is(codeOf(() => decodeMessage(patched([nonce, nonce], 28, (b) => (b[0] = 0)))), 'LENGTH', 'bytes after the declared last payload')
  assert.is(codeOf(() => decodeMessage(patched([nonce], 28, (b) => b.writeUInt16BE(0xffff, 2)))), 'LENGTH')
  assert.is(codeOf(() => decodeMessage(patched([nonce], 28, (b) => b.writeUInt16BE(3, 2)))), 'LENGTH')
  const many = Array.from({length: MAX_PAYLOADS + 1}, () => ({type: P.V, data: Buffer.alloc(0)}) as Payload)
  assert.is(codeOf(() => encodeMessage(msg(many))), 'LIMIT')
  const {bytes} = encodeChain(many.slice(0, MAX_PAYLOADS))
  const chain = Buffer.concat([bytes.subarray(0, bytes.length - 4), Buffer.from([P.V, 0, 0, 4]), Buffer.from([0, 0, 0, 4])])
  assert.is(codeOf(() => decodeChain(chain, 0, chain.length, P.V)), 'LIMIT')
  const sk: Payload = {type: P.SK, inner: P.IDi, data: Buffer.alloc(40)}
  assert.is(codeOf(() => encodeMessage(msg([sk, nonce]))), 'BAD_SK')
  const afterSk = Buffer.concat([encodeMessage(msg([sk])), Buffer.from([0, 0, 0, 4])])
  afterSk.writeUInt32BE(afterSk.length, 24)
  assert.is(codeOf(() => decodeMessage(afterSk)), 'BAD_SK')
})

t('SA: last-substructure marks, empty proposals and transform counts are checked', () => {
  const sa: Payload = {type: P.SA, proposals: [{number: 1, protocol: 1, spi: Buffer.alloc(0), transforms: [{type: 1, id: 20, attributes: [{type: 14, tv: true, value: 256}]}, {type: 4, id: 31, attributes: []}]}]}
  assert.equal(decodeMessage(encodeMessage(msg([sa]))).payloads, [sa])
  assert.is(codeOf(() => decodeMessage(patched([sa], 32, (b) => (b[0] = 2)))), 'BAD_SA', 'a single proposal marked "more"')
  assert.is(codeOf(() => decodeMessage(patched([sa], 32 + 8, (b) => (b[0] = 0)))), 'BAD_SA', 'the first of two transforms marked last')
  assert.is(codeOf(() => decodeMessage(patched([sa], 32, (b) => (b[7] = 3)))), 'BAD_SA', 'a count beyond the transforms')
  assert.is(codeOf(() => decodeMessage(patched([sa], 32, (b) => (b[7] = 0)))), 'BAD_SA')
  assert.is(codeOf(() => decodeMessage(patched([sa], 32, (b) => (b[7] = 200)))), 'LIMIT')
})

t('notify data is checked by type: INVALID_KE group, NAT-D hashes, cookies, hash algorithm lists, empty status types, REKEY_SA SPI', () => {
  assert.equal(notifyValue({notify: Notify.INVALID_KE_PAYLOAD, data: Buffer.from([0, 19])}), {kind: 'group', group: 19})
  assert.equal(notifyValue({notify: Notify.SIGNATURE_HASH_ALGORITHMS, data: Buffer.from('0002000300040005', 'hex')}), {kind: 'hashAlgorithms', algorithms: [2, 3, 4, 5]})
  assert.equal(notifyValue({notify: Notify.ADDITIONAL_IP4_ADDRESS, data: Buffer.from([198, 18, 1, 1])}), {kind: 'address', address: '198.18.1.1'})
  assert.is(notifyValue({notify: 40000, data: Buffer.from('x')}), undefined)
  for (const [notify, data] of [[Notify.NAT_DETECTION_SOURCE_IP, Buffer.alloc(19)], [Notify.COOKIE, Buffer.alloc(65)], [Notify.COOKIE, Buffer.alloc(0)], [Notify.SIGNATURE_HASH_ALGORITHMS, Buffer.alloc(3)], [Notify.INITIAL_CONTACT, Buffer.alloc(1)]] as const) {
    assert.is(codeOf(() => notifyValue({notify, data})), 'BAD_NOTIFY', `N(${notify}) with ${data.length} bytes`)
  }
  const rekey: Payload = {type: P.N, protocol: 3, spi: Buffer.alloc(8), notify: Notify.REKEY_SA, data: Buffer.alloc(0)}
  assert.is(codeOf(() => decodeMessage(encodeMessage(msg([rekey])))), 'BAD_NOTIFY')
})

t('nonce 16..256 bytes, DELETE SPI sizes by protocol, CP attribute lengths, SKF fragment numbers', () => {
  assert.is(codeOf(() => encodeMessage(msg([{type: P.NONCE, data: Buffer.alloc(15)}]))), 'BAD_NONCE')
  const n257 = patched([{type: P.V, data: Buffer.alloc(257)}], 28, () => undefined)
  n257[16] = P.NONCE
  assert.is(codeOf(() => decodeMessage(n257)), 'BAD_NONCE')
  assert.is(codeOf(() => decodeMessage(encodeMessage(msg([{type: P.D, protocol: 1, spiSize: 4, spis: [Buffer.alloc(4)]}])))), 'BAD_DELETE')
  assert.is(codeOf(() => decodeMessage(encodeMessage(msg([{type: P.D, protocol: 3, spiSize: 4, spis: [Buffer.alloc(4)]}])).subarray(0, -1))), 'LENGTH')
  assert.is(codeOf(() => decodeMessage(encodeMessage(msg([{type: P.CP, cfgType: 2, attributes: [{type: 1, value: Buffer.alloc(3)}]}])))), 'BAD_CP')
  assert.is(codeOf(() => decodeMessage(encodeMessage(msg([{type: P.SKF, inner: 0, fragment: 3, total: 2, data: Buffer.alloc(20)}])))), 'BAD_SKF')
  assert.is(codeOf(() => decodeMessage(encodeMessage(msg([{type: P.SKF, inner: P.IDi, fragment: 2, total: 2, data: Buffer.alloc(20)}])))), 'BAD_SKF')
  const frag: Payload = {type: P.SKF, inner: P.IDi, fragment: 1, total: 2, data: Buffer.alloc(20)}
  assert.equal(decodeMessage(encodeMessage(msg([frag]))).payloads, [frag])
})

t('traffic selectors: CIDR blocks become ranges, IPv4 and IPv6 round trip, a wrong length is refused', () => {
  assert.equal([tsFromCidr('198.18.1.0/24').start, tsFromCidr('198.18.1.0/24').end], ['198.18.1.0', '198.18.1.255'])
  assert.equal([tsFromCidr('0.0.0.0/0').start, tsFromCidr('0.0.0.0/0').end], ['0.0.0.0', '255.255.255.255'])
  assert.equal([tsFromCidr('2001:db8::/32').start, tsFromCidr('2001:db8::/32').end], ['2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'])
  const ts: Payload = {type: P.TSr, selectors: [tsFromCidr('198.18.1.0/24'), tsFromCidr('2001:db8::/48')]}
  assert.equal(decodeMessage(encodeMessage(msg([ts]))).payloads, [ts])
  assert.is(codeOf(() => decodeMessage(patched([ts], 36, (b) => b.writeUInt16BE(17, 2)))), 'LENGTH')
  assert.is(codeOf(() => tsFromCidr('198.18.1.0/33')), 'BAD_TS')
})

t('identities from text: IPv4, IPv6, RFC822 and FQDN, and back', () => {
  assert.equal(idFromString('203.0.113.1'), {idType: IdType.IPV4_ADDR, data: Buffer.from([203, 0, 113, 1])})
  assert.is(idFromString('2001:db8::1').idType, IdType.IPV6_ADDR)
  assert.is(idFromString('client@ks.test').idType, IdType.RFC822_ADDR)
  assert.is(idFromString('gw.ks.test').idType, IdType.FQDN)
  for (const s of ['203.0.113.1', '2001:db8::1', 'client@ks.test', 'gw.ks.test']) assert.is(idToString(idFromString(s)), s)
  const bad: Payload = {type: P.IDi, idType: IdType.IPV4_ADDR, data: Buffer.alloc(5)}
  assert.is(codeOf(() => decodeMessage(encodeMessage(msg([bad])))), 'BAD_ID')
})

t.run()
