import type {TraceFields, TraceKind} from './registry.js'

export type {TraceFields} from './registry.js'
export type TraceFormat = 'text' | 'json'
export type Dir = 'in' | 'out'

/** One traced message, as printed: the same record makes the text line and the JSON line. */
export interface TraceRecord {
  time: string
  dir: Dir
  peer: string
  type: string
  len?: number
  identity?: string
  [field: string]: unknown
}

/** Writes one line per traced message to stderr (or any sink): time, direction, peer, then fields. */
export class Tracer {
  constructor(
    private readonly format: TraceFormat,
    private readonly sink: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  ) {}

  /** A registered protocol message (lib/trace/registry.ts); len = its bytes on the wire. */
  trace<M>(dir: Dir, peer: string, kind: TraceKind<M>, msg: M, len: number, identity?: string): void {
    this.emit(dir, peer, {...kind.render(msg), len}, identity)
  }

  /** Fields already rendered (they must hold `type`, and `len` as defined in the registry). */
  emit(dir: Dir, peer: string, fields: TraceFields, identity?: string): void {
    const {type, len, ...rest} = fields
    const rec: TraceRecord = {time: new Date().toISOString(), dir, peer, type: String(type), ...(len !== undefined ? {len: Number(len)} : {}), ...(identity ? {identity} : {}), ...rest}
    this.sink(this.format === 'json' ? JSON.stringify(rec) : text(rec))
  }
}

function text(rec: TraceRecord): string {
  const {time, dir, peer, type, ...rest} = rec
  const parts = Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`)
  return `${time} ${dir === 'in' ? '<-' : '->'} ${peer} ${type} ${parts.join(' ')}`.trimEnd()
}
