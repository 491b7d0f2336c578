import type {TraceFields} from '../../tunnel/trace.js'

export type TraceFormat = 'text' | 'json'
export type Dir = 'in' | 'out'

/** Writes one line per traced frame to stderr (or any sink): time, direction, peer, then fields. */
export class Tracer {
  constructor(
    private readonly format: TraceFormat,
    private readonly sink: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  ) {}

  emit(dir: Dir, peer: string, fields: TraceFields): void {
    const time = new Date().toISOString()
    if (this.format === 'json') {
      this.sink(JSON.stringify({time, dir, peer, ...fields}))
      return
    }
    const {type, ...rest} = fields
    const parts = Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`)
    this.sink(`${time} ${dir === 'in' ? '<-' : '->'} ${peer} ${type} ${parts.join(' ')}`.trimEnd())
  }
}
