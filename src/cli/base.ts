import {Command, Flags, Interfaces} from '@oclif/core'
import type {Input, ParserOutput} from '@oclif/core/interfaces'
type FlagOutput = {[name: string]: any} // eslint-disable-line @typescript-eslint/no-explicit-any
type ArgOutput = {[name: string]: any} // eslint-disable-line @typescript-eslint/no-explicit-any
import {readFileSync} from 'node:fs'
import {isDeepStrictEqual} from 'node:util'
import {errorCode, exitStatus, TunkitError} from '../lib/errors.js'
import type {Level, Logger} from '../lib/log.js'
import {Tracer} from '../lib/trace/tracer.js'
import {ListenError} from '../lib/io/listen.js'
import {makeLogger} from './output.js'
import {FlagValueError, UsageError} from './parse.js'
import {nearest} from './suggest.js'

export type BaseFlags = Interfaces.InferredFlags<typeof TunkitCommand['baseFlags']>

/** Global flags, config-file defaults, one-line errors and signal handling for every command. */
export abstract class TunkitCommand extends Command {
  static override baseFlags = {
    trace: Flags.boolean({summary: 'Print every frame sent and received, one line each, on stderr.', helpGroup: 'GLOBAL'}),
    'trace-format': Flags.option({options: ['text', 'json'] as const, default: 'text' as const, summary: 'Trace as text or as JSON lines.', helpGroup: 'GLOBAL'})(),
    json: Flags.boolean({summary: 'Print results and events as JSON lines on stdout.', helpGroup: 'GLOBAL'}),
    'log-level': Flags.option({options: ['error', 'warn', 'info', 'debug'] as const, default: 'info' as const, summary: 'How much to log on stderr.', helpGroup: 'GLOBAL'})(),
    config: Flags.string({summary: 'Read flags from a JSON file ({"flag-name": value}); command-line flags win.', helpValue: '<file>', helpGroup: 'GLOBAL'}),
  }

  protected logger!: Logger
  protected tracer?: Tracer
  private json = false
  /** The command line as given: oclif keeps the one with --config's flags added in this.argv. */
  private given?: string[]

  /** Inject flags from --config FILE for every flag not given on the command line. */
  protected override async parse<F extends FlagOutput, B extends FlagOutput, A extends ArgOutput>(
    options?: Input<F, B, A>, argv = this.argv,
  ): Promise<ParserOutput<F, B, A>> {
    this.given ??= argv
    const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='))
    if (i >= 0) {
      const file = argv[i].includes('=') ? argv[i].slice('--config='.length) : argv[i + 1]
      if (!file) throw new UsageError('--config: missing file name')
      argv = [...argv, ...configArgs(file, argv, options?.flags ?? {})]
    }
    let out: ParserOutput<F, B, A>
    try {
      out = await super.parse(options, argv)
    } catch (e) {
      if (e instanceof FlagValueError) e.message = e.text
      throw e
    }
    const f = out.flags as unknown as BaseFlags
    this.json = f.json
    this.logger = makeLogger(f['log-level'] as Level, f.json)
    if (f.trace) this.tracer = new Tracer(f['trace-format'])
    return out
  }

  /**
   * Errors become one line on stderr, err.message only. The exit status comes from the code
   * (ERROR_CODES: usage errors 2, runtime failures 1); oclif's own errors carry theirs.
   */
  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}; code?: string}): Promise<unknown> {
    if (err.code === 'EEXIT' || err.message === 'EEXIT: 0') throw err
    const code = err instanceof TunkitError ? exitStatus(err) : err.exitCode ?? err.oclif?.exit ?? 1
    const msg = this.suggestFlag(err) ?? err.message.replace(/\s*\n\s*/g, ' ').replace(/ See more help with --help$/, '')
    const tkCode = errorCode(err.cause ?? err, code === 2 ? 'TK_USAGE' : 'TK_FAILED')
    if (this.json && this.logger) this.logger.event('error', {code: err instanceof TunkitError ? err.code : tkCode, message: msg, exit: code})
    // The command as typed ("pki init"), not oclif's id ("pki:init").
    process.stderr.write(`tunkit ${this.id?.replace(/:/g, ' ') ?? ''}: error: ${msg}\n`)
    process.exitCode = code
    return undefined
  }

  /**
   * oclif's "Nonexistent flag: --gatee" as "unknown flag --gatee; did you mean --gate?" (oclif
   * does not export the error's class, hence its name).
   */
  private suggestFlag(err: Error & {flags?: unknown}): string | undefined {
    if (err.constructor.name !== 'NonExistentFlagsError' || !Array.isArray(err.flags)) return undefined
    const defs = {...this.ctor.baseFlags, ...this.ctor.flags}
    const names = Object.entries(defs).flatMap(([n, f]) => [`--${n}`, ...(f.char ? [`-${f.char}`] : [])])
    return (err.flags as string[]).map((typed) => {
      const near = nearest(typed.replace(/=.*/, ''), names)
      return `unknown flag ${typed}${near ? `; did you mean ${near}?` : ''}`
    }).join('; ')
  }

  /** Runs until SIGINT or SIGTERM, then stops cleanly. */
  protected waitForSignal(): Promise<NodeJS.Signals> {
    return new Promise((res) => {
      const on = (sig: NodeJS.Signals): void => {
        process.off('SIGINT', on)
        process.off('SIGTERM', on)
        res(sig)
      }
      process.on('SIGINT', on)
      process.on('SIGTERM', on)
    })
  }

  /** Binds a listener; failure is a usage error naming the flag (address in use, not ours…). */
  protected async listenOn<T>(flag: string, listen: () => Promise<T>): Promise<T> {
    try {
      return await listen()
    } catch (e) {
      if (e instanceof ListenError) throw new UsageError(`${flag}: ${e.message}`)
      throw e
    }
  }

  /**
   * SIGHUP: the command line is parsed again (so --config is re-read) and `reload` applies the
   * `reloadable` flags, returning what changed; any other flag that differs from the `running`
   * ones is named as waiting for a restart. A reload that fails keeps the running configuration
   * and logs one error line; it never ends the command. Returns the function that stops listening.
   */
  protected onHangup<F extends FlagOutput>(options: Input<F, FlagOutput, ArgOutput>, running: NoInfer<F>, reloadable: string[], reload: (flags: NoInfer<F>) => string[]): () => void {
    let queue = Promise.resolve()
    const on = (): void => {
      queue = queue.then(async () => {
        // parse() makes a new logger and tracer: the engine keeps using the ones it has.
        const {logger, tracer, json} = this
        try {
          const flags = (await this.parse(options, this.given)).flags
          const changed = reload(flags)
          const later = Object.keys({...running, ...flags}).filter((k) => !reloadable.includes(k) && !isDeepStrictEqual(flags[k], running[k]))
          if (later.length) changed.push(`not applied until a restart: ${later.map((k) => `--${k}`).join(', ')}`)
          logger.log('info', `reloaded: ${changed.join('; ') || 'nothing changed'}`)
          logger.event('reloaded', {changed})
        } catch (e) {
          const message = (e as Error).message.replace(/\s*\n\s*/g, ' ')
          logger.log('error', `reload failed, the running configuration stays: ${message}`)
          logger.event('reload-failed', {code: errorCode(e, e instanceof UsageError ? 'TK_USAGE' : 'TK_FAILED'), message})
        } finally {
          Object.assign(this, {logger, tracer})
          this.json = json
        }
      })
    }
    process.on('SIGHUP', on)
    return () => void process.off('SIGHUP', on)
  }

  protected jsonMode(): boolean {
    return this.json
  }

  protected interactive(): boolean {
    return Boolean(process.stdin.isTTY) && !process.env.CI
  }

  /** Ask for a missing required value on a terminal; otherwise it is a usage error. */
  protected async ask(flag: string, message: string, validate: (v: string) => unknown): Promise<string> {
    if (!this.interactive()) throw new UsageError(`missing required flag --${flag}`)
    const {input} = await import('@inquirer/prompts')
    return input({
      message,
      validate: (v) => {
        try {
          validate(v)
          return true
        } catch (e) {
          return (e as Error).message
        }
      },
    })
  }
}

function configArgs(file: string, argv: string[], flags: Record<string, {type: string; char?: string}>): string[] {
  let data: unknown
  try {
    data = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    throw new UsageError(`--config: cannot read ${file}: ${(e as Error).message}`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new UsageError(`--config: ${file} must hold a JSON object of flag names`)
  const out: string[] = []
  for (const [name, value] of Object.entries(data)) {
    const def = flags[name]
    if (!def || name === 'config') throw new UsageError(`--config: unknown flag "${name}" in ${file}`)
    const given = argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`) || (def.char && a === `-${def.char}`))
    if (given) continue
    for (const v of Array.isArray(value) ? value : [value]) {
      if (def.type === 'boolean') {
        if (v === true) out.push(`--${name}`)
        else if (v !== false) throw new UsageError(`--config: "${name}" must be true or false`)
      } else out.push(`--${name}=${String(v)}`)
    }
  }
  return out
}
