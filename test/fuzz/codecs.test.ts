import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {CodecError} from '../../src/lib/errors.js'
import {FrameSplitter, type RawFrame} from '../../src/tunnel/codec/frame.js'
import {parseGreeting, parseSocksRequest, parseUdp, parseUserPass} from '../../src/socks5/codec/messages.js'
import {decodeTunnel, encodeTunnel, TunnelType} from '../../src/tunnel/codec/tunnel.js'
import {decodeUsher, encodeUsher, isUsherType} from '../../src/tunnel/codec/usher.js'
import {HandshakeError, parseTunnelRequest, parseResponse, requestFrame, responseFrame} from '../../src/tunnel/core/handshake.js'
import {SocksServerMachine} from '../../src/socks5/core/negotiation.js'

/** A small seeded PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SEED = Number(process.env.FUZZ_SEED ?? 20261123)
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 20000)

function onlyCodecErrors(what: string, fn: () => unknown, input: Buffer): void {
  try {
    fn()
  } catch (e) {
    if (e instanceof CodecError || e instanceof HandshakeError) return
    assert.unreachable(`${what} threw ${(e as Error).name}: ${(e as Error).message} on ${input.toString('hex')}`)
  }
}

const seeds: Buffer[] = [
  encodeUsher({kind: 'open', session: 1, protocol: 'tcp', host: 'intranet.example', port: 22}),
  encodeUsher({kind: 'open', session: 1, protocol: 'udp', host: '2001:db8::53', port: 53}),
  encodeUsher({kind: 'open-reply', session: 1, rc: -1, reason: 'denied: policy'}),
  encodeUsher({kind: 'send-udp', session: 1, addr: '198.18.0.1', port: 1, remoteAddr: '0.0.0.0', remotePort: 0, data: Buffer.from('x')}),
  encodeUsher({kind: 'close', session: 1, direction: 'both'}),
  encodeTunnel({kind: 'relay', origin: 'portal', path: ['relay-b', 'gate']}),
  encodeTunnel(requestFrame({user: 'alice', destination: 'gate', binding: 'ab'.repeat(32), remoteForwards: [{bind: '127.0.0.1', port: 80}], earlyData: true})),
  encodeTunnel(responseFrame({identity: 'alice', remoteForwards: [{bind: '127.0.0.1', port: 80, error: 'EADDRINUSE'}], earlyData: true})),
  encodeTunnel({kind: 'close', status: 3, reason: 'digest'}),
]

function decodeAny(f: RawFrame): void {
  if (isUsherType(f.type)) decodeUsher(f)
  else {
    const t = decodeTunnel(f)
    if (t.kind === 'request') parseTunnelRequest(t)
    if (t.kind === 'response') parseResponse(t)
  }
}

function mutate(r: () => number, b: Buffer): Buffer {
  const out = Buffer.from(b)
  const n = 1 + Math.floor(r() * 4)
  for (let i = 0; i < n; i++) {
    const op = r()
    const at = Math.floor(r() * out.length)
    if (op < 0.5) out[at] ^= 1 << Math.floor(r() * 8)
    else if (op < 0.8) out[at] = Math.floor(r() * 256)
    else return out.subarray(0, at) // truncate
  }
  return out
}

test(`frame decoders: ${ROUNDS} mutated and random frames raise only CodecError (seed ${SEED})`, () => {
  const r = rng(SEED)
  for (let i = 0; i < ROUNDS; i++) {
    const input = r() < 0.8 ? mutate(r, seeds[Math.floor(r() * seeds.length)]) : Buffer.from(Array.from({length: Math.floor(r() * 64)}, () => Math.floor(r() * 256)))
    onlyCodecErrors('frame decode', () => {
      for (const f of new FrameSplitter(4096).push(input)) decodeAny(f)
    }, input)
    // Also decode the body directly under every known type.
    if (input.length > 8) {
      const body = input.subarray(8)
      for (const type of [-1, 1, 2, 3, 4, 5, 6, 7, TunnelType.RELAY, TunnelType.REQUEST, TunnelType.RESPONSE, TunnelType.CLOSE, TunnelType.PING]) {
        onlyCodecErrors(`type ${type}`, () => decodeAny({type, id: 1, body}), input)
      }
    }
  }
})

test(`SOCKS5 parsers and negotiation: ${ROUNDS} random inputs raise only CodecError or fail cleanly`, () => {
  const r = rng(SEED + 1)
  const base = [Buffer.from('050100', 'hex'), Buffer.from('05010003096c6f63616c686f73740050', 'hex'), Buffer.from('0103616263027878', 'hex'), Buffer.from('0000000102030405003578', 'hex')]
  for (let i = 0; i < ROUNDS; i++) {
    const input = mutate(r, base[Math.floor(r() * base.length)])
    for (const p of [parseGreeting, parseSocksRequest, parseUserPass, parseUdp]) onlyCodecErrors(p.name, () => p(input), input)
    const m = new SocksServerMachine(r() < 0.5 ? {user: 'abc', pass: 'xx'} : undefined)
    onlyCodecErrors('SocksServerMachine', () => {
      let off = 0
      while (off < input.length) {
        const n = 1 + Math.floor(r() * 5)
        m.feed(input.subarray(off, off + n))
        off += n
      }
    }, input)
  }
})

test('a huge declared length never allocates: it is refused from the header alone', () => {
  const s = new FrameSplitter(256 * 1024)
  assert.throws(() => s.push(Buffer.from('ffffffff00030001', 'hex')), /exceeds/)
})

test.run()
