/** A decoder's only failure mode: malformed input becomes this, never any other exception. */
export class CodecError extends Error {
  override readonly name = 'CodecError'
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

export function need(buf: Buffer, offset: number, n: number, what: string): void {
  if (offset + n > buf.length) throw new CodecError('TRUNCATED', `${what}: truncated (need ${n} bytes at ${offset}, have ${buf.length - offset})`)
}

/** Reads a NUL-terminated UTF-8 string; returns the string and the offset after the NUL. */
export function readCString(buf: Buffer, offset: number, what: string): [string, number] {
  const end = buf.indexOf(0, offset)
  if (end < 0) throw new CodecError('UNTERMINATED', `${what}: string not NUL-terminated`)
  return [buf.toString('utf8', offset, end), end + 1]
}

export function cString(s: string): Buffer {
  const b = Buffer.from(s + '\0', 'utf8')
  if (b.indexOf(0) !== b.length - 1) throw new CodecError('BAD_STRING', 'string contains a NUL byte')
  return b
}
