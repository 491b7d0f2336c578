import {EventEmitter, once} from 'node:events'
import {createConnection, createServer, type AddressInfo, type Server, type Socket} from 'node:net'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../src/lib/errors.js'
import {encodeTunnel, TunnelType, type TunnelFrame} from '../../src/tunnel/codec/tunnel.js'
import {MAX_RELAY_FRAME, readClearFrame, type ReadFrame} from '../../src/tunnel/io/relay-frame.js'
import {CASES, chunks, fuzzAsync, mutate, type Rng} from '../helpers/fuzz.js'
import {nonEmpty} from './generators.js'

/**
 * readClearFrame (the clear RELAY frame a gate or relay reads before TLS) on random pieces of
 * valid, mutated and foreign bytes: it resolves with exactly the frame sent, or rejects with a
 * CodecError; it never throws synchronously and never hangs once the peer has finished.
 */
const t = suite<{server?: Server; accepted: Socket[]; waiting: ((s: Socket) => void)[]}>('fuzz: readClearFrame', {accepted: [], waiting: []})

// A hang would stop the suite silently: this is the hang detector, not a speed limit.
const HANG_MS = 10000

function relayFrame(r: Rng): TunnelFrame {
  return r.chance(0.8)
    ? {kind: 'relay', origin: r.text(30), path: Array.from({length: r.int(1, 8)}, () => nonEmpty(r, 30)), ...(r.chance(0.5) ? {hops: r.below(256)} : {})}
    : {kind: 'close', status: r.below(32), reason: r.text(60)}
}

interface Case {
  bytes: Buffer
  accept: number[]
  /** The frame the bytes start with when they were sent unmutated. */
  sent?: TunnelFrame
}

function makeCase(r: Rng): Case {
  const accept = r.chance(0.5) ? [TunnelType.RELAY] : [TunnelType.RELAY, TunnelType.CLOSE]
  const f = relayFrame(r)
  const wire = encodeTunnel(f)
  const after = r.chance(0.3) ? r.bytes(r.length(40)) : Buffer.alloc(0) // e.g. the TLS ClientHello behind it
  const valid = Buffer.concat([wire, after])
  switch (r.below(6)) {
    case 0: return {bytes: r.bytes(r.length(64)), accept}
    case 1: return {bytes: Buffer.concat([Buffer.from([0x16, 3, 1]), r.bytes(r.length(40))]), accept} // TLS first
    case 2: case 3: return {bytes: mutate(r, valid), accept}
    default: return {bytes: valid, accept, sent: f}
  }
}

function check(c: Case, outcome: {frame?: ReadFrame; error?: unknown}): void {
  if (outcome.error !== undefined) {
    assert.ok(outcome.error instanceof CodecError, `rejected with ${String(outcome.error)}, not a CodecError`)
    const accepted = c.sent && (c.sent.kind === 'relay' || c.accept.includes(TunnelType.CLOSE))
    assert.not.ok(accepted, `a valid frame was refused: ${(outcome.error as Error).message}`)
    return
  }
  const {frame, wire, rest} = outcome.frame!
  assert.equal(wire, c.bytes.subarray(0, wire.length), 'wire is the bytes received')
  assert.equal(rest, c.bytes.subarray(wire.length, wire.length + rest.length), 'rest is what followed')
  assert.ok(wire.length <= 8 + MAX_RELAY_FRAME)
  assert.ok(c.accept.includes(wire.readInt16BE(4)), 'only an accepted type')
  if (c.sent) assert.equal(frame, c.sent)
}

/** Reads with a hang detector; a synchronous throw fails the case. */
async function read(sock: Socket, c: Case, writeAll: () => Promise<void>): Promise<void> {
  let p: Promise<ReadFrame>
  try {
    p = readClearFrame(sock, c.accept, 'RELAY frame')
  } catch (e) {
    assert.unreachable(`readClearFrame threw synchronously: ${e}`)
    return
  }
  const settled = p.then((frame) => ({frame}), (error: unknown) => ({error}))
  await writeAll()
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`did not settle after the peer finished, on ${c.bytes.toString('hex')}`)), HANG_MS)))
  try {
    check(c, await Promise.race([settled, hang]))
  } finally {
    clearTimeout(timer)
  }
}

/** A net.Socket stand-in that delivers exactly the given pieces, honouring pause(). */
class Pieces extends EventEmitter {
  private paused = true

  pause(): this {
    this.paused = true
    return this
  }

  resume(): this {
    this.paused = false
    return this
  }

  deliver(pieces: Buffer[]): void {
    for (const p of pieces) if (!this.paused) this.emit('data', p)
    if (!this.paused) this.emit('end')
    this.emit('close')
  }
}

t('on exact random pieces (a socket stand-in): resolves with the frame sent or rejects with CodecError', async () => {
  await fuzzAsync('readClearFrame on pieces', async (r) => {
    const c = makeCase(r)
    const s = new Pieces()
    await read(s as unknown as Socket, c, async () => s.deliver(chunks(r, c.bytes)))
  })
})

t.before(async (ctx) => {
  ctx.server = createServer((s) => {
    const w = ctx.waiting.shift()
    if (w) w(s)
    else ctx.accepted.push(s)
  })
  ctx.server.listen(0, '127.0.0.1')
  await once(ctx.server, 'listening')
})

t.after((ctx) => void ctx.server?.close())

// A TCP connection per case, so a tenth of the cases.
t('over a real loopback TCP connection, written in random pieces: the same', async (ctx) => {
  const {port} = ctx.server!.address() as AddressInfo
  const accept = (): Promise<Socket> => new Promise((res) => (ctx.accepted.length ? res(ctx.accepted.shift()!) : ctx.waiting.push(res)))
  await fuzzAsync('readClearFrame over TCP', async (r) => {
    const c = makeCase(r)
    const client = createConnection({port, host: '127.0.0.1', noDelay: true})
    const sock = await accept()
    try {
      await read(sock, c, async () => {
        for (const p of chunks(r, c.bytes)) {
          client.write(p)
          await new Promise((res) => setImmediate(res)) // let each piece leave on its own
        }
        client.end()
      })
    } finally {
      client.destroy()
      sock.destroy()
    }
  }, Math.ceil(CASES / 10))
})

t.run()
