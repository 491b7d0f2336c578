import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {espOpen, espSeal, NextHeader} from '../../../src/esp/codec/esp.js'
import {ReplayWindow} from '../../../src/esp/core/replay.js'
import {EspEngine, type EspEvent, type EspTraceRecord, type SaConfig} from '../../../src/esp/io/engine.js'
import {TunkitError} from '../../../src/lib/errors.js'
import {nativeBinding} from '../../../src/lib/io/native.js'
import {CASES, fuzzAsync, mutate, Rng, SEED} from '../../helpers/fuzz.js'
import {lacking, unless} from '../../helpers/requires.js'
import {ipv4, suites, type Case} from '../suites.js'
import {Harness, until} from './harness.js'

const t = unless(test, lacking(['ip'])) // the addon is what this needs; plain Linux otherwise
const REMOTE = {from: '198.18.1.0', to: '198.18.1.255'}
const spiBuf = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])

/** An inbound SA carrying `c`'s initiator keys, inner sources 198.18.1.0/24. */
function inbound(h: Harness, c: Case, spi: number): number {
  return h.engine.addSa({dir: 'in', spi: spiBuf(spi), ...c.suite, encKey: c.encKey, integKey: c.integKey, selectors: [REMOTE]})
}

function outbound(h: Harness, c: Case, spi: number, selectors: SaConfig['selectors'] = [REMOTE]): number {
  return h.engine.addSa({dir: 'out', spi: spiBuf(spi), ...c.suite, encKey: c.reverse.encKey, integKey: c.reverse.integKey, peer: h.peerEndpoint, selectors})
}

/** Everything the engine counted for inbound datagrams: it must account for each one once. */
function accounted(h: Harness, ids: number[]): number {
  const tot = h.engine.totals()
  let n = tot.noSa + tot.malformed + tot.ike + tot.keepalives
  for (const id of ids) {
    const s = h.engine.stats(id)!
    n += s.packets + s.drops.replay + s.drops.auth + s.drops.malformed + s.drops.policy + s.drops.dummy
  }
  return n
}

for (const c of suites()) {
  t(`${c.name}: the native engine opens what the TS reference seals, and seals byte for byte what the reference seals with the same IV`, async () => {
    const h = await Harness.open()
    try {
      const inId = inbound(h, c, 0xc0000001)
      const outId = outbound(h, c, 0xd0000001)
      // TS seals → C opens, for inner lengths across a padding cycle and a full-size packet.
      for (const len of [0, 1, 2, 3, 15, 16, 17, 100, 1400]) {
        const inner = ipv4('198.18.1.10', '198.18.200.5', Buffer.alloc(len, len & 255))
        await h.send(espSeal(c, {spi: 0xc0000001, seq: len + 1, payload: inner}))
        assert.equal(await h.nextTun(), inner, `inner packet of ${inner.length} bytes`)
      }
      assert.is(h.engine.stats(inId)!.packets, 9)
      // C seals → TS opens; with the IV taken from the packet, the reference gives the same bytes.
      for (const [i, len] of [0, 1, 2, 14, 100, 1400].entries()) {
        const inner = ipv4('198.18.200.5', '198.18.1.10', Buffer.alloc(len, 7))
        h.inject(inner)
        const pkt = await h.nextUdp()
        const o = espOpen(c.reverse, pkt)
        assert.is(o.spi, 0xd0000001)
        assert.is(o.seq, i + 1, 'sequence numbers start at 1')
        assert.is(o.nextHeader, NextHeader.IPV4)
        assert.equal(o.payload, inner)
        assert.equal(pkt, espSeal(c.reverse, {spi: 0xd0000001, seq: i + 1, payload: inner, iv: o.iv}), 'byte-exact with the reference')
        if (c.suite.integ === undefined) assert.is(o.iv.readBigUInt64BE(0), BigInt(i + 1), 'AEAD IV: the 64-bit counter')
      }
      const s = h.engine.stats(outId)!
      assert.is(s.packets, 6)
      assert.is(s.seq, 6)
    } finally {
      h.close()
    }
  })
}

t('attacks: replayed, tampered at every byte, truncated at every length, oversized, unknown SPI — each dropped, counted once, never delivered', async () => {
  const h = await Harness.open()
  const cs = suites()
  try {
    const ids = cs.map((c, i) => inbound(h, c, 0xc0000100 + i))
    let sent = 0
    let seq = 1
    const send = async (d: Buffer): Promise<void> => { sent++; await h.send(d) }
    const settle = (): Promise<unknown> => until(`all ${sent} datagrams counted`, () => accounted(h, ids) === sent)
    for (const [i, c] of cs.entries()) {
      const spi = 0xc0000100 + i
      const first = espSeal(c, {spi, seq: seq++, payload: ipv4('198.18.1.10', '198.18.200.5')})
      await send(first)
      assert.ok(await h.nextTun())
      await send(first) // replayed
      await settle()
      assert.is(h.engine.stats(ids[i])!.drops.replay, 1, `${c.name}: replay`)
      // Tampered and cut-off copies of a packet not seen yet (of a seen one, the window drops them first).
      const good = espSeal(c, {spi, seq: seq++, payload: ipv4('198.18.1.10', '198.18.200.5')})
      const before = h.engine.stats(ids[i])!
      for (let at = 0; at < good.length; at++) {
        const bad = Buffer.from(good)
        bad[at] ^= 0x80
        await send(bad)
      }
      for (let len = 0; len < good.length; len++) await send(good.subarray(0, len))
      await send(Buffer.concat([good, Buffer.alloc(65507 - good.length, 1)])) // the largest UDP payload
      await settle()
      const after = h.engine.stats(ids[i])!
      assert.is(after.packets, before.packets, `${c.name}: nothing tampered was delivered`)
      assert.ok(after.drops.auth - before.drops.auth >= good.length - 8, `${c.name}: every flip past the SPI is an ICV failure (auth ${after.drops.auth})`)
      assert.is(after.drops.replay, 1, `${c.name}: forgeries did not move the window`)
      await send(good)
      assert.ok(await h.nextTun(), `${c.name}: the untampered packet is still accepted`)
    }
    assert.is(h.tun.length, 0, 'no tampered packet reached the TUN side')
    const unknownBefore = h.engine.totals().noSa
    await send(espSeal(cs[0], {spi: 0xc0fff000, seq: 1, payload: ipv4('198.18.1.10', '198.18.200.5')}))
    await settle()
    assert.is(h.engine.totals().noSa, unknownBefore + 1, 'unknown SPI')
    // Still working afterwards.
    const inner = ipv4('198.18.1.11', '198.18.200.5')
    await send(espSeal(cs[0], {spi: 0xc0000100, seq: 1000, payload: inner}))
    assert.equal(await h.nextTun(), inner)
  } finally {
    h.close()
  }
})

t('inner checks: a wrong inner source or IPv6 inside is policy; bad padding contents, a pad length too long and a non-IPv4 inner packet are malformed, next header 59 is dropped silently', async () => {
  const h = await Harness.open()
  try {
    const [gcm, , , cbc] = suites()
    const a = inbound(h, gcm, 0xc0000201)
    const b = inbound(h, cbc, 0xc0000202)
    const ok = ipv4('198.18.1.10', '198.18.200.5')
    let seq = 1
    const drops = (id: number): Record<string, number> => h.engine.stats(id)!.drops
    for (const [id, c, spi] of [[a, gcm, 0xc0000201], [b, cbc, 0xc0000202]] as const) {
      await h.send(espSeal(c, {spi, seq: seq++, payload: ipv4('198.18.9.9', '198.18.200.5')}))
      await until('policy drop', () => drops(id).policy === 1)
      await h.send(espSeal(c, {spi, seq: seq++, payload: ok, nextHeader: 41})) // IPv6 inside: not carried
      await until('policy drop', () => drops(id).policy === 2)
      const block = c.suite.integ === undefined ? 4 : 16
      const least = (block - ((ok.length + 2) % block)) % block
      await h.send(espSeal(c, {spi, seq: seq++, payload: ok, padding: Buffer.alloc(least + block, 0)})) // zeros, not 1, 2, 3…
      await until('malformed (padding contents)', () => drops(id).malformed === 1)
      await h.send(espSeal(c, {spi, seq: seq++, payload: Buffer.alloc(block * 2 - 2, 0xaa), padding: Buffer.alloc(0)}))
      await until('malformed (not an IPv4 packet)', () => drops(id).malformed === 2)
      await h.send(espSeal(c, {spi, seq: seq++, payload: ok, padLength: 255})) // more padding than plaintext
      await until('malformed (pad length)', () => drops(id).malformed === 3)
      await h.send(espSeal(c, {spi, seq: seq++, payload: Buffer.alloc(0), nextHeader: NextHeader.DUMMY, extraPad: block}))
      await until('dummy counted', () => drops(id).dummy === 1)
      await h.send(espSeal(c, {spi, seq: seq++, payload: ok, extraPad: block * 2})) // longer valid padding: accepted
      assert.equal(await h.nextTun(), ok)
      assert.ok(h.engine.stats(id)!.lastRxMs > Date.now() - 10000, 'lastRxMs is on the Date.now() scale')
    }
    assert.is(h.tun.length, 0, 'only the valid packets were delivered')
  } finally {
    h.close()
  }
})

t('anti-replay: the native window accepts exactly what src/esp/core/replay.ts accepts (window 1024, reordering, duplicates, jumps)', async () => {
  const h = await Harness.open()
  try {
    const c = suites()[1]
    const id = inbound(h, c, 0xc0000301)
    const r = new Rng(SEED ^ 0x5eed)
    const ref = new ReplayWindow()
    const want: number[] = []
    let top = 0
    for (let i = 0; i < 3000; i++) {
      const k = r.below(10)
      const seq = Math.max(0, k < 4 ? top + 1 + r.below(3) : k < 7 ? top - r.below(1100) : k < 9 ? top - r.below(40) : top + r.below(5000))
      top = Math.max(top, seq)
      if (ref.accept(seq)) want.push(seq)
      const body = Buffer.alloc(4)
      body.writeUInt32BE(seq)
      await h.send(espSeal(c, {spi: 0xc0000301, seq, payload: ipv4('198.18.1.10', '198.18.200.5', body)}))
      // A few at a time: a packet socket pair queues only ~10 packets (net.unix.max_dgram_qlen).
      if (i % 8 === 7) await until('the batch counted', () => accounted(h, [id]) === i + 1)
    }
    await until('all counted', () => accounted(h, [id]) === 3000)
    await until(`${want.length} packets delivered`, () => h.tun.length >= want.length)
    assert.is(h.engine.totals().tunErrors, 0)
    assert.equal(h.tun.map((p) => p.readUInt32BE(28)), want, `seed ${SEED}`)
  } finally {
    h.close()
  }
})

t('sequence numbers: seq-soft at 2^32 - 2^16, seq-exhausted at 2^32 - 1, after which the SA sends nothing', async () => {
  const h = await Harness.open()
  try {
    const c = suites()[0]
    const id = outbound(h, c, 0xd0000401)
    const events: EspEvent[] = []
    h.engine.onEvent((e) => events.push(e))
    const out = ipv4('198.18.200.5', '198.18.1.10')
    h.engine.setSequence(id, 2 ** 32 - 2 ** 16 - 2)
    for (let i = 0; i < 3; i++) h.inject(out)
    for (let i = 0; i < 3; i++) assert.is(espOpen(c.reverse, await h.nextUdp()).seq, 2 ** 32 - 2 ** 16 - 1 + i)
    await until('seq-soft', () => events.length === 1)
    assert.equal(events, [{type: 'seq-soft', id}])
    h.engine.setSequence(id, 2 ** 32 - 3)
    for (let i = 0; i < 4; i++) h.inject(out)
    assert.is(espOpen(c.reverse, await h.nextUdp()).seq, 2 ** 32 - 2)
    assert.is(espOpen(c.reverse, await h.nextUdp()).seq, 2 ** 32 - 1)
    await until('seq-exhausted and the rest dropped', () => events.length === 2 && h.engine.totals().noSa === 2)
    assert.equal(events[1], {type: 'seq-exhausted', id})
    await new Promise((res) => setTimeout(res, 50))
    assert.is(h.udp.length, 0, 'nothing sent after 2^32 - 1')
    // A rekeyed SA takes over.
    const next = outbound(h, c, 0xd0000402)
    h.inject(out)
    assert.is(espOpen(c.reverse, await h.nextUdp()).spi, 0xd0000402)
    assert.is(h.engine.stats(next)!.seq, 1)
  } finally {
    h.close()
  }
})

t('UDP encapsulation: IKE datagrams (non-ESP marker) reach onIke stripped, keepalives are counted, sendIke and sendKeepalive frame them', async () => {
  const h = await Harness.open()
  try {
    const got: [Buffer, {address: string; port: number}][] = []
    h.engine.onIke((d, from) => got.push([d, from]))
    const ike = Buffer.from('2108c88dbbca8fe2000000000000000021202208', 'hex')
    await h.send(Buffer.concat([Buffer.alloc(4), ike]))
    await h.send(Buffer.from([0xff]))
    await h.send(Buffer.from([0xff]))
    await until('the IKE datagram', () => got.length === 1 && h.engine.totals().keepalives === 2)
    assert.equal(got[0][0], ike)
    assert.equal(got[0][1], h.peerEndpoint)
    assert.is(h.engine.totals().ike, 1)
    assert.ok(h.engine.sendIke(ike, h.peerEndpoint))
    assert.equal(await h.nextUdp(), Buffer.concat([Buffer.alloc(4), ike]))
    assert.ok(h.engine.sendKeepalive(h.peerEndpoint))
    assert.equal(await h.nextUdp(), Buffer.from([0xff]))
  } finally {
    h.close()
  }
})

t('batching: a burst of IKE datagrams reaches JavaScript in fewer native callbacks than datagrams; non-IPv4 from the TUN side is counted, not sent', async () => {
  const n = nativeBinding() as unknown as {espOpen: (a: string, p: number, cb: (b: unknown[]) => void) => [object, number]; espTotals: (h: object) => {ike: number}; espClose: (h: object) => void}
  const batches: number[] = []
  const [handle, port] = n.espOpen('127.0.0.1', 0, (b) => batches.push(b.length))
  const h = await Harness.open()
  try {
    const ike = Buffer.concat([Buffer.alloc(4), Buffer.alloc(28, 1)])
    for (let i = 0; i < 200; i++) h.peer.send(ike, port, '127.0.0.1')
    await until('200 IKE datagrams', () => batches.reduce((a, b) => a + b, 0) === 200)
    assert.ok(batches.length < 200, `${batches.length} callbacks for 200 datagrams`)
    assert.is(n.espTotals(handle).ike, 200)
    h.inject(Buffer.from('6000000000000000', 'hex')) // an IPv6 header's start
    await until('counted', () => h.engine.totals().noSa === 1)
    assert.is(h.udp.length, 0)
  } finally {
    n.espClose(handle)
    h.close()
  }
})

t('outbound lookup: 10 000 SAs (/32 selectors and ranges), the newest SA holding a destination carries it; setPeer moves an SA', async () => {
  const h = await Harness.open()
  try {
    const c = suites()[1]
    const ids: number[] = []
    for (let i = 0; i < 10000; i++) {
      const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
      ids.push(outbound(h, c, 0xd1000000 + i, [{from: a, to: a}]))
    }
    const wide = outbound(h, c, 0xd2000001, [{from: '10.0.0.0', to: '10.0.0.255'}, {from: '198.18.1.0', to: '198.18.1.255'}])
    const spiFor = async (dst: string): Promise<number> => {
      h.inject(ipv4('198.18.200.5', dst))
      return espOpen(c.reverse, await h.nextUdp()).spi
    }
    assert.is(await spiFor('10.0.1.7'), 0xd1000000 + 263, 'a /32 selector')
    assert.is(await spiFor('10.0.0.7'), 0xd2000001, 'the newer range wins over an older /32')
    assert.is(await spiFor('198.18.1.99'), 0xd2000001)
    const newer = outbound(h, c, 0xd3000001, [{from: '10.0.0.7', to: '10.0.0.7'}]) // a rekey of 10.0.0.7
    assert.is(await spiFor('10.0.0.7'), 0xd3000001, 'the newest /32 wins over an older range')
    h.engine.removeSa(newer)
    assert.is(await spiFor('10.0.0.7'), 0xd2000001, 'removed: the range again')
    h.engine.removeSa(wide)
    assert.is(await spiFor('10.0.0.7'), 0xd1000007, 'removed: the /32 again')
    h.engine.removeSa(ids[7])
    h.inject(ipv4('198.18.200.5', '10.0.0.7'))
    await until('no SA', () => h.engine.totals().noSa === 1)
    // NAT rebinding: the peer moved to another port.
    const other = await Harness.open()
    try {
      assert.ok(h.engine.setPeer(ids[8], other.peerEndpoint))
      h.inject(ipv4('198.18.200.5', '10.0.0.8'))
      assert.is(espOpen(c.reverse, await other.nextUdp()).spi, 0xd1000008)
    } finally {
      other.close()
    }
    assert.is(h.engine.stats(ids[9999])!.packets, 0)
    assert.ok(h.engine.removeSa(ids[9999]))
    assert.is(h.engine.stats(ids[9999]), undefined)
    assert.not.ok(h.engine.removeSa(ids[9999]), 'removed once')
  } finally {
    h.close()
  }
})

t('outbound lookup by source too: a gateway\'s two CHILD_SAs to one client (same destination, different subnets) each carry only their subnet\'s packets; the seq option starts an SA further on', async () => {
  const h = await Harness.open()
  try {
    const c = suites()[0]
    const client = {from: '198.18.200.2', to: '198.18.200.2'}
    const add = (spi: number, from: string, to: string, seq?: number): number => h.engine.addSa({dir: 'out', spi: spiBuf(spi), ...c.suite, encKey: c.reverse.encKey, integKey: c.reverse.integKey, peer: h.peerEndpoint, selectors: [client], sources: [{from, to}], seq})
    add(0xd4000001, '198.18.1.0', '198.18.1.255')
    add(0xd4000002, '198.18.9.0', '198.18.9.255', 2 ** 32 - 2 ** 16 - 5)
    const sent = async (src: string): Promise<{spi: number; seq: number}> => {
      h.inject(ipv4(src, '198.18.200.2'))
      return espOpen(c.reverse, await h.nextUdp())
    }
    const one = await sent('198.18.1.10')
    assert.equal([one.spi, one.seq], [0xd4000001, 1], 'the older SA still carries its own subnet')
    const nine = await sent('198.18.9.10')
    assert.equal([nine.spi, nine.seq], [0xd4000002, 2 ** 32 - 2 ** 16 - 4])
    h.inject(ipv4('198.18.5.5', '198.18.200.2'))
    await until('a source no SA carries: not sent', () => h.engine.totals().noSa === 1)
    assert.throws(() => h.engine.addSa({dir: 'in', spi: spiBuf(0xc4000001), ...c.suite, encKey: c.encKey, integKey: c.integKey, selectors: [client], seq: 5}), /outbound/)
  } finally {
    h.close()
  }
})

t('trace: a record per ESP packet both ways while set (SPI, sequence, length, first 20 inner bytes); none once unset', async () => {
  const h = await Harness.open()
  try {
    const c = suites()[2]
    inbound(h, c, 0xc0000501)
    outbound(h, c, 0xd0000501)
    const recs: EspTraceRecord[] = []
    h.engine.trace((r) => recs.push(r))
    const inner = ipv4('198.18.1.10', '198.18.200.5')
    const pkt = espSeal(c, {spi: 0xc0000501, seq: 1, payload: inner})
    await h.send(pkt)
    await h.nextTun()
    const back = ipv4('198.18.200.5', '198.18.1.10')
    h.inject(back)
    const sent = await h.nextUdp()
    await until('two records', () => recs.length === 2)
    assert.equal(recs[0], {dir: 'in', spi: 0xc0000501, seq: 1, length: pkt.length, inner: inner.subarray(0, 20)})
    assert.equal(recs[1], {dir: 'out', spi: 0xd0000501, seq: 1, length: sent.length, inner: back.subarray(0, 20)})
    h.engine.trace(null)
    h.inject(back)
    await h.nextUdp()
    await new Promise((res) => setTimeout(res, 30))
    assert.is(recs.length, 2)
  } finally {
    h.close()
  }
})

t('a closed engine throws TK_CLOSED (and the addon ECLOSED on its handle), a foreign handle a TypeError: never a crash', async () => {
  const e = EspEngine.open({address: '127.0.0.1', port: 0})
  const handle = (e as unknown as {handle: object}).handle
  e.close()
  e.close()
  for (const call of [() => e.totals(), () => e.stats(1), () => e.sendKeepalive({address: '127.0.0.1', port: 9}), () => e.attachTun(0)]) {
    const err = (() => { try { call(); return null } catch (x) { return x } })()
    assert.instance(err, TunkitError)
    assert.is((err as TunkitError).code, 'TK_CLOSED')
  }
  const n = nativeBinding() as unknown as Record<string, (...a: unknown[]) => unknown>
  assert.throws(() => n.espTotals(handle), (x: {code?: string}) => x.code === 'ECLOSED')
  assert.throws(() => n.espTotals({}), (x: unknown) => x instanceof TypeError)
  assert.throws(() => n.espAddSa(nativeBinding().macKey(Buffer.alloc(32)), true, 1, 20, 128, 0, Buffer.alloc(20), null, '127.0.0.1', 1, Buffer.alloc(0), Buffer.alloc(0)), (x: unknown) => x instanceof TypeError)
  n.espClose(handle) // twice: nothing happens
  // Wrong keys and suites are refused before the addon sees them.
  const h = await Harness.open()
  try {
    const c = suites()[0]
    assert.throws(() => h.engine.addSa({dir: 'in', spi: spiBuf(0x1000), ...c.suite, encKey: c.encKey.subarray(1), selectors: []}), /do not fit/)
    assert.throws(() => h.engine.addSa({dir: 'in', spi: spiBuf(0x1000), encr: 3, encKey: Buffer.alloc(24), selectors: []}), /not supported/)
    inbound(h, c, 0x2000)
    assert.throws(() => inbound(h, c, 0x2000), /exists/)
  } finally {
    h.close()
  }
})

t(`fuzz: ${CASES} hostile datagrams (mutated ESP of every suite, IKE, keepalives, random bytes) into the engine: each counted once, none delivered, the engine still works`, async () => {
  const h = await Harness.open()
  try {
    const cs = suites()
    const ids = cs.map((c, i) => inbound(h, c, 0xc0000600 + i))
    const samples = cs.map((c, i) => espSeal(c, {spi: 0xc0000600 + i, seq: 5, payload: ipv4('198.18.1.10', '198.18.200.5')}))
    let sent = 0
    let pending: Promise<void>[] = []
    await fuzzAsync('esp engine datagrams', async (r) => {
      const base = r.pick(samples)
      const d = r.chance(0.1) ? r.bytes(r.length(200)) : r.chance(0.05) ? Buffer.concat([Buffer.alloc(4), r.bytes(r.length(40))]) : mutate(r, base)
      if (d.equals(base) || d.length > 65507) return
      sent++
      pending.push(h.send(d))
      if (pending.length >= 200) {
        await Promise.all(pending)
        pending = []
        await until(`${sent} datagrams counted`, () => accounted(h, ids) === sent)
      }
    })
    await Promise.all(pending)
    await until(`${sent} datagrams counted`, () => accounted(h, ids) === sent)
    const delivered = ids.reduce((n, id) => n + h.engine.stats(id)!.packets, 0)
    // A mutation can only be accepted if it is another valid packet: different padding or TFC
    // contents cannot be forged without the key, so nothing may have been delivered.
    assert.is(delivered, 0, `seed ${SEED}`)
    const inner = ipv4('198.18.1.10', '198.18.200.5')
    await h.send(espSeal(cs[3], {spi: 0xc0000603, seq: 2 ** 31, payload: inner}))
    assert.equal(await h.nextTun(), inner)
  } finally {
    h.close()
  }
})

t.run()
