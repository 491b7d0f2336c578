// The attacks of issue 9, one function each: attack(targets, durationMs, ctl) → summary.
// targets: {gate, relay: {host, port}, id: {identity, cert, key, ca}, hangPort, tarpitPort,
// closedPort, socks, stun, ...counts}; ctl.stopped() turns true when the attack must end (its
// time is up or it was told to stop). Every attack is bounded in count and time, and speaks only
// to loopback. They run in their own process (attack-child.mjs) or in-process (tests).
import {connect} from 'node:net'
import {connect as tlsConnect} from 'node:tls'
import {createSocket} from 'node:dgram'
import {randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {ROOT, sleep} from './lib.mjs'

const dist = (p) => import(pathToFileURL(join(ROOT, 'dist/src', p)).href)
const {encodeTunnel, decodeTunnel, TunnelType} = await dist('tunnel/codec/tunnel.js')
const {encodeUsher} = await dist('tunnel/codec/usher.js')
const {FrameSplitter, encodeHeader} = await dist('tunnel/codec/frame.js')
const {requestFrame, EXPORTER_LABEL} = await dist('tunnel/core/handshake.js')
const {readClearFrame} = await dist('tunnel/io/relay-frame.js')

const USHER_SEND = 3
const hp = (a) => `${a.host}:${a.port}`

function tcp(port, host = '127.0.0.1') {
  return new Promise((res, rej) => {
    const s = connect(port, host)
    s.once('connect', () => { s.removeListener('error', rej); res(s) })
    s.once('error', rej)
  })
}

/** The attacker's own loopback addresses, 127.0.0.2-31 (the legitimate portal uses 127.0.0.1). */
const attackSource = (k) => `127.0.0.${2 + (k % 30)}`

function write(s, buf) {
  return s.write(buf) ? undefined : new Promise((r) => { s.once('drain', r); s.once('close', r) })
}

/**
 * A tunnel spoken by hand, as a hostile portal would: RELAY, TLS 1.3 with the identity's client
 * certificate, REQUEST bound to the session, RESPONSE. Usher records go to onRecord(rawFrame).
 */
export async function openTunnel(gate, id, {earlyData = false, via = [], timeoutMs = 10000, onRecord = () => {}} = {}) {
  const first = via[0] ?? gate
  const raw = await tcp(first.port, first.host)
  raw.on('error', () => {})
  const timer = setTimeout(() => raw.destroy(), timeoutMs)
  try {
    raw.write(encodeTunnel({kind: 'relay', origin: 'hostile', path: [...via.map(hp), hp(gate)]}))
    const answer = await readClearFrame(raw, [TunnelType.RELAY, TunnelType.CLOSE], 'RELAY echo')
    if (answer.frame.kind === 'close') throw new Error(`refused before TLS: ${answer.frame.reason}`)
    if (answer.rest.length) raw.unshift(answer.rest)
    const tls = tlsConnect({socket: raw, cert: readFileSync(id.cert), key: readFileSync(id.key), ca: readFileSync(id.ca), servername: 'localhost', minVersion: 'TLSv1.3'})
    tls.on('error', () => {})
    await new Promise((res, rej) => { tls.once('secureConnect', res); tls.once('close', () => rej(new Error('closed during TLS'))) })
    tls.write(encodeTunnel(requestFrame({user: id.identity, destination: 'gate', binding: tls.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)).toString('hex'), remoteForwards: [], earlyData})))
    const splitter = new FrameSplitter(1 << 20)
    const t = {tls, closed: false, closeReason: '', early: false, response: null}
    const response = new Promise((res, rej) => {
      tls.on('data', (chunk) => {
        let frames
        try { frames = splitter.push(chunk) } catch { return tls.destroy() }
        for (const f of frames) {
          if (f.type === TunnelType.RESPONSE) { t.response = decodeTunnel(f); t.early = /early-data\x001|early-data=1|early-data/.test(String(t.response.clientData)); res() }
          else if (f.type === TunnelType.CLOSE) { t.closed = true; t.closeReason = decodeTunnel(f).reason; rej(new Error(`CLOSE: ${t.closeReason}`)) }
          else if (f.type === TunnelType.PING) tls.write(encodeTunnel({kind: 'pong', nonce: decodeTunnel(f).nonce}))
          else if (f.type >= -1 && f.type <= 7) onRecord(f)
        }
      })
      tls.on('close', () => { t.closed = true; rej(new Error(`tunnel closed before RESPONSE ${t.closeReason}`)) })
    })
    await response
    clearTimeout(timer)
    return t
  } catch (e) {
    clearTimeout(timer)
    raw.destroy()
    throw e
  }
}

/** (6) Opens to a target whose connect hangs, each followed by 2 MiB of early data. */
export async function earlyDataHang(t, durationMs, ctl) {
  const count = t.count ?? 1200
  const perOpen = t.earlyBytes ?? 2 * 1024 * 1024
  let rst = 0
  const tun = await openTunnel(t.gate, t.id, {earlyData: true, onRecord: (f) => { if (f.type === 7 || f.type === -1) rst++ }})
  const chunk = randomBytes(64 * 1024)
  const hdr = encodeHeader(USHER_SEND, 0, chunk.length)
  let opens = 0
  let bytes = 0
  for (let i = 0; i < count && !ctl.stopped() && !tun.closed; i++) {
    await write(tun.tls, encodeUsher({kind: 'open', session: i, protocol: 'tcp', host: '127.0.0.1', port: t.hangPort}))
    opens++
    for (let sent = 0; sent < perOpen && !tun.closed; sent += chunk.length) {
      hdr.writeUInt16BE(i, 6)
      await write(tun.tls, Buffer.concat([hdr, chunk]))
      bytes += chunk.length
      if (ctl.stopped()) break
    }
  }
  while (!ctl.stopped() && !tun.closed) await sleep(50)
  return {opens, earlyMiB: Math.round(bytes / 1048576), earlyGranted: tun.early, refused: rst, tunnelClosed: tun.closed ? tun.closeReason || 'yes' : 'no', teardown: () => tun.tls.destroy()}
}

/** (7) Several tunnels, each filling its session table with connections to an accepting tarpit. */
export async function tarpitSessions(t, durationMs, ctl) {
  const tunnels = []
  let ok = 0
  let failed = 0
  const reasons = new Set()
  for (let k = 0; k < (t.tunnels ?? 5) && !ctl.stopped(); k++) {
    try {
      tunnels.push(await openTunnel(t.gate, t.id, {onRecord: (f) => {
        if (f.type !== -1) return
        if (f.body.readInt16BE(0) === -1) { failed++; if (reasons.size < 3) reasons.add(f.body.subarray(2, 60).toString().replace(/\0.*/, '')) } else ok++
      }}))
    } catch (e) {
      reasons.add(`tunnel: ${e.message}`)
    }
  }
  const per = t.sessions ?? 4096
  for (let i = 0; i < per && !ctl.stopped(); i += 256) {
    for (const tun of tunnels) {
      if (tun.closed) continue
      const recs = []
      for (let j = i; j < Math.min(per, i + 256); j++) recs.push(encodeUsher({kind: 'open', session: j, protocol: 'tcp', host: '127.0.0.1', port: t.tarpitPort}))
      await write(tun.tls, Buffer.concat(recs))
    }
    await sleep(5)
  }
  while (!ctl.stopped()) await sleep(50)
  return {tunnels: tunnels.length, opened: ok, refused: failed, reasons: [...reasons], teardown: () => tunnels.forEach((x) => x.tls.destroy())}
}

/** (8) Opens by names that only a resolver that never answers could resolve, `concurrent` at once. */
export async function silentDnsOpens(t, durationMs, ctl) {
  const concurrent = t.concurrent ?? 40
  let n = 0
  let answered = 0
  let tun
  const next = () => {
    if (ctl.stopped() || tun.closed) return
    const id = n++ & 0x7fff
    tun.tls.write(encodeUsher({kind: 'open', session: id, protocol: 'tcp', host: `h${n}-${Date.now() % 100000}.hostile.test`, port: 80}))
  }
  tun = await openTunnel(t.gate, t.id, {onRecord: (f) => { if (f.type === -1) { answered++; next() } }})
  for (let i = 0; i < concurrent; i++) next()
  while (!ctl.stopped()) await sleep(50)
  return {opens: n, answered, teardown: () => tun.tls.destroy()}
}

/** (9) Many connections that never finish the handshake, reopened as soon as they are dropped. */
export async function preTlsIdle(t, durationMs, ctl) {
  const conns = t.conns ?? 3000
  let opened = 0
  let dropped = 0
  let refused = 0
  const live = new Set()
  const one = (k) => {
    if (ctl.stopped()) return
    // From other addresses than the legitimate portal's (127.0.0.1): before authentication a
    // gate can tell clients apart only by address.
    const s = connect({port: t.gate.port, host: t.gate.host, localAddress: attackSource(k)})
    live.add(s)
    opened++
    s.on('error', () => {})
    // Half send nothing; half send a RELAY frame and then stall before TLS.
    s.on('connect', () => { if (k % 2) s.write(encodeTunnel({kind: 'relay', origin: 'idle', path: [hp(t.gate)]})) })
    s.on('data', (d) => { if (d.length >= 6 && d.readInt16BE(4) === TunnelType.CLOSE) refused++ })
    s.on('close', () => { live.delete(s); dropped++; setTimeout(() => one(k), 10) })
  }
  for (let k = 0; k < conns && !ctl.stopped(); k++) {
    one(k)
    if (k % 200 === 199) await sleep(20)
  }
  while (!ctl.stopped()) await sleep(50)
  return {connections: opened, dropped, refusedWithClose: refused, teardown: () => live.forEach((s) => s.destroy())}
}

/** (10) UsherOpen as fast as the tunnel takes them, to a port that refuses. */
export async function openFlood(t, durationMs, ctl) {
  let replies = 0
  const tun = await openTunnel(t.gate, t.id, {onRecord: (f) => { if (f.type === -1) replies++ }})
  let sent = 0
  const t0 = Date.now()
  const max = t.maxOpens ?? 5_000_000
  while (!ctl.stopped() && !tun.closed && sent < max) {
    const recs = []
    for (let j = 0; j < 512; j++) recs.push(encodeUsher({kind: 'open', session: (sent + j) & 0x7fff, protocol: 'tcp', host: '127.0.0.1', port: t.closedPort}))
    sent += 512
    // A gate that stops reading (its open-rate hold) leaves the write waiting: the attack still
    // ends on time, and reports (it was killed before, and its summary lost).
    const w = write(tun.tls, Buffer.concat(recs))
    let drained = !w
    w?.then(() => (drained = true))
    while (!drained && !ctl.stopped()) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setImmediate(r))
  }
  const secs = (Date.now() - t0) / 1000
  return {opens: sent, perSecond: Math.round(sent / secs), replies, tunnelClosed: tun.closed ? tun.closeReason || 'yes' : 'no', teardown: () => tun.tls.destroy()}
}

/** (11) A RELAY frame that names the relay twice: each hop connects the relay to itself again. */
export async function relaySelfLoop(t, durationMs, ctl) {
  const me = hp(t.relay)
  const held = []
  let sent = 0
  for (let i = 0; i < (t.count ?? 20) && !ctl.stopped(); i++) {
    try {
      const s = await tcp(t.relay.port, t.relay.host)
      s.on('error', () => {})
      s.resume()
      s.write(encodeTunnel({kind: 'relay', origin: 'hostile', path: [me, me, hp(t.gate)]}))
      held.push(s)
      sent++
    } catch { /* relay refused: counted by what was sent */ }
    await sleep(t.gapMs ?? 250)
  }
  while (!ctl.stopped()) await sleep(50)
  return {frames: sent, teardown: () => held.forEach((s) => s.destroy())}
}

/** (12) RELAY frames whose next hop is a name nobody answers for, `concurrent` at once, renewed. */
export async function relayUnresolvable(t, durationMs, ctl) {
  const concurrent = t.concurrent ?? 200
  let n = 0
  let closes = 0
  const live = new Set()
  const one = () => {
    if (ctl.stopped()) return
    const s = connect({port: t.relay.port, host: t.relay.host, localAddress: attackSource(n)})
    live.add(s)
    n++
    s.on('error', () => {})
    s.on('connect', () => s.write(encodeTunnel({kind: 'relay', origin: 'hostile', path: [hp(t.relay), `u${n}.hostile.test:4433`]})))
    s.resume()
    s.on('close', () => { live.delete(s); closes++; setTimeout(one, 10) })
  }
  for (let i = 0; i < concurrent; i++) one()
  while (!ctl.stopped()) await sleep(50)
  return {connections: n, closed: closes, teardown: () => live.forEach((s) => s.destroy())}
}

/** A STUN Binding request (RFC 8489): 20-byte header, no attributes. */
export function bindingRequest() {
  const b = Buffer.alloc(20)
  b.writeUInt16BE(0x0001, 0)
  b.writeUInt32BE(0x2112a442, 4)
  randomBytes(12).copy(b, 8)
  return b
}

/**
 * (13) Binding requests from many source addresses (127.x.y.z, all local): the bytes the server
 * sends back against the bytes it received. Sources are used `perSource` times each.
 */
export async function stunAmplify(t, durationMs, ctl) {
  const sources = t.sources ?? 100000
  const perSource = t.perSource ?? 2
  let sent = 0
  let recv = 0
  let used = 0
  const window = 256
  const inflight = new Set()
  const one = (i) => new Promise((res) => {
    const s = createSocket('udp4')
    inflight.add(s)
    const addr = `127.${1 + ((i >> 16) & 0x7f)}.${(i >> 8) & 255}.${(i & 255) || 1}`
    s.on('message', (m) => (recv += m.length))
    s.on('error', () => {})
    s.bind(0, addr, () => {
      for (let k = 0; k < perSource; k++) { const r = bindingRequest(); sent += r.length; s.send(r, t.stun.port, t.stun.host) }
      setTimeout(() => { inflight.delete(s); s.close(); res() }, 150)
    })
  })
  const running = new Set()
  for (let i = 0; i < sources && !ctl.stopped(); i++) {
    used++
    const p = one(i).then(() => running.delete(p))
    running.add(p)
    if (running.size >= window) await Promise.race(running)
  }
  await Promise.all(running)
  return {sources: used, sentBytes: sent, recvBytes: recv, ratio: sent ? Number((recv / sent).toFixed(2)) : 0}
}

// ---- the portal's SOCKS5 server ----

function socksGreet(port) {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1')
    s.on('error', rej)
    s.on('connect', () => s.write(Buffer.from([5, 1, 0])))
    s.once('data', (d) => (d[0] === 5 && d[1] === 0 ? res(s) : rej(new Error('bad method reply'))))
    setTimeout(() => rej(new Error('greeting timeout')), 2000)
  })
}

function nextReply(s, ms = 2000) {
  return new Promise((res) => {
    const t = setTimeout(() => res(null), ms)
    s.once('data', (d) => { clearTimeout(t); res(d) })
    s.once('close', () => { clearTimeout(t); res(null) })
  })
}

const domain = (name) => {
  const b = Buffer.from(name, 'latin1')
  return Buffer.concat([Buffer.from([3, b.length]), b, Buffer.from([0, 80])])
}

/** (1) SOCKS5 requests whose domain a careless parser trips over, and a UDP datagram likewise. */
export async function socksMalformed(t, durationMs, ctl) {
  const bad = [domain('a\0b.example'), domain('\xe9'.repeat(200)), domain('fe80::1%a:b:c:d:e:f:1:2:3')]
  let sent = 0
  let errors = 0
  while (!ctl.stopped() && sent < (t.count ?? 2000)) {
    for (const d of bad) {
      try {
        const s = await socksGreet(t.socks)
        s.write(Buffer.concat([Buffer.from([5, 1, 0]), d]))
        await nextReply(s, 1000)
        s.destroy()
      } catch { errors++ }
      sent++
    }
    try {
      const s = await socksGreet(t.socks)
      s.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
      const r = await nextReply(s)
      if (r && r[1] === 0 && r.length >= 10) {
        const port = r.readUInt16BE(8)
        const u = createSocket('udp4')
        const dgram = Buffer.concat([Buffer.from([0, 0, 0]), domain('a\0b.example'), Buffer.from('x')])
        await new Promise((res) => u.send(dgram, port, '127.0.0.1', res))
        await sleep(20)
        u.close()
      }
      s.destroy()
    } catch { errors++ }
    sent++
  }
  return {requests: sent, errors}
}

/** (2) UDP ASSOCIATE, then close the TCP connection at once, `count` times. */
export async function udpAssocLeak(t, durationMs, ctl) {
  let n = 0
  let errors = 0
  const count = t.count ?? 2000
  while (!ctl.stopped() && n < count) {
    const batch = []
    for (let k = 0; k < 20 && n < count; k++, n++) {
      batch.push(socksGreet(t.socks).then(async (s) => {
        s.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
        await nextReply(s)
        s.destroy()
      }).catch(() => { errors++ }))
    }
    await Promise.all(batch)
  }
  return {associations: n, errors}
}

export const ATTACKS = {earlyDataHang, tarpitSessions, silentDnsOpens, preTlsIdle, openFlood, relaySelfLoop, relayUnresolvable, stunAmplify, socksMalformed, udpAssocLeak}

/** Run one attack for durationMs (or until stop() is called); ends its sockets before resolving. */
export function runAttack(name, targets, durationMs) {
  let stopped = false
  const end = Date.now() + durationMs
  const ctl = {stopped: () => stopped || Date.now() >= end}
  const done = ATTACKS[name](targets, durationMs, ctl).then((r) => {
    const {teardown, ...summary} = r
    teardown?.()
    return summary
  }, (e) => ({error: e.message}))
  return {done, stop: () => { stopped = true }}
}
