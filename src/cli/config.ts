import {homedir} from 'node:os'
import {join} from 'node:path'
import {configFileExists, readConfigFile} from '../lib/io/config-files.js'
import {UsageError} from './parse.js'
import {nearest} from './suggest.js'

/** What configArgs needs of an oclif flag definition. */
export type FlagDefs = Record<string, {type: string; char?: string}>

/** The arguments before "--" (after it come only arguments, never flags). */
export function flagsPart(argv: string[]): string[] {
  const end = argv.indexOf('--')
  return end >= 0 ? argv.slice(0, end) : argv
}

/**
 * The per-command default file: $XDG_CONFIG_HOME/tunkit/<command>.json, else
 * ~/.config/tunkit/<command>.json; "pki init" reads pki-init.json.
 */
export function defaultConfigFile(commandId: string): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config')
  return join(base, 'tunkit', `${commandId.replace(/[: ]/g, '-')}.json`)
}

/**
 * Flags from the config file, as command-line arguments appended to `argv` for every flag
 * `argv` does not give. The file is --config FILE, or else the default file when it exists.
 */
export function configArgs(argv: string[], commandId: string, flags: FlagDefs): string[] {
  const opts = flagsPart(argv)
  const i = opts.findIndex((a) => a === '--config' || a.startsWith('--config='))
  let file: string
  let label: string
  if (i >= 0) {
    file = opts[i].includes('=') ? opts[i].slice('--config='.length) : opts[i + 1]
    if (!file) throw new UsageError('--config: missing file name')
    label = `--config: ${file}`
  } else {
    file = defaultConfigFile(commandId)
    if (!configFileExists(file)) return []
    label = file
  }
  return toArgs(readConfig(file, label), label, opts, flags)
}

function readConfig(file: string, label: string): Record<string, unknown> {
  let text: string
  try {
    text = readConfigFile(file)
  } catch (e) {
    throw new UsageError(`${label}: cannot read it: ${(e as Error).message}`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (e) {
    const {line, column} = lineColumn(text, syntaxErrorAt(text, (e as Error).message))
    throw new UsageError(`${label}: line ${line}, column ${column}: ${(e as Error).message.replace(/ in JSON at position \d+.*$|, (?:\.\.\.)?".*$/s, '')}`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new UsageError(`${label}: must hold a JSON object of flag names ({"flag-name": value})`)
  return data as Record<string, unknown>
}

/**
 * Where JSON.parse stopped: V8 gives "at position N" for most errors but not for an unexpected
 * token; then the shortest prefix that fails on that token (not by ending early) marks the spot.
 */
function syntaxErrorAt(text: string, message: string): number {
  const m = message.match(/at position (\d+)/)
  if (m) return Number(m[1])
  const hitsToken = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n))
      return false
    } catch (e) {
      return (e as Error).message.startsWith('Unexpected token')
    }
  }
  let lo = 1
  let hi = text.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (hitsToken(mid)) hi = mid
    else lo = mid + 1
  }
  return lo - 1
}

function lineColumn(text: string, pos: number): {line: number; column: number} {
  const before = text.slice(0, pos).split('\n')
  return {line: before.length, column: before[before.length - 1].length + 1}
}

function toArgs(data: Record<string, unknown>, label: string, argv: string[], flags: FlagDefs): string[] {
  const byChar = new Map(Object.entries(flags).filter(([, d]) => d.char).map(([n, d]) => [d.char!, n]))
  const out: string[] = []
  for (const [key, value] of Object.entries(data)) {
    const name = flags[key] ? key : byChar.get(key) ?? key
    const def = flags[name]
    if (!def || name === 'config') {
      const near = nearest(key, Object.keys(flags).filter((n) => n !== 'config'))
      throw new UsageError(`${label}: unknown flag "${key}"${near ? ` (did you mean "${near}"?)` : ''}`)
    }
    const given = argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `--no-${name}` ||
      (def.char !== undefined && a.startsWith(`-${def.char}`) && !a.startsWith('--')))
    if (given) continue
    for (const v of Array.isArray(value) ? value : [value]) {
      if (def.type === 'boolean') {
        if (v === true) out.push(`--${name}`)
        else if (v !== false) throw new UsageError(`${label}: "${key}" must be true or false`)
      } else if (typeof v === 'string' || typeof v === 'number') out.push(`--${name}=${v}`)
      else throw new UsageError(`${label}: "${key}" must be a string, a number or a list of them`)
    }
  }
  return out
}
