/** What the engine needs from the outside world to report; the CLI supplies a real one. */
export type Level = 'error' | 'warn' | 'info' | 'debug'

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void
  /** A machine-readable event (printed as a JSON line on stdout under --json). */
  event(name: string, fields: Record<string, unknown>): void
}
