import {createHash, randomBytes} from 'node:crypto'
import {writeSync} from 'node:fs'
import {connect, createServer, type Server, type Socket} from 'node:net'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {connect as tlsConnect, TLSSocket} from 'node:tls'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {FrameSplitter} from '../../src/tunnel/codec/frame.js'
import {decodeTunnel, encodeTunnel, isTunnelType, type TunnelFrame} from '../../src/tunnel/codec/tunnel.js'
import {EXPORTER_LABEL, requestFrame, responseFrame} from '../../src/tunnel/core/handshake.js'
import {event, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {hashSink, listening, upload} from '../helpers/servers.js'
import {makePki, startGate, startPortal, stop, type Pki} from '../helpers/tunnel.js'

/**
 * The native data path (--data-path native, issue 12 item 2) between real gate and portal
 * processes over real TLS: data both ways and on many streams, the fallback to TLS when one side
 * does not offer it, and a peer that breaks the records or the SWITCH rules: the tunnel closes
 * with a reason, the process goes on.
 */
const t = suite<{pki: Pki; sink: Server & {port: number}; source: Server & {port: number}; digest: string}>('native data path, end to end')
const MB = 1 << 20
const SOURCE_BYTES = 24 * MB

/** Sends SOURCE_BYTES of fixed pseudo-random data to whoever connects: the download direction. */
function source(block: Buffer): Promise<Server & {port: number}> {
  return listening(createServer((s) => {
    s.on('error', () => {})
    let left = SOURCE_BYTES
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, block.length)
        left -= n
        if (!s.write(block.subarray(0, n))) return void s.once('drain', pump)
      }
      s.end()
    }
    pump()
  }))
}

/** Reads a connection to its end: the SHA-256 of what came. */
function download(port: number): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256')
    const s = connect(port, '127.0.0.1')
    s.on('data', (d) => h.update(d))
    s.on('end', () => res(h.digest('hex')))
    s.on('error', rej)
  })
}

t.before(async (ctx) => {
  ctx.pki = await makePki('native')
  ctx.sink = await hashSink()
  const block = randomBytes(MB)
  ctx.source = await source(block)
  const h = createHash('sha256')
  for (let left = SOURCE_BYTES; left > 0; left -= MB) h.update(block.subarray(0, Math.min(left, MB)))
  ctx.digest = h.digest('hex')
})

t.after((ctx) => {
  ctx.sink?.close()
  ctx.source?.close()
  ctx.pki?.cleanup()
})

async function pair(ctx: {pki: Pki; sink: {port: number}; source: {port: number}}, gateArgs: string[], portalArgs: string[]): Promise<{gate: Proc & {port: number}; portal: Proc & {ports: Record<string, number>}}> {
  const gate = await startGate(ctx.pki, gateArgs)
  const portal = await startPortal(ctx.pki, gate.port, ['-L', `127.0.0.1:0:127.0.0.1:${ctx.sink.port}`, '-L', `127.0.0.1:0:127.0.0.1:${ctx.source.port}`, ...portalArgs], 2)
  return {gate, portal}
}

t('both sides native: 64 MB up and 24 MB down on one stream, and 16 streams each way at once, arrive intact', async (ctx) => {
  const {gate, portal} = await pair(ctx, ['--data-path', 'native'], ['--data-path', 'native'])
  try {
    assert.is((await event(portal, 'tunnel-up')).dataPath, 'native')
    await waitFor('the switch on both sides', () => gate.stderr.includes('native data path up') && portal.stderr.includes('native data path up'))
    const up = await upload(portal.ports.local, 64 * MB)
    assert.is(up.reply, up.sent, 'upload digest')
    assert.is(await download(portal.ports.local1), ctx.digest, 'download digest')
    const ups = Array.from({length: 16}, () => upload(portal.ports.local, 4 * MB))
    const downs = Array.from({length: 16}, () => download(portal.ports.local1))
    for (const u of await Promise.all(ups)) assert.is(u.reply, u.sent)
    for (const d of await Promise.all(downs)) assert.is(d, ctx.digest)
    assert.not.match(gate.stderr + portal.stderr, /protocol error|internal error|tunnel down/)
  } finally {
    assert.is(await stop(portal), 0, 'portal exits 0')
    assert.is(await stop(gate), 0, 'gate exits 0')
  }
})

for (const [who, gateArgs, portalArgs] of [
  ['the gate does not offer it', ['--data-path', 'tls'], ['--data-path', 'native']],
  ['the portal does not offer it', ['--data-path', 'native'], ['--data-path', 'tls']],
] as const) {
  t(`${who}: plain TLS carries the tunnel`, async (ctx) => {
    const {gate, portal} = await pair(ctx, [...gateArgs], [...portalArgs])
    try {
      assert.is((await event(portal, 'tunnel-up')).dataPath, 'tls')
      const up = await upload(portal.ports.local, 8 * MB)
      assert.is(up.reply, up.sent)
      assert.is(await download(portal.ports.local1), ctx.digest)
      assert.not.match(gate.stderr + portal.stderr, /native data path up/)
    } finally {
      await stop(portal)
      await stop(gate)
    }
  })
}

t('an orderly close on the native path reaches the portal as CLOSE with its reason (here --idle-timeout)', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--data-path', 'native', '--idle-timeout', '1'])
  const portal = await startPortal(ctx.pki, gate.port, ['--data-path', 'native', '--socks', '127.0.0.1:0', '--backoff-max', '30'], 1)
  try {
    const down = await waitFor('the idle close', () => portal.events.find((e) => e.event === 'tunnel-down'))
    assert.match(String(down.reason), /peer closed the tunnel \(timeout: idle for 1 s\)/)
    assert.ok(gate.stderr.includes('native data path up'))
  } finally {
    await stop(portal)
    await stop(gate)
  }
})

/** A TCP proxy between portal and gate that can flip one byte of the portal's next chunk. */
async function tamperProxy(gatePort: number): Promise<Server & {port: number; arm(): void; tampered: number}> {
  let armed = false
  const srv = await listening(createServer((a: Socket) => {
    const b = connect(gatePort, '127.0.0.1')
    a.on('error', () => b.destroy())
    b.on('error', () => a.destroy())
    a.on('data', (d: Buffer) => {
      if (armed && d.length > 0) {
        armed = false
        d = Buffer.from(d)
        d[d.length - 1] ^= 0x40
        p.tampered++
      }
      b.write(d)
    })
    b.pipe(a)
    a.on('end', () => b.end())
    b.on('close', () => a.destroy())
    a.on('close', () => b.destroy())
  }))
  const p = Object.assign(srv, {arm: () => void (armed = true), tampered: 0})
  return p
}

t('a tampered record closes the tunnel with a clear error; both processes go on and the portal reconnects', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--data-path', 'native'])
  const proxy = await tamperProxy(gate.port)
  // The first byte the portal sends after the gate has taken its SWITCH is its first record.
  const watch = setInterval(() => {
    if (proxy.tampered === 0 && gate.stderr.includes('native data path up')) proxy.arm()
  }, 1)
  const portal = await startPortal(ctx.pki, proxy.port, ['--data-path', 'native', '-L', `127.0.0.1:0:127.0.0.1:${ctx.sink.port}`, '--backoff-max', '1'], 1)
  try {
    await waitFor('the tunnel dropped on a bad record', () => /tunnel down: alice .*native record \d+ failed authentication/.test(gate.stderr), 20000)
    clearInterval(watch)
    assert.is(proxy.tampered, 1)
    await waitFor('the second tunnel', () => portal.events.filter((e) => e.event === 'tunnel-up').length >= 2, 20000)
    await waitFor('the second switch', () => (gate.stderr.match(/native data path up/g) ?? []).length >= 2)
    const up = await upload(portal.ports.local, 8 * MB)
    assert.is(up.reply, up.sent, 'the new tunnel carries data')
    assert.is(gate.child.exitCode, null, 'the gate runs on')
    assert.not.match(gate.stderr, /internal error|uncaught|Segmentation/i)
  } finally {
    clearInterval(watch)
    await stop(portal)
    await stop(gate)
    proxy.close()
  }
})

/** A hand-made portal: RELAY, TLS with the client certificate, REQUEST (offering native or not). */
async function hostile(gatePort: number, dir: string, offerNative: boolean, sendRequest = true): Promise<{tls: TLSSocket; raw: Socket; frames: TunnelFrame[]; closed: Promise<void>}> {
  const raw = connect(gatePort, '127.0.0.1')
  raw.on('error', () => {})
  await new Promise((r) => raw.once('connect', r))
  raw.write(encodeTunnel({kind: 'relay', origin: 'hostile', path: [`127.0.0.1:${gatePort}`]}))
  await new Promise((r) => raw.once('data', r))
  raw.pause()
  const tls = tlsConnect({socket: raw, cert: readFileSync(join(dir, 'client.crt')), key: readFileSync(join(dir, 'client.key')), ca: readFileSync(join(dir, 'ca.crt')), servername: 'localhost', minVersion: 'TLSv1.3'})
  tls.on('error', () => {})
  await new Promise((r) => tls.once('secureConnect', r))
  const frames: TunnelFrame[] = []
  const splitter = new FrameSplitter(1 << 20)
  tls.on('data', (d: Buffer) => {
    for (const f of splitter.push(d)) if (isTunnelType(f.type)) frames.push(decodeTunnel(f))
  })
  const closed = new Promise<void>((r) => tls.once('close', () => r()))
  if (sendRequest) {
    tls.write(encodeTunnel(requestFrame({user: 'alice', destination: 'gate', binding: tls.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)).toString('hex'), remoteForwards: [], earlyData: true, nativeDataPath: offerNative})))
    await waitFor('RESPONSE', () => frames.find((f) => f.kind === 'response' || f.kind === 'close'))
  }
  return {tls, raw, frames, closed}
}

const closeOf = (frames: TunnelFrame[]): Extract<TunnelFrame, {kind: 'close'}> | undefined => frames.find((f) => f.kind === 'close') as Extract<TunnelFrame, {kind: 'close'}> | undefined

t('SWITCH at the wrong time, twice, or followed by TLS data: CLOSE protocol-error; an oversized record: the tunnel closes; the gate serves on', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--data-path', 'native'])
  const sw = encodeTunnel({kind: 'switch'})
  try {
    // Before any REQUEST.
    const a = await hostile(gate.port, ctx.pki.dir, true, false)
    a.tls.write(sw)
    await a.closed
    assert.match(closeOf(a.frames)?.reason ?? '', /REQUEST|SWITCH/)

    // Not agreed: the REQUEST did not offer it.
    const b = await hostile(gate.port, ctx.pki.dir, false)
    assert.not.match(String((b.frames[0] as {clientData?: string}).clientData), /data-path/)
    b.tls.write(sw)
    await b.closed
    assert.is(closeOf(b.frames)?.status, 1)
    assert.match(closeOf(b.frames)!.reason, /SWITCH frame without an agreed native data path/)

    // Agreed, but the SWITCH is not the last thing in TLS.
    const c = await hostile(gate.port, ctx.pki.dir, true)
    assert.match(String((c.frames[0] as {clientData?: string}).clientData), /data-path=native/)
    c.tls.write(Buffer.concat([sw, sw]))
    await c.closed
    assert.match(closeOf(c.frames)!.reason, /data in TLS after the SWITCH frame/)

    // A proper switch, then a record header claiming 4 GiB, straight onto the descriptor.
    const d = await hostile(gate.port, ctx.pki.dir, true)
    d.tls.write(sw)
    await waitFor('the gate\'s SWITCH', () => d.frames.some((f) => f.kind === 'switch'))
    const fd = (d.raw as unknown as {_handle: {fd: number}})._handle.fd
    writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))
    await waitFor('the gate closing it', () => /native record of 4294967295 bytes, over the 65536-byte limit/.test(gate.stderr))
    await d.closed
    // A second SWITCH through the native path would be a frame after the switch: also refused,
    // but only a genuine peer can seal it; the unit tests cover the decoder.

    // The gate still serves a well-behaved portal.
    const portal = await startPortal(ctx.pki, gate.port, ['--data-path', 'native', '-L', `127.0.0.1:0:127.0.0.1:${ctx.sink.port}`], 1)
    const up = await upload(portal.ports.local, 4 * MB)
    assert.is(up.reply, up.sent)
    await stop(portal)
    assert.is(gate.child.exitCode, null)
    assert.not.match(gate.stderr, /internal error|uncaught/i)
  } finally {
    await stop(gate)
  }
})

t('a gate that agrees to the native path and never sends its SWITCH: the portal gives up after 10 s with a reason', async (ctx) => {
  const file = (f: string): Buffer => readFileSync(join(ctx.pki.dir, f))
  const tlsOpts = {isServer: true, cert: file('gate.crt'), key: file('gate.key'), ca: file('ca.crt'), requestCert: true, minVersion: 'TLSv1.3' as const}
  const silent = createServer((raw) => {
    raw.on('error', () => {})
    // The RELAY frame in clear is answered by echoing it (what a gate at the end of the path does).
    raw.once('data', (relay: Buffer) => {
      raw.write(relay)
      const s = new TLSSocket(raw, tlsOpts)
      s.on('error', () => {})
      const split = new FrameSplitter(1 << 20)
      s.on('data', (d: Buffer) => {
        for (const f of split.push(d)) {
          if (isTunnelType(f.type) && decodeTunnel(f).kind === 'request') s.write(encodeTunnel(responseFrame({identity: 'alice', remoteForwards: [], earlyData: false, nativeDataPath: true})))
        }
      })
    })
  })
  silent.listen(0, '127.0.0.1')
  await new Promise((r) => silent.once('listening', r))
  const port = (silent.address() as {port: number}).port
  const portal = tunkit(['portal', '--gate', `127.0.0.1:${port}`, '--pki-dir', ctx.pki.dir, '--json', '--data-path', 'native', '-L', `127.0.0.1:0:127.0.0.1:${ctx.sink.port}`])
  try {
    const down = await waitFor('the portal to give up on the SWITCH', () => portal.events.find((e) => e.event === 'tunnel-down'), 20000)
    assert.match(String(down.reason), /no SWITCH from the peer within 10 s/)
  } finally {
    await stop(portal)
    silent.close()
  }
})

t.run()
