import {CodecError, need} from '../../lib/errors.js'
import {TransformAttr} from './constants.js'

/** SA payload (RFC 7296 §3.3): proposals of transforms with attributes. */

/** A transform attribute: TV (2-byte value, the only form KEY_LENGTH takes) or TLV. */
export type TransformAttribute = {type: number; tv: true; value: number} | {type: number; tv: false; data: Buffer}

export interface Transform {
  type: number
  id: number
  attributes: TransformAttribute[]
}

export interface Proposal {
  /** 1 for the first proposal, then one more for each (§3.3.1). */
  number: number
  protocol: number
  /** Empty for IKE in IKE_SA_INIT, 8 bytes for an IKE rekey, 4 for ESP/AH. */
  spi: Buffer
  transforms: Transform[]
}

export interface SaBody {
  proposals: Proposal[]
}

const MORE_PROPOSAL = 2
const MORE_TRANSFORM = 3
/** Bounds beyond the wire's own: no real peer offers more (strongSwan's "everything" is ~60 transforms). */
export const MAX_PROPOSALS = 64
export const MAX_TRANSFORMS = 128
const MAX_ATTRIBUTES = 8

export function transform(type: number, id: number, keyLength?: number): Transform {
  return {type, id, attributes: keyLength === undefined ? [] : [{type: TransformAttr.KEY_LENGTH, tv: true, value: keyLength}]}
}

/** The KEY_LENGTH attribute's value (bits), or undefined. */
export function keyLength(t: Transform): number | undefined {
  const a = t.attributes.find((x) => x.type === TransformAttr.KEY_LENGTH)
  return a?.tv ? a.value : undefined
}

function decodeAttributes(b: Buffer, off: number, end: number): TransformAttribute[] {
  const out: TransformAttribute[] = []
  while (off < end) {
    if (out.length >= MAX_ATTRIBUTES) throw new CodecError('LIMIT', 'transform: too many attributes')
    if (off + 4 > end) throw new CodecError('TRUNCATED', 'transform attribute: truncated')
    const t = b.readUInt16BE(off)
    if (t & 0x8000) {
      out.push({type: t & 0x7fff, tv: true, value: b.readUInt16BE(off + 2)})
      off += 4
    } else {
      const n = b.readUInt16BE(off + 2)
      if (off + 4 + n > end) throw new CodecError('TRUNCATED', 'transform attribute: value truncated')
      if (t === TransformAttr.KEY_LENGTH) throw new CodecError('BAD_ATTRIBUTE', 'KEY_LENGTH must be TV')
      out.push({type: t, tv: false, data: Buffer.from(b.subarray(off + 4, off + 4 + n))})
      off += 4 + n
    }
  }
  return out
}

function decodeTransforms(b: Buffer, off: number, end: number, count: number): Transform[] {
  const out: Transform[] = []
  for (let i = 0; i < count; i++) {
    if (off + 8 > end) throw new CodecError('TRUNCATED', 'transform: truncated')
    const last = b[off]
    const len = b.readUInt16BE(off + 2)
    if (len < 8 || off + len > end) throw new CodecError('LENGTH', `transform: length ${len}`)
    if (last !== (i === count - 1 ? 0 : MORE_TRANSFORM)) throw new CodecError('BAD_SA', 'transform: wrong last-substructure mark')
    out.push({type: b[off + 4], id: b.readUInt16BE(off + 6), attributes: decodeAttributes(b, off + 8, off + len)})
    off += len
  }
  if (off !== end) throw new CodecError('LENGTH', 'proposal: bytes after the last transform')
  return out
}

export function decodeSa(b: Buffer): SaBody {
  const proposals: Proposal[] = []
  let off = 0
  if (b.length === 0) throw new CodecError('BAD_SA', 'SA: no proposal')
  while (off < b.length) {
    if (proposals.length >= MAX_PROPOSALS) throw new CodecError('LIMIT', 'SA: too many proposals')
    need(b, off, 8, 'proposal')
    const last = b[off]
    const len = b.readUInt16BE(off + 2)
    if (len < 8 || off + len > b.length) throw new CodecError('LENGTH', `proposal: length ${len}`)
    const isLast = off + len === b.length
    if (last !== (isLast ? 0 : MORE_PROPOSAL)) throw new CodecError('BAD_SA', 'proposal: wrong last-substructure mark')
    const spiSize = b[off + 6]
    const count = b[off + 7]
    if (count === 0 || count > MAX_TRANSFORMS) throw new CodecError(count ? 'LIMIT' : 'BAD_SA', `proposal: ${count} transforms`)
    if (8 + spiSize > len) throw new CodecError('LENGTH', 'proposal: SPI beyond the proposal')
    proposals.push({
      number: b[off + 4],
      protocol: b[off + 5],
      spi: Buffer.from(b.subarray(off + 8, off + 8 + spiSize)),
      transforms: decodeTransforms(b, off + 8 + spiSize, off + len, count),
    })
    off += len
  }
  return {proposals}
}

function encodeAttribute(a: TransformAttribute): Buffer {
  if (a.tv) {
    const b = Buffer.alloc(4)
    b.writeUInt16BE(0x8000 | a.type, 0)
    b.writeUInt16BE(a.value, 2)
    return b
  }
  const b = Buffer.alloc(4)
  b.writeUInt16BE(a.type & 0x7fff, 0)
  b.writeUInt16BE(a.data.length, 2)
  return Buffer.concat([b, a.data])
}

export function encodeSa(sa: SaBody): Buffer {
  if (sa.proposals.length === 0 || sa.proposals.length > MAX_PROPOSALS) throw new CodecError('BAD_SA', 'SA: 1 to 64 proposals')
  return Buffer.concat(sa.proposals.map((p, pi) => {
    if (p.transforms.length === 0 || p.transforms.length > MAX_TRANSFORMS) throw new CodecError('BAD_SA', 'proposal: 1 to 128 transforms')
    const ts = p.transforms.map((t, ti) => {
      const attrs = Buffer.concat(t.attributes.map(encodeAttribute))
      const h = Buffer.alloc(8)
      h[0] = ti === p.transforms.length - 1 ? 0 : MORE_TRANSFORM
      h.writeUInt16BE(8 + attrs.length, 2)
      h[4] = t.type
      h.writeUInt16BE(t.id, 6)
      return Buffer.concat([h, attrs])
    })
    const body = Buffer.concat([p.spi, ...ts])
    const h = Buffer.alloc(8)
    h[0] = pi === sa.proposals.length - 1 ? 0 : MORE_PROPOSAL
    h.writeUInt16BE(8 + body.length, 2)
    h[4] = p.number
    h[5] = p.protocol
    h[6] = p.spi.length
    h[7] = p.transforms.length
    return Buffer.concat([h, body])
  }))
}
