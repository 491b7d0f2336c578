import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {nativeBinding} from '../../src/lib/io/native.js'
import {fuzz, CASES, type Rng} from '../helpers/fuzz.js'

/**
 * The native data path's record decoder (native/datapath.c) on peer-controlled bytes: whatever
 * arrives, it returns plaintext that is a prefix of what was sealed, or throws EBADTAG or
 * EOVERSIZE — never other plaintext, never a crash, never another error.
 */
const t = suite('fuzz: native data path records')
const n = nativeBinding()
const PEER_ERRORS = new Set(['EBADTAG', 'EOVERSIZE', 'EFAILED'])
// Each case makes a decoder (an OpenSSL context and a 512 KiB buffer): fewer than the pure codecs.
const N = Math.max(1, Math.floor(CASES / 10))

interface Stream {key: Buffer; iv: Buffer; plain: Buffer; wire: Buffer}

function stream(r: Rng): Stream {
  const key = r.bytes(32), iv = r.bytes(12)
  const pts = Array.from({length: r.int(1, 6)}, () => r.bytes(r.pick([0, 1, 16, r.below(4096), r.chance(0.05) ? 65536 : r.below(200)])))
  return {key, iv, plain: Buffer.concat(pts), wire: Buffer.concat(pts.map((p, i) => n.dpSeal(key, iv, i, p)))}
}

/** Feeds `wire` in random pieces; the plaintext out, and the error code if one was thrown. */
function feed(r: Rng, s: Stream, wire: Buffer): {out: Buffer; err: string | null} {
  const dec = n.dpDecoder(s.key, s.iv)
  const out: Buffer[] = []
  let off = 0
  while (off < wire.length) {
    const len = r.chance(0.3) ? wire.length - off : r.int(1, Math.min(wire.length - off, 5000))
    try {
      out.push(...n.dpFeed(dec, wire.subarray(off, off + len)))
    } catch (e) {
      return {out: Buffer.concat(out), err: (e as {code?: string}).code ?? String(e)}
    }
    off += len
  }
  return {out: Buffer.concat(out), err: null}
}

t('sealed streams in random pieces come out whole', () => {
  fuzz('native records round trip', (r) => {
    const s = stream(r)
    const {out, err} = feed(r, s, s.wire)
    assert.is(err, null)
    assert.equal(out, s.plain)
  }, N)
})

t('altered, cut, spliced or random bytes: a prefix of the plaintext, or a peer error', () => {
  fuzz('native records mutated', (r) => {
    const s = stream(r)
    let w: Buffer = Buffer.from(s.wire)
    switch (r.below(5)) {
      case 0: for (let k = r.int(1, 4); k > 0; k--) w[r.below(w.length)] ^= 1 << r.below(8); break
      case 1: w = w.subarray(0, r.below(w.length)); break
      case 2: w = Buffer.concat([w.subarray(0, r.below(w.length)), r.bytes(r.int(1, 64)), w.subarray(r.below(w.length))]); break
      case 3: w = r.bytes(r.int(1, 300)); break
      default: {
        // A length header rewritten: bigger, smaller, or over the bound.
        const at = 0
        w.writeUInt32BE(r.pick([0, 1, 65536, 65537, 0xffffffff, r.u32()]) >>> 0, at)
      }
    }
    const {out, err} = feed(r, s, w)
    if (err !== null) assert.ok(PEER_ERRORS.has(err), `unexpected error ${err}`)
    assert.ok(out.length <= s.plain.length && out.equals(s.plain.subarray(0, out.length)), 'only genuine plaintext, in order')
  }, N)
})

t.run()
