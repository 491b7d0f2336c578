import {Command, Flags, Interfaces} from '@oclif/core'
import type {Input, ParserOutput} from '@oclif/core/interfaces'
type FlagOutput = {[name: string]: any} // eslint-disable-line @typescript-eslint/no-explicit-any
type ArgOutput = {[name: string]: any} // eslint-disable-line @typescript-eslint/no-explicit-any
import {isDeepStrictEqual} from 'node:util'
import {errorCode, exitStatus, TunkitError} from '../lib/errors.js'
import type {Level, Logger} from '../lib/log.js'
import {Tracer} from '../lib/trace/tracer.js'
import {ListenError} from '../lib/io/listen.js'
import {configArgs, flagsPart} from './config.js'
import {jsonLogLine, makeLogger, type LogFormat} from './output.js'
import {FlagValueError, UsageError} from './parse.js'
import {nearest} from './suggest.js'

/** How long a command that waits for SIGINT/SIGTERM has to clean up before the process ends anyway. */
const STOP_GRACE_MS = 1500

export type BaseFlags = Interfaces.InferredFlags<typeof TunkitCommand['baseFlags']>

/** Global flags, config-file defaults, one-line errors and signal handling for every command. */
export abstract class TunkitCommand extends Command {
  static override baseFlags = {
    trace: Flags.boolean({summary: 'Print every frame sent and received, one line each, on stderr.', helpGroup: 'GLOBAL'}),
    // No default: it follows --log-format unless given.
    'trace-format': Flags.option({options: ['text', 'json'] as const, summary: 'Trace as text or as JSON lines; by default as --log-format.', helpGroup: 'GLOBAL'})(),
    json: Flags.boolean({summary: 'Print results and events, errors included, as JSON lines on stdout.', helpGroup: 'GLOBAL'}),
    'log-level': Flags.option({options: ['error', 'warn', 'info', 'debug'] as const, default: 'info' as const, summary: 'How much to log on stderr.', helpGroup: 'GLOBAL'})(),
    verbose: Flags.boolean({char: 'v', summary: 'Log at debug level, as --log-level debug; -vv also traces, as --trace.', helpGroup: 'GLOBAL'}),
    'log-format': Flags.option({options: ['text', 'json'] as const, default: 'text' as const, summary: 'Log lines on stderr as text or as JSON objects, one a line.', helpGroup: 'GLOBAL'})(),
    'log-time': Flags.option({options: ['utc', 'none'] as const, default: 'utc' as const, summary: 'Start text log lines with the UTC time, or not: journald adds its own.', helpGroup: 'GLOBAL'})(),
    config: Flags.string({
      summary: 'Read flags from a JSON file ({"flag-name": value}); command-line flags win.', helpValue: '<file>', helpGroup: 'GLOBAL',
      description: 'Without it, ~/.config/tunkit/COMMAND.json ($XDG_CONFIG_HOME/tunkit/ when set; pki-init.json for "pki init") is read when it exists.',
    }),
  }

  protected logger!: Logger
  protected tracer?: Tracer
  /** The first SIGINT or SIGTERM received, and whether the command waits for it to clean up. */
  private signalled: NodeJS.Signals | null = null
  private signalWaiters = 0
  private stoppedSaid = false
  /** The level of the "stopped on SIGNAL" line (a gate worker's is debug). */
  protected stopLevel: Level = 'info'
  private onStopSignal!: (sig: NodeJS.Signals) => void
  private readonly signalled$ = new Promise<NodeJS.Signals>((r) => (this.onStopSignal = r))
  /** The command line as given: oclif keeps the one with --config's flags added in this.argv. */
  private given?: string[]

  /**
   * SIGINT and SIGTERM end every command with status 0 and the line "stopped on SIGNAL", at any
   * moment (bin/run.js covers the start-up before this runs). A command that waits for the signal
   * (waitForSignal) cleans up and returns; if it is not done within STOP_GRACE_MS, or it does not
   * wait (a prompt, a probe, a key being written), the process ends here. A second signal is
   * never needed; one ends it at once.
   */
  override async init(): Promise<void> {
    await super.init()
    const on = (sig: NodeJS.Signals): void => {
      if (this.signalled || !this.signalWaiters) return this.exitOnSignal(sig)
      this.signalled = sig
      this.onStopSignal(sig)
      setTimeout(() => this.exitOnSignal(sig), STOP_GRACE_MS).unref()
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  }

  private exitOnSignal(sig: NodeJS.Signals): never {
    this.signalled ??= sig
    if (!this.stoppedSaid) this.logger?.event('stopped', {signal: sig})
    this.sayStopped()
    process.exit(0)
  }

  private sayStopped(): void {
    if (!this.signalled || this.stoppedSaid) return
    this.stoppedSaid = true
    if (this.logger) this.logger.log(this.stopLevel, `stopped on ${this.signalled}`)
    else process.stderr.write(this.output?.logFormat === 'json' ? jsonLogLine('info', `stopped on ${this.signalled}`, {}) + '\n' : `info  stopped on ${this.signalled}\n`)
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    // A command that returned after a signal ends with 0, whatever it set before.
    if (this.signalled && !err) {
      this.sayStopped()
      process.exitCode = 0
    }
    return super.finally(err)
  }

  /** How a failure is reported: known from the command line (and config) before parsing ends. */
  private output?: {json: boolean; logFormat: LogFormat}

  /**
   * -v/-vv expanded, then flags from the config file (--config FILE, or the command's default
   * file) injected for every flag not given on the command line.
   */
  protected override async parse<F extends FlagOutput, B extends FlagOutput, A extends ArgOutput>(
    options?: Input<F, B, A>, argv = this.argv,
  ): Promise<ParserOutput<F, B, A>> {
    this.given ??= argv
    argv = verbosity(argv)
    this.output = scanOutput(argv)
    argv = [...argv, ...configArgs(argv, this.id ?? '', {...options?.baseFlags, ...options?.flags})]
    this.output = scanOutput(argv)
    let out: ParserOutput<F, B, A>
    try {
      out = await super.parse(options, argv)
    } catch (e) {
      if (e instanceof FlagValueError) e.message = e.text
      throw e
    }
    const f = out.flags as unknown as BaseFlags
    this.output = {json: f.json, logFormat: f['log-format']}
    this.logger = makeLogger({level: f.verbose ? 'debug' : f['log-level'] as Level, json: f.json, format: f['log-format'], time: f['log-time'] === 'utc'})
    if (f.trace) this.tracer = new Tracer(f['trace-format'] ?? f['log-format'])
    return out
  }

  /**
   * Errors become one line on stderr, err.message only (a JSON object with --log-format json),
   * and with --json an `error` event on stdout. The exit status comes from the code
   * (ERROR_CODES: usage errors 2, runtime failures 1); oclif's own errors carry theirs.
   */
  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}; code?: string}): Promise<unknown> {
    if (err.code === 'EEXIT' || err.message === 'EEXIT: 0') throw err
    const code = err instanceof TunkitError ? exitStatus(err) : err.exitCode ?? err.oclif?.exit ?? 1
    const msg = this.suggestFlag(err) ?? err.message.replace(/\s*\n\s*/g, ' ').replace(/ See more help with --help$/, '')
    const tkCode = err instanceof TunkitError ? err.code : errorCode(err.cause ?? err, code === 2 ? 'TK_USAGE' : 'TK_FAILED')
    // Parsing may have failed: then the command line says where the error goes.
    const out = this.output ?? scanOutput(this.argv)
    if (out.json) process.stdout.write(JSON.stringify({event: 'error', time: new Date().toISOString(), code: tkCode, message: msg, exit: code}) + '\n')
    this.errorLine(msg, {code: tkCode, exit: code}, out.logFormat)
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

  /**
   * The line a command ends with when it fails: "tunkit CMD: error: …" with the command as typed
   * ("pki init", not oclif's "pki:init"), or a JSON log line.
   */
  protected errorLine(msg: string, fields: Record<string, unknown>, format = this.output?.logFormat): void {
    process.stderr.write(format === 'json' ? jsonLogLine('error', msg, fields) + '\n' : `tunkit ${this.id?.replace(/:/g, ' ') ?? ''}: error: ${msg}\n`)
  }

  /** Resolves on SIGINT or SIGTERM; from this call on the command cleans up itself (see init). */
  protected waitForSignal(): Promise<NodeJS.Signals> {
    this.signalWaiters++
    return this.signalled$
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
  protected onHangup<F extends FlagOutput>(options: Input<F, FlagOutput, ArgOutput>, running: NoInfer<F>, reloadable: string[], reload: (flags: NoInfer<F>) => string[] | Promise<string[]>): () => void {
    let queue = Promise.resolve()
    const on = (): void => {
      queue = queue.then(async () => {
        const {logger} = this
        try {
          const flags = await this.reparse(options)
          const changed = await reload(flags)
          const later = Object.keys({...running, ...flags}).filter((k) => !reloadable.includes(k) && !isDeepStrictEqual(flags[k], running[k]))
          if (later.length) changed.push(`not applied until a restart: ${later.map((k) => `--${k}`).join(', ')}`)
          logger.log('info', `reloaded: ${changed.join('; ') || 'nothing changed'}`)
          logger.event('reloaded', {changed})
        } catch (e) {
          const message = (e as Error).message.replace(/\s*\n\s*/g, ' ')
          logger.log('error', `reload failed, the running configuration stays: ${message}`)
          logger.event('reload-failed', {code: errorCode(e, e instanceof UsageError ? 'TK_USAGE' : 'TK_FAILED'), message})
        }
      })
    }
    process.on('SIGHUP', on)
    return () => void process.off('SIGHUP', on)
  }

  /** The command line parsed again (so --config is re-read), as a reload needs it; throws as parse() does. */
  protected async reparse<F extends FlagOutput>(options: Input<F, FlagOutput, ArgOutput>): Promise<F> {
    // parse() makes a new logger and tracer: the engine keeps using the ones it has.
    const {logger, tracer, output} = this
    try {
      return (await this.parse(options, this.given)).flags
    } finally {
      Object.assign(this, {logger, tracer, output})
    }
  }

  protected jsonMode(): boolean {
    return this.output?.json ?? false
  }

  protected interactive(): boolean {
    return Boolean(process.stdin.isTTY) && !process.env.CI
  }

  /** Ask for a missing required value on a terminal; otherwise it is a usage error. */
  protected async ask(flag: string, message: string, validate: (v: string) => unknown): Promise<string> {
    if (!this.interactive()) throw new UsageError(`missing required flag --${flag}`)
    const {input} = await import('@inquirer/prompts')
    // On a terminal in raw mode, Ctrl-C is a key the prompt reads, not a signal: it ends the same way.
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
    }).catch((e: Error) => (e.name === 'ExitPromptError' ? this.exitOnSignal('SIGINT') : Promise.reject(e)))
  }
}

/** -vv is -v with --trace (oclif counts no flags); options only, not after "--". */
function verbosity(argv: string[]): string[] {
  const opts = flagsPart(argv)
  let n = 0
  const rest = opts.filter((a) => {
    const m = /^-(v+)$/.exec(a)
    if (m) n += m[1].length
    else if (a === '--verbose') n++
    return !m && a !== '--verbose'
  })
  if (n === 0) return argv
  return [...rest, '--verbose', ...(n > 1 && !rest.includes('--trace') ? ['--trace'] : []), ...argv.slice(opts.length)]
}

/** --json and --log-format as the arguments give them (config flags already appended). */
function scanOutput(argv: string[]): {json: boolean; logFormat: LogFormat} {
  const opts = flagsPart(argv)
  const json = opts.includes('--json')
  const logFormat = opts.some((a, i) => a === '--log-format=json' || (a === '--log-format' && opts[i + 1] === 'json')) ? 'json' : 'text'
  return {json, logFormat}
}
