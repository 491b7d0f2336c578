import {createCipheriv, createDecipheriv, randomBytes} from 'node:crypto'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {nativeBinding} from '../../../src/lib/io/native.js'

/**
 * The native data path's record codec (native/datapath.c), against a reference built from
 * node:crypto: u32 length | AES-256-GCM ciphertext | 16-byte tag, AAD the length, nonce the
 * direction's IV XOR the u64 sequence number (docs/protocol.md, "Native data path").
 */
const t = suite('native data path records')
const n = nativeBinding()

function nonce(iv: Buffer, seq: number): Buffer {
  const out = Buffer.from(iv)
  const s = Buffer.alloc(8)
  s.writeBigUInt64BE(BigInt(seq))
  for (let i = 0; i < 8; i++) out[4 + i] ^= s[i]
  return out
}

function refSeal(key: Buffer, iv: Buffer, seq: number, pt: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(pt.length)
  const c = createCipheriv('aes-256-gcm', key, nonce(iv, seq))
  c.setAAD(len)
  const ct = Buffer.concat([c.update(pt), c.final()])
  return Buffer.concat([len, ct, c.getAuthTag()])
}

function refOpen(key: Buffer, iv: Buffer, seq: number, rec: Buffer): Buffer {
  const len = rec.readUInt32BE(0)
  const d = createDecipheriv('aes-256-gcm', key, nonce(iv, seq))
  d.setAAD(rec.subarray(0, 4))
  d.setAuthTag(rec.subarray(4 + len, 4 + len + 16))
  return Buffer.concat([d.update(rec.subarray(4, 4 + len)), d.final()])
}

const code = (fn: () => unknown): string => {
  try {
    fn()
  } catch (e) {
    return (e as {code?: string}).code ?? 'no code'
  }
  return 'no error'
}

t('the addon seals exactly what the reference seals, and the reference opens it', () => {
  const key = randomBytes(32), iv = randomBytes(12)
  for (const [seq, size] of [[0, 0], [1, 1], [2, 100], [7, 65536], [2 ** 40 + 3, 1234]]) {
    const pt = randomBytes(size)
    const rec = n.dpSeal(key, iv, seq, pt)
    assert.equal(rec, refSeal(key, iv, seq, pt), `seq ${seq}, ${size} bytes`)
    assert.equal(refOpen(key, iv, seq, rec), pt)
  }
})

t('a decoder opens a stream of records fed a byte at a time, empty records included', () => {
  const key = randomBytes(32), iv = randomBytes(12)
  const pts = [Buffer.from('one'), Buffer.alloc(0), randomBytes(70000).subarray(0, 65536), Buffer.from('four')]
  const wire = Buffer.concat(pts.map((p, i) => refSeal(key, iv, i, p)))
  const dec = n.dpDecoder(key, iv)
  const out: Buffer[] = []
  for (let i = 0; i < wire.length; i++) out.push(...n.dpFeed(dec, wire.subarray(i, i + 1)))
  assert.equal(Buffer.concat(out), Buffer.concat(pts))
})

t('a whole stream in one feed comes out as one Buffer', () => {
  const key = randomBytes(32), iv = randomBytes(12)
  const pts = Array.from({length: 50}, () => randomBytes(3000))
  const out = n.dpFeed(n.dpDecoder(key, iv), Buffer.concat(pts.map((p, i) => refSeal(key, iv, i, p))))
  assert.is(out.length, 1)
  assert.equal(out[0], Buffer.concat(pts))
})

t('an altered byte anywhere in a record fails its tag (EBADTAG), and the decoder stays failed', () => {
  const key = randomBytes(32), iv = randomBytes(12)
  const rec = refSeal(key, iv, 0, randomBytes(40))
  for (const at of [4, 20, 43, 44, rec.length - 1]) {
    const bad = Buffer.from(rec)
    bad[at] ^= 0x01
    const dec = n.dpDecoder(key, iv)
    assert.is(code(() => n.dpFeed(dec, bad)), 'EBADTAG', `byte ${at}`)
    assert.is(code(() => n.dpFeed(dec, refSeal(key, iv, 0, Buffer.from('x')))), 'EFAILED')
  }
})

t('replayed, reordered, dropped and foreign-key records fail (EBADTAG)', () => {
  const key = randomBytes(32), iv = randomBytes(12)
  const r = [0, 1, 2].map((i) => refSeal(key, iv, i, Buffer.from(`record ${i}`)))
  assert.is(code(() => n.dpFeed(n.dpDecoder(key, iv), Buffer.concat([r[0], r[0]]))), 'EBADTAG', 'replay')
  assert.is(code(() => n.dpFeed(n.dpDecoder(key, iv), Buffer.concat([r[1], r[0]]))), 'EBADTAG', 'reorder')
  assert.is(code(() => n.dpFeed(n.dpDecoder(key, iv), Buffer.concat([r[0], r[2]]))), 'EBADTAG', 'drop')
  assert.is(code(() => n.dpFeed(n.dpDecoder(randomBytes(32), iv), r[0])), 'EBADTAG', 'other key')
  assert.is(code(() => n.dpFeed(n.dpDecoder(key, randomBytes(12)), r[0])), 'EBADTAG', 'other IV (the other direction)')
})

t('a length over 64 KiB is refused from its header alone (EOVERSIZE), before any body is buffered', () => {
  const key = randomBytes(32), iv = randomBytes(12)
  for (const len of [65537, 0x7fffffff, 0xffffffff]) {
    const h = Buffer.alloc(4)
    h.writeUInt32BE(len >>> 0)
    assert.is(code(() => n.dpFeed(n.dpDecoder(key, iv), h)), 'EOVERSIZE', `length ${len}`)
  }
  // A genuine record before the bad header: the decoder still fails on the header.
  const good = refSeal(key, iv, 0, Buffer.from('ok'))
  assert.is(code(() => n.dpFeed(n.dpDecoder(key, iv), Buffer.concat([good, Buffer.from([0xff, 0xff, 0xff, 0xff])]))), 'EOVERSIZE')
  assert.is(code(() => n.dpSeal(key, iv, 0, Buffer.alloc(65537))), 'EINVAL', 'the sealer refuses what a receiver would')
})

t('a partial record is held, not returned', () => {
  const key = randomBytes(32), iv = randomBytes(12)
  const rec = refSeal(key, iv, 0, Buffer.from('hello'))
  const dec = n.dpDecoder(key, iv)
  assert.equal(n.dpFeed(dec, rec.subarray(0, rec.length - 1)), [])
  assert.equal(Buffer.concat(n.dpFeed(dec, rec.subarray(rec.length - 1))).toString(), 'hello')
})

t('wrong arguments throw TypeErrors, not crashes', () => {
  assert.is(code(() => n.dpSeal(Buffer.alloc(31), Buffer.alloc(12), 0, Buffer.alloc(0))), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => n.dpDecoder(Buffer.alloc(32), Buffer.alloc(11))), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => n.dpFeed({} as object, Buffer.alloc(1))), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => n.dpWrite(n.dpDecoder(Buffer.alloc(32), Buffer.alloc(12)), [])), 'ERR_INVALID_ARG_TYPE')
  assert.is(code(() => n.dpOpen(-1, Buffer.alloc(32), Buffer.alloc(12), Buffer.alloc(32), Buffer.alloc(12), false, () => {})), 'EIO')
})

t.run()
