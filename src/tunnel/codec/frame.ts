import {CodecError} from '../../lib/errors.js'

/**
 * The 8-byte header shared by Usher records (seed 001) and tunnel frames (seed 000):
 * u32 length of the body after the header, i16 type, u16 session id (Usher) or version (tunnel).
 * All big-endian. See docs/protocol.md.
 */
export const HEADER_LEN = 8

export interface RawFrame {
  type: number
  id: number
  body: Buffer
  /** Set on a piece of a streamed body: more pieces of the same record follow. */
  more?: boolean
  /** Set on the second and later pieces of a streamed body. */
  continued?: boolean
  /** On the first piece of a streamed body: the whole body's length. */
  total?: number
}

export interface FrameHeader {
  /** Of the body after the header. */
  length: number
  type: number
  id: number
}

/** The header at `off`; the caller has checked that HEADER_LEN bytes are there. */
export function decodeHeader(b: Buffer, off = 0): FrameHeader {
  return {length: b.readUInt32BE(off), type: b.readInt16BE(off + 4), id: b.readUInt16BE(off + 6)}
}

export function encodeHeader(type: number, id: number, bodyLength: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_LEN)
  h.writeUInt32BE(bodyLength, 0)
  h.writeInt16BE(type, 4)
  h.writeUInt16BE(id, 6)
  return h
}

export function encodeFrame(type: number, id: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LEN + body.length)
  out.writeUInt32BE(body.length, 0)
  out.writeInt16BE(type, 4)
  out.writeUInt16BE(id, 6)
  body.copy(out, HEADER_LEN)
  return out
}

/**
 * Splits a byte stream into frames. A body wholly inside one chunk is returned as a view of that
 * chunk (no copy); a body spanning chunks is copied once into a buffer of its exact size.
 * Bodies longer than maxBody are refused before any of it is buffered.
 */
export class FrameSplitter {
  private head = Buffer.alloc(HEADER_LEN)
  private headFill = 0
  private body: Buffer | null = null
  private bodyFill = 0
  private type = 0
  private id = 0

  private streaming = false
  private first = false
  private left = 0

  /**
   * Bodies of `streamTypes` (byte-stream payloads such as UsherSend) that span chunks are emitted
   * piece by piece (`more` set on all but the last) and never reassembled: no copy, no allocation.
   */
  constructor(private readonly maxBody: number, private readonly streamTypes: ReadonlySet<number> = new Set()) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.headFill + this.bodyFill + this.left
  }

  push(chunk: Buffer, out: RawFrame[] = []): RawFrame[] {
    let off = 0
    while (off < chunk.length) {
      if (this.streaming) {
        const n = Math.min(this.left, chunk.length - off)
        const total = this.first ? this.left : undefined
        this.left -= n
        out.push({type: this.type, id: this.id, body: chunk.subarray(off, off + n), more: this.left > 0, continued: !this.first, total})
        this.first = false
        off += n
        if (this.left === 0) this.streaming = false
        continue
      }
      if (this.body === null) {
        if (this.headFill === 0 && chunk.length - off >= HEADER_LEN) {
          const len = chunk.readUInt32BE(off)
          this.checkLength(len)
          const type = chunk.readInt16BE(off + 4)
          const id = chunk.readUInt16BE(off + 6)
          off += HEADER_LEN
          if (chunk.length - off >= len) {
            out.push({type, id, body: chunk.subarray(off, off + len)})
            off += len
            continue
          }
          if (this.streamTypes.has(type)) {
            this.startStream(len, type, id)
            continue
          }
          this.startBody(len, type, id)
        } else {
          const n = Math.min(HEADER_LEN - this.headFill, chunk.length - off)
          chunk.copy(this.head, this.headFill, off, off + n)
          this.headFill += n
          off += n
          if (this.headFill < HEADER_LEN) break
          this.headFill = 0
          const len = this.head.readUInt32BE(0)
          const type = this.head.readInt16BE(4)
          if (len > 0 && this.streamTypes.has(type)) {
            this.checkLength(len)
            this.startStream(len, type, this.head.readUInt16BE(6))
            continue
          }
          this.startBody(len, type, this.head.readUInt16BE(6))
        }
        if (this.body!.length === 0) {
          out.push({type: this.type, id: this.id, body: this.body!})
          this.body = null
          continue
        }
      }
      const body = this.body!
      const n = Math.min(body.length - this.bodyFill, chunk.length - off)
      chunk.copy(body, this.bodyFill, off, off + n)
      this.bodyFill += n
      off += n
      if (this.bodyFill === body.length) {
        out.push({type: this.type, id: this.id, body})
        this.body = null
        this.bodyFill = 0
      }
    }
    return out
  }

  private checkLength(len: number): void {
    if (len > this.maxBody) throw new CodecError('FRAME_TOO_LARGE', `frame body of ${len} bytes exceeds the limit of ${this.maxBody}`)
  }

  private startStream(len: number, type: number, id: number): void {
    this.streaming = true
    this.first = true
    this.left = len
    this.type = type
    this.id = id
  }

  private startBody(len: number, type: number, id: number): void {
    this.checkLength(len)
    this.type = type
    this.id = id
    this.body = len === 0 ? Buffer.alloc(0) : Buffer.allocUnsafe(len)
    this.bodyFill = 0
  }
}
