import type {Hook} from '@oclif/core'
import {nearest} from './suggest.js'

/**
 * oclif's command_not_found hook: one line naming the nearest command, exit status 2 (a usage
 * error, as for a bad flag), in place of oclif's "command gat not found".
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const bin = opts.config.bin
  const typed = opts.id.replace(/:/g, ' ')
  const words = opts.id.startsWith('-')
    ? ['--help', '-h', '--version', '-v']
    : opts.config.commands.filter((c) => !c.hidden).map((c) => c.id.replace(/:/g, ' '))
  const near = nearest(typed, words)
  const what = opts.id.startsWith('-') ? `unknown flag ${typed}` : `"${typed}" is not a ${bin} command`
  process.stderr.write(`${bin}: error: ${what}${near ? `; did you mean "${bin} ${near}"?` : ''} (see "${bin} --help")\n`)
  process.exitCode = 2
}

export default hook
