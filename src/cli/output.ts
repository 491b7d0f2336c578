import {Chalk} from 'chalk'
import {limitRepeats, type Level, type Logger} from '../lib/log.js'

const ORDER: Level[] = ['error', 'warn', 'info', 'debug']

/** Colours only on a terminal, and never with NO_COLOR set (https://no-color.org). */
export function colourLevel(stream: NodeJS.WriteStream): 0 | 1 {
  return stream.isTTY && !process.env.NO_COLOR ? 1 : 0
}

export function makeLogger(level: Level, json: boolean): Logger {
  const chalk = new Chalk({level: colourLevel(process.stderr)})
  const paint: Record<Level, (s: string) => string> = {error: chalk.red, warn: chalk.yellow, info: chalk.cyan, debug: chalk.gray}
  const max = ORDER.indexOf(level)
  // Repeats are summarised: a flood of refusals must not become a flood of lines.
  const write = limitRepeats((l, msg) => process.stderr.write(`${paint[l](l.padEnd(5))} ${msg}\n`))
  return {
    log(l, msg, fields) {
      if (ORDER.indexOf(l) > max) return
      write(l, msg, fields)
    },
    event(name, fields) {
      if (json) process.stdout.write(JSON.stringify({event: name, time: new Date().toISOString(), ...fields}) + '\n')
    },
  }
}
