import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../src/lib/errors.js'
import {encodeReply} from '../../src/socks5/codec/messages.js'
import {SocksServerMachine, type SocksStep} from '../../src/socks5/core/negotiation.js'
import {encodeData} from '../../src/tunnel/codec/data-frame.js'
import {FrameSplitter, type RawFrame} from '../../src/tunnel/codec/frame.js'
import {encodeTunnel} from '../../src/tunnel/codec/tunnel.js'
import {encodeUsher, UsherType} from '../../src/tunnel/codec/usher.js'
import {MAX_FRAME_BODY} from '../../src/tunnel/core/flow.js'
import {chunks, fuzz, mutate, type Rng} from '../helpers/fuzz.js'
import {dataFrame, hostname, ip, LATIN1, tunnelFrame, usherRecord} from './generators.js'

/**
 * Stream parsers see the bytes however TCP cuts them: the same stream in random pieces must give
 * what it gives in one piece, and garbage must end in a CodecError, nothing else.
 */
const t = suite('fuzz: stream parsers')

/** As src/tunnel/io/link.ts builds it: UsherSend bodies stream through in pieces. */
const splitter = (): FrameSplitter => new FrameSplitter(MAX_FRAME_BODY, new Set([UsherType.SEND]))

interface Outcome {
  frames: {type: number; id: number; body: Buffer}[]
  error?: string
}

/**
 * Feeds the pieces as Link does, stopping at the first error, and reassembles streamed bodies;
 * checks the piece flags on the way. A record still incomplete at the end is left out.
 */
function outcome(pieces: Buffer[]): Outcome {
  const s = splitter()
  const raw: RawFrame[] = []
  let error: string | undefined
  try {
    for (const p of pieces) s.push(p, raw)
  } catch (e) {
    if (!(e instanceof CodecError)) throw e
    error = e.code
  }
  const frames: Outcome['frames'] = []
  let open: {type: number; id: number; parts: Buffer[]; total: number} | null = null
  for (const f of raw) {
    if (f.continued) {
      assert.ok(open && open.type === f.type && open.id === f.id, 'a continued piece follows its first piece')
      open!.parts.push(f.body)
    } else {
      assert.is(open, null, 'a new record starts only after the last piece of the previous one')
      if (!f.more && f.total === undefined) {
        frames.push({type: f.type, id: f.id, body: f.body})
        continue
      }
      assert.is(f.type, UsherType.SEND, 'only UsherSend is streamed')
      open = {type: f.type, id: f.id, parts: [f.body], total: f.total!}
    }
    if (!f.more) {
      const body = Buffer.concat(open!.parts)
      assert.is(body.length, open!.total, 'the pieces add up to the announced length')
      frames.push({type: open!.type, id: open!.id, body})
      open = null
    }
  }
  return error ? {frames, error} : {frames}
}
/** A stream of valid frames of every kind. */
function stream(r: Rng): Buffer {
  const parts: Buffer[] = []
  for (let n = r.int(1, 6); n > 0; n--) {
    parts.push(r.pick([() => encodeUsher(usherRecord(r)), () => encodeTunnel(tunnelFrame(r)), () => encodeData(dataFrame(r))])())
  }
  return Buffer.concat(parts)
}

t('FrameSplitter: the same stream in random pieces gives the same frames as in one piece', () => {
  fuzz('splitter chunking', (r) => {
    const bytes = stream(r)
    const whole = outcome([bytes])
    assert.is(whole.error, undefined)
    assert.equal(outcome(chunks(r, bytes)), whole)
  })
})

t('FrameSplitter: on a mutated stream, chunking never changes the outcome, and the only error is a CodecError', () => {
  fuzz('splitter on hostile streams', (r) => {
    const bytes = r.chance(0.9) ? mutate(r, stream(r)) : r.bytes(r.length(200))
    const whole = outcome([bytes])
    const pieces = outcome(chunks(r, bytes))
    assert.equal(pieces, whole)
  })
})

t('a huge declared length never allocates: it is refused from the header alone', () => {
  assert.throws(() => splitter().push(Buffer.from('ffffffff00030001', 'hex')), (e: unknown) => e instanceof CodecError && e.code === 'FRAME_TOO_LARGE')
})

t('SOCKS5 negotiation: a client conversation in random pieces gives the same steps as in one piece', () => {
  fuzz('socks5 negotiation chunking', (r) => {
    const auth = r.chance(0.5) ? {user: 'alice', pass: 's3cret'} : undefined
    const userPass = (u: string, p: string): Buffer => Buffer.concat([Buffer.from([1, u.length]), Buffer.from(u), Buffer.from([p.length]), Buffer.from(p)])
    const host = r.chance(0.5) ? ip(r) : hostname(r, 60, LATIN1)
    let bytes: Buffer = Buffer.concat([
      Buffer.from([5, 2, 0, 2]),
      ...(auth ? [r.chance(0.8) ? userPass(auth.user, auth.pass) : userPass('mallory', 'x')] : []),
      encodeReply(r.pick([1, 1, 3, 2]), host, r.port()), // CONNECT, UDP ASSOCIATE or BIND: the request's layout
      r.bytes(r.length(16)), // early data after the request
    ])
    if (r.chance(0.3)) bytes = mutate(r, bytes)
    const run = (pieces: Buffer[]): SocksStep[] => {
      const m = new SocksServerMachine(auth)
      const steps: SocksStep[] = []
      for (const p of pieces) steps.push(...m.feed(p))
      return steps
    }
    const whole = run([bytes])
    const inPieces = run(chunks(r, bytes))
    // The early data handed on with the request is whatever arrived with it: not compared.
    const strip = (steps: SocksStep[]): unknown[] => steps.map((st) => (st.kind === 'request' ? {kind: st.kind, request: st.request} : st))
    assert.equal(strip(inPieces), strip(whole))
  })
})

t.run()
