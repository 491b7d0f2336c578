import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {Exchange, EXCHANGE_NAMES, PayloadType as P, ProtocolId} from '../../src/ike/codec/constants.js'
import {decodeMessage} from '../../src/ike/codec/message.js'
import {payloadsOf, type Payload} from '../../src/ike/codec/payload.js'
import type {ProtectedSa, SkObserver} from '../../src/ike/core/exchange.js'
import {parseProposals} from '../../src/ike/core/proposals.js'
import {sealProtected} from '../../src/ike/core/crypto.js'
import {IKE_TRACE, ikeFields} from '../../src/ike/trace.js'
import {Tracer} from '../../src/lib/trace/tracer.js'
import {CLIENT, only, pair, PSK, type Pair} from './core/loop.js'

/**
 * --trace of IKE: the machines' `onPlain` observer over the in-memory loop (core/loop.ts), and the
 * lines `ikeFields` makes of what it saw. Secrets are checked against the real values of the run.
 */
const t = suite('ike trace: SK contents decrypted and marked, never key material')

interface Seen {
  side: 'i' | 'r'
  dir: 'in' | 'out'
  message: Buffer
  inner: Parameters<SkObserver>[2]
}

function traced(): {p: Pair; seen: Seen[]; sas: ProtectedSa[]} {
  const seen: Seen[] = []
  const see = (side: 'i' | 'r'): SkObserver => (dir, message, inner) => seen.push({side, dir, message, inner})
  const p = pair({ini: {onPlain: see('i')}, res: {onPlain: see('r')}})
  p.run()
  assert.is(only(p.iEvents, 'established').length, 1)
  const sas: ProtectedSa[] = []
  const both = (): [ProtectedSa, ProtectedSa] => {
    const i = p.ini.ikeSa!
    const r = p.res.ikeSa(i.spiI)!
    sas.push(i, r)
    return [i, r]
  }
  let [i, r] = both()
  // CREATE_CHILD_SA started by each side (a new CHILD_SA, a CHILD_SA rekey), then an IKE_SA rekey.
  p.feed('i', i.createChild({policy: parseProposals('aes128gcm16-ecp256', ProtocolId.ESP), tsI: i.children[0].tsI, tsR: i.children[0].tsR}, p.now))
  p.feed('r', r.rekeyChild(r.spis(r.children[0]).ours, p.now))
  p.feed('i', i.rekeyIke(p.now))
  ;[i, r] = both()
  // INFORMATIONAL: a DPD each way, then the DELETE of the IKE_SA.
  p.feed('r', r.dpd(p.now))
  p.feed('i', i.dpd(p.now))
  p.feed('i', i.close(p.now))
  return {p, seen, sas}
}

/** The trace line's `payloads` for a datagram, with what `side` saw of it. */
function line(seen: Seen[], side: 'i' | 'r', data: Buffer): string {
  const s = seen.find((x) => x.side === side && x.message === data)
  return String(ikeFields({data, inner: s?.inner}).payloads)
}

t('both machines see the inner payloads of IKE_AUTH, CREATE_CHILD_SA and INFORMATIONAL, sent and received, on the very datagrams', () => {
  const {p, seen} = traced()
  for (const side of ['i', 'r'] as const) {
    for (const dir of ['in', 'out'] as const) {
      const exchanges = new Set(seen.filter((s) => s.side === side && s.dir === dir).map((s) => EXCHANGE_NAMES[decodeMessage(s.message).exchange]))
      assert.equal([...exchanges].sort(), ['CREATE_CHILD_SA', 'IKE_AUTH', 'INFORMATIONAL'], `${side} ${dir}`)
    }
  }
  // Each observed message is one the loop carried (the driver looks the trace up by the datagram itself).
  for (const s of seen) assert.ok(p.sent.some((x) => x.data === s.message), 'an observed message that was never sent')
  // Every protected datagram of the run was seen by its sender and by its receiver, opened.
  for (const x of p.sent.filter((x) => decodeMessage(x.data).exchange !== Exchange.IKE_SA_INIT)) {
    const [from, to] = x.dir === 'i->r' ? (['i', 'r'] as const) : (['r', 'i'] as const)
    assert.ok(seen.some((s) => s.side === from && s.dir === 'out' && s.message === x.data && Array.isArray(s.inner)))
    assert.ok(seen.some((s) => s.side === to && s.dir === 'in' && s.message === x.data && Array.isArray(s.inner)))
  }
})

t('the IKE_AUTH lines show IDi, AUTH, CP, SA, TSi, TSr decrypted; the response the pushed address, DNS and subnet', () => {
  const {p, seen} = traced()
  const [req, resp] = p.sent.filter((x) => decodeMessage(x.data).exchange === Exchange.IKE_AUTH).map((x) => x.data)
  const sentLine = line(seen, 'i', req)
  assert.is(line(seen, 'r', req), sentLine, 'sender and receiver show the same contents')
  assert.match(sentLine, /^SK\{decrypted: IDi\(client@example\.net\) N\(INITIAL_CONTACT\) AUTH\(SHARED_KEY_MIC,\d+B\) CP\(REQUEST: INTERNAL_IP4_ADDRESS,INTERNAL_IP4_DNS\) SA\(ESP:[0-9a-f]{8}:aes256gcm16-/)
  assert.match(sentLine, / TSi\(0\.0\.0\.0\/0\) TSr\(0\.0\.0\.0\/0\)\}$/)
  assert.is(line(seen, 'i', resp), line(seen, 'r', resp))
  assert.match(line(seen, 'i', resp), /^SK\{decrypted: IDr\(gw\.example\.net\) AUTH\(SHARED_KEY_MIC,\d+B\) CP\(REPLY: INTERNAL_IP4_ADDRESS=198\.18\.200\.10,INTERNAL_IP4_DNS=198\.18\.1\.53,INTERNAL_IP4_SUBNET=198\.18\.1\.0\/255\.255\.255\.0\) SA\(ESP:[0-9a-f]{8}:aes256gcm16\) TSi\(198\.18\.200\.10\/32\) TSr\(198\.18\.1\.0\/24\)\}$/)
  const info = p.sent.filter((x) => decodeMessage(x.data).exchange === Exchange.INFORMATIONAL).map((x) => line(seen, x.dir === 'i->r' ? 'i' : 'r', x.data))
  assert.ok(info.includes('SK{decrypted: empty}'), 'a DPD is an empty INFORMATIONAL')
  assert.ok(info.includes('SK{decrypted: D(IKE)}'), info.join('\n'))
})

t('no key, AUTH value, nonce or KE value of the run reaches a trace line, in hex or base64', () => {
  const {p, seen, sas} = traced()
  const secrets: Buffer[] = [PSK]
  for (const sa of sas) {
    secrets.push(sa.send.enc, sa.recv.enc, sa.skD)
    if (sa.send.integ) secrets.push(sa.send.integ, sa.recv.integ!)
  }
  const children = [...only(p.iEvents, 'established').map((e) => e.sa.child), ...only(p.iEvents, 'child-up').map((e) => e.child), ...only(p.iEvents, 'rekeyed').map((e) => e.child)]
  for (const c of children) secrets.push(c.keys.encI, c.keys.encR, ...[c.keys.integI, c.keys.integR].filter((k) => k.length))
  const payloads: Payload[] = p.sent.flatMap((x) => decodeMessage(x.data).payloads)
  for (const s of seen) if (Array.isArray(s.inner)) payloads.push(...s.inner)
  for (const type of [P.AUTH, P.NONCE, P.KE] as const) {
    const found = payloadsOf(payloads, type)
    assert.ok(found.length >= 2, `no ${type} payloads to check`)
    secrets.push(...found.map((x) => x.data))
  }
  // Every datagram as its sender and its receiver trace it, in text and in JSON.
  const lines: string[] = []
  const tracers = [new Tracer('text', (l) => lines.push(l)), new Tracer('json', (l) => lines.push(l))]
  for (const x of p.sent) {
    for (const s of [{side: x.dir === 'i->r' ? 'i' : 'r', dir: 'out'}, {side: x.dir === 'i->r' ? 'r' : 'i', dir: 'in'}] as const) {
      const inner = seen.find((v) => v.side === s.side && v.dir === s.dir && v.message === x.data)?.inner
      for (const tr of tracers) tr.trace(s.dir, 'peer', IKE_TRACE, {data: x.data, inner}, x.data.length)
    }
  }
  const text = lines.join('\n')
  assert.match(text, /SK\{decrypted: .*AUTH\(/)
  assert.ok(secrets.length > 30, `${secrets.length} secrets`)
  for (const s of secrets) {
    assert.ok(s.length >= 16, 'every secret is long enough not to appear by chance')
    for (const form of [s.toString('hex'), s.toString('base64'), s.subarray(0, 12).toString('hex')]) assert.not.ok(text.includes(form), `a secret appears in the trace: ${form}`)
  }
})

t('a message that fails its integrity check shows as SK{unverified} with nothing of its contents, a genuine one with a broken inside as SK{malformed}, one never opened by its length', () => {
  const seen: Seen[] = []
  // The initiator's IKE_AUTH is lost on the way: the responder waits for it, and gets forgeries instead.
  const p = pair({res: {onPlain: (dir, message, inner) => seen.push({side: 'r', dir, message, inner})}, lose: (s) => s.dir === 'i->r' && s.n === 1})
  p.run(p.now + 100)
  const auth = p.sent.find((x) => x.dir === 'i->r' && decodeMessage(x.data).exchange === Exchange.IKE_AUTH)!.data
  const tampered = Buffer.from(auth)
  tampered[tampered.length - 1] ^= 1
  assert.equal(p.res.receive(tampered, CLIENT, p.now), [])
  assert.equal(seen.map((s) => [s.dir, s.message === tampered, s.inner]), [['in', true, 'unverified']])
  assert.is(line(seen, 'r', tampered), 'SK{unverified}')
  // Genuine (sealed with the initiator's keys) but with a broken inner chain: a payload of length 3.
  const broken = sealProtected({...decodeMessage(auth), payloads: [{type: P.SK, inner: P.N, data: Buffer.alloc(0)}]}, Buffer.from([0, 0, 0, 3]), p.res.ikeSa(auth.subarray(0, 8))!.recv)
  assert.equal(p.res.receive(broken, CLIENT, p.now), [])
  assert.is(line(seen, 'r', broken), 'SK{malformed}')
  // Another message ID: dropped before opening, so the trace has only its length.
  const early = Buffer.from(auth)
  early.writeUInt32BE(7, 20)
  assert.equal(p.res.receive(early, CLIENT, p.now), [])
  assert.is(seen.length, 2)
  assert.match(line(seen, 'r', early), /^SK\(\d+B\)$/)
  assert.is(p.res.counters.dropped, 3)
})

t.run()
