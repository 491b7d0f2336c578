import {Chalk} from 'chalk'
import {limitRepeats, type Level, type Logger} from '../lib/log.js'

const ORDER: Level[] = ['error', 'warn', 'info', 'debug']

export type LogFormat = 'text' | 'json'

export interface LogOptions {
  level: Level
  /** Events as JSON lines on stdout (--json). */
  json: boolean
  /** Log lines on stderr as text or as one JSON object each (--log-format). */
  format: LogFormat
  /** Text lines start with the UTC time (--log-time utc); journald stamps its own. */
  time: boolean
}

/** Colours only on a terminal, and never with NO_COLOR set (https://no-color.org). */
export function colourLevel(stream: NodeJS.WriteStream): 0 | 1 {
  return stream.isTTY && !process.env.NO_COLOR ? 1 : 0
}

/** One log line as JSON: time, level, message, then the caller's fields (not the summariser's key). */
export function jsonLogLine(level: Level, message: string, fields?: Record<string, unknown>): string {
  const {key: _key, ...rest} = fields ?? {}
  return JSON.stringify({time: new Date().toISOString(), level, message, ...rest})
}

export function makeLogger(o: LogOptions): Logger {
  const chalk = new Chalk({level: colourLevel(process.stderr)})
  const paint: Record<Level, (s: string) => string> = {error: chalk.red, warn: chalk.yellow, info: chalk.cyan, debug: chalk.gray}
  const max = ORDER.indexOf(o.level)
  const line = o.format === 'json'
    ? jsonLogLine
    : (l: Level, msg: string): string => `${o.time ? new Date().toISOString() + ' ' : ''}${paint[l](l.padEnd(5))} ${msg}`
  // Repeats are summarised: a flood of refusals must not become a flood of lines.
  const write = limitRepeats((l, msg, fields) => process.stderr.write(line(l, msg, fields) + '\n'))
  // Counts still held when the process ends are printed, not lost (stderr writes are synchronous).
  process.once('exit', () => write.flushAll())
  return {
    log(l, msg, fields) {
      if (ORDER.indexOf(l) > max) return
      write(l, msg, fields)
    },
    event(name, fields) {
      if (o.json) process.stdout.write(JSON.stringify({event: name, time: new Date().toISOString(), ...fields}) + '\n')
    },
  }
}
