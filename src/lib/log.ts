/** What the engine needs from the outside world to report; the CLI supplies a real one. */
export type Level = 'error' | 'warn' | 'info' | 'debug'

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void
  /** A machine-readable event (printed as a JSON line on stdout under --json). */
  event(name: string, fields: Record<string, unknown>): void
}

export interface RepeatLimit {
  /** Lines of one key printed per interval before the rest are counted instead. */
  burst: number
  intervalMs: number
}

/** 10 lines a key per 10 s: a flood of 470 000 refusals a minute becomes a few dozen lines. */
export const REPEAT_LIMIT: RepeatLimit = {burst: 10, intervalMs: 10_000}
/** Beyond this many distinct keys in one interval, the others share one budget. */
const MAX_KEYS = 256

/**
 * What makes lines "the same": the text with every run of digits as "#", so refusals that differ
 * only by peer address, port or count share a key. A caller can pass `fields.key` instead.
 */
export function repeatKey(level: Level, msg: string, fields?: Record<string, unknown>): string {
  return `${level} ${typeof fields?.key === 'string' ? fields.key : msg.replace(/\d+/g, '#')}`
}

interface Window {
  start: number
  shown: number
  suppressed: number
  last: string
  level: Level
  fields?: Record<string, unknown>
  timer?: ReturnType<typeof setTimeout>
}

/**
 * Wraps a line writer so that a key repeated more than `burst` times an interval is summarised:
 * the rest are counted, and when the interval ends one line "LAST … (N more suppressed)" says so.
 * `flushAll()` writes the counts of intervals still open (at exit, so none goes unreported).
 */
export function limitRepeats(
  write: (level: Level, msg: string, fields?: Record<string, unknown>) => void,
  limit: RepeatLimit = REPEAT_LIMIT,
  clock: {now(): number; later(fn: () => void, ms: number): ReturnType<typeof setTimeout>} = {now: Date.now, later: (fn, ms) => setTimeout(fn, ms).unref()},
): ((level: Level, msg: string, fields?: Record<string, unknown>) => void) & {flushAll(): void} {
  const windows = new Map<string, Window>()
  const flush = (key: string): void => {
    const w = windows.get(key)
    if (!w) return
    windows.delete(key)
    if (w.timer) clearTimeout(w.timer)
    if (w.suppressed) write(w.level, `${w.last} … (${w.suppressed} more suppressed)`, {...w.fields, suppressed: w.suppressed})
  }
  const limited = (level: Level, msg: string, fields?: Record<string, unknown>): void => {
    let key = repeatKey(level, msg, fields)
    const now = clock.now()
    let w = windows.get(key)
    if (w && now - w.start >= limit.intervalMs) {
      flush(key)
      w = undefined
    }
    if (!w) {
      if (windows.size >= MAX_KEYS) {
        for (const [k, old] of windows) if (now - old.start >= limit.intervalMs) flush(k)
        if (windows.size >= MAX_KEYS) key = `${level} (other lines)`
      }
      w = windows.get(key)
      if (!w) windows.set(key, (w = {start: now, shown: 0, suppressed: 0, last: msg, level}))
    }
    if (w.shown < limit.burst) {
      w.shown++
      return write(level, msg, fields)
    }
    w.suppressed++
    w.last = msg
    w.fields = fields
    const k = key
    w.timer ??= clock.later(() => flush(k), w.start + limit.intervalMs - now)
  }
  return Object.assign(limited, {flushAll: () => [...windows.keys()].forEach(flush)})
}
