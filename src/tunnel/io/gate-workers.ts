/**
 * `gate --workers N` (issue 12 item 5): one primary process owns the listening socket, accepts
 * connections and hands each one's descriptor to a worker over Node's IPC channel; every worker
 * runs the ordinary gate engine (io/gate.ts) on the sockets it is handed. Per-identity and
 * gate-wide tunnel and session limits hold across workers through leases from the primary's
 * ledger (core/shares.ts); --metrics is served by the primary from the workers' figures. A worker
 * that dies is started again with a bounded backoff; its tunnels end with it.
 */
import {fork, type ChildProcess} from 'node:child_process'
import {availableParallelism} from 'node:os'
import {createServer, type Server, type Socket} from 'node:net'
import {TunkitError} from '../../lib/errors.js'
import {serveFiles, type FileSet} from '../../lib/io/config-files.js'
import type {Logger} from '../../lib/log.js'
import {Tally, type Counted, type EngineCounts} from '../../lib/metrics.js'
import {hostPort} from '../../lib/io/connect.js'
import {listenScreened, startListener, type Bound, type ScreenedListener} from '../../lib/io/listen.js'
import {ShareError, ShareLedger, ShareWallet} from '../core/shares.js'
import {sourceKey, Startups, type StartupLimits} from '../core/startups.js'
import {parsePrimaryMessage, parseWorkerMessage, type CountsData, type Pool, type PrimaryMessage, type Tallies} from '../core/worker-ipc.js'
import {admitStartup, type Gate, type SharedQuota} from './gate.js'

/** The environment variable that makes a forked gate a worker (its value: the worker's index). */
export const WORKER_ENV = 'TUNKIT_GATE_WORKER'
/** At most this many workers, whatever --workers says (each is a whole Node process). */
export const MAX_WORKERS = 64
/** Restart backoff: 250 ms doubling to 10 s; a worker up for a minute starts the count again. */
const BACKOFF_MS = 250
const BACKOFF_MAX_MS = 10_000
const STABLE_MS = 60_000
/** How long the first workers have to start before the gate gives up. */
const START_TIMEOUT_MS = 30_000
/** Connections held while no worker is ready (all restarting); more are reset. */
const MAX_WAITING = 256
/**
 * Workers started together (at start, or the lazy ones at the second tunnel) are waited for
 * until all are ready, one exits, or this long has passed, before connections go to those that
 * are ready: tunnels never move between workers, and a burst of portals (all reconnecting to a
 * restarted gate, say) handed to the first one up would all stay there.
 */
const HOLD_MS = 10_000
/** A worker that does not answer a scrape within this is counted with its last figures. */
const COUNT_TIMEOUT_MS = 1000
/** Workers have this long to close their tunnels on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 1000
/** A worker's ask unanswered within this is refused (the primary is gone or stuck). */
const ASK_TIMEOUT_MS = 2000
/** A worker's reload (reading files, building a TLS context) within this, or the reload fails. */
const RELOAD_TIMEOUT_MS = 5000
/** Asks one worker may have open at once: more are refused at once. */
const MAX_ASKS = 4096

/** --workers auto: one per CPU this process may use. */
export const autoWorkers = (): number => Math.max(1, Math.min(availableParallelism(), MAX_WORKERS))

export interface PrimaryOptions {
  host: string
  port: number
  workers: number
  /** Start one worker, and the others when a second tunnel is up (a gate with one portal needs one). */
  lazy?: boolean
  /** Caps of the shared pools: tunnels and sessions per identity, the gate's tunnels. */
  caps: Record<Pool, number>
  /** --max-startups and --max-startups-per-source, for the whole gate: the primary screens. */
  startups: StartupLimits
  log: Logger
  /** The files of the configuration this process loaded (config-files.ts): every worker runs it. */
  files: FileSet
  /** The CLI entry and arguments a worker is started with (the primary's own). */
  script: string
  args: string[]
}

interface Slot {
  index: number
  child?: ChildProcess
  pid?: number
  ready: boolean
  startedAt: number
  /** Restarts in a row without a stable minute between them (the backoff's exponent). */
  crashes: number
  restart?: NodeJS.Timeout
  last?: CountsData
  /** The configuration's files it was sent (`config`): a reload while it started sends the new ones. */
  files?: FileSet
}

/** A connection admitted and not yet authenticated or closed: it holds a --max-startups slot. */
interface Handshake {
  id: number
  source: string
  /** The worker it was handed to; until then `socket` waits here. */
  slot?: Slot
  socket?: Socket
}

/** The primary: listener, dispatch, ledger, restarts and the metrics of all workers. */
export class GatePrimary implements Counted {
  private readonly slots: Slot[]
  private readonly ledger: ShareLedger
  private readonly server: Server
  /** The addon's listener (sources screened before a socket exists), or null: `server` listens. */
  private screened: ScreenedListener | null = null
  private readonly startups: Startups<Handshake>
  private readonly handshakes = new Map<number, Handshake>()
  private handshakeId = 0
  private readonly waiting: Handshake[] = []
  /** Workers started together and not ready yet: connections wait for them (HOLD_MS). */
  private readonly together = new Set<Slot>()
  private holdTimer?: NodeJS.Timeout
  private next = 0
  /** Workers not started yet (lazy): they start with the second tunnel. */
  private idle: Slot[] = []
  /** Tunnels authenticated so far, counted while workers wait to start. */
  private authenticated = 0
  private closing = false
  private countId = 0
  private readonly countWaiters = new Map<number, () => void>()
  private readonly reloadWaiters = new Map<number, (r: {changed?: string[]; failed?: string}) => void>()
  /** The configuration's files: sent to each worker as it starts, replaced by a reload. */
  private files: FileSet
  /** Counters of workers that are gone, so totals never go down. */
  private readonly retired = {bytes: {out: 0, back: 0}, opensRefused: new Tally(), handshakeFailures: new Tally(), limitHits: new Tally()}
  private readonly connections = new Tally()
  private readonly restarts = new Tally()
  private readonly dropped = new Tally()

  constructor(private readonly o: PrimaryOptions) {
    this.slots = Array.from({length: o.workers}, (_, index) => ({index, ready: false, startedAt: 0, crashes: 0}))
    this.ledger = new ShareLedger(o.caps, o.workers)
    this.startups = new Startups(o.startups)
    this.files = o.files
    // Paused: the worker, not this process, reads the first byte.
    this.server = createServer({pauseOnConnect: true, noDelay: true}, (s) => {
      const h = this.admit(s.remoteAddress ?? '?', s.remotePort ?? 0)
      if (h) this.dispatch(s, h)
      else s.on('error', () => {}).resetAndDestroy()
    })
  }

  /** Binds, starts the workers and resolves once all are ready (or rejects: none started). */
  async start(): Promise<Bound> {
    const {host, port, log} = this.o
    this.screened = await listenScreened(host, port, (address, from) => {
      const h = this.admit(address, from)
      return h && ((s) => this.dispatch(s, h))
    }, {unread: true})
    const bound = this.screened ?? await startListener(this.server, host, port, log)
    const now = this.o.lazy ? this.slots.slice(0, 1) : this.slots
    this.idle = this.slots.slice(now.length)
    this.spawnTogether(now)
    const end = Date.now() + START_TIMEOUT_MS
    while (!now.every((s) => s.ready)) {
      if (Date.now() > end) {
        if (this.slots.some((s) => s.ready)) break
        await this.close()
        throw new TunkitError('TK_FAILED', `no gate worker started within ${START_TIMEOUT_MS / 1000} s`)
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    return bound
  }

  /** PIDs of the workers up (by index; one restarting or not started yet is left out). */
  get pids(): number[] {
    return this.slots.flatMap((s) => (s.ready && s.pid !== undefined ? [s.pid] : []))
  }

  get tunnels(): number {
    return this.slots.reduce((n, s) => n + (s.ready ? s.last?.tunnels ?? 0 : 0), 0)
  }

  /**
   * SIGHUP, once this process has loaded `files` without error: each worker loads them as a single
   * gate does and reports what changed; the reports become one: the same lines once, tunnels closed
   * for revoked certificates added up. A worker that fails makes the reload fail (it keeps its
   * configuration; the message says why); workers that start from now on get `files`.
   */
  async reload(files: FileSet): Promise<string[]> {
    this.files = files
    const reports = await Promise.all(this.slots.filter((s) => s.ready).map((s) => this.reloadOne(s)))
    const failed = reports.filter((r) => r.failed).map((r) => r.failed)
    if (failed.length) throw new TunkitError('TK_FAILED', [...new Set(failed)].join('; '))
    const lines: string[] = []
    let closed = 0
    for (const r of reports) {
      for (const l of r.changed ?? []) {
        const m = /^closed (\d+) tunnel\(s\) of revoked certificates$/.exec(l)
        if (m) closed += Number(m[1])
        else if (!lines.includes(l)) lines.push(l)
      }
    }
    if (closed) lines.push(`closed ${closed} tunnel(s) of revoked certificates`)
    return lines
  }

  /** Stops accepting, then SIGTERM to every worker; SIGKILL to any still there after the grace. */
  async close(): Promise<void> {
    this.closing = true
    for (const h of this.waiting.splice(0)) h.socket?.destroy()
    if (this.screened) this.screened.close()
    else await new Promise<void>((r) => this.server.close(() => r()))
    const live = this.slots.filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null)
    for (const s of this.slots) clearTimeout(s.restart)
    const exits = live.map((s) => new Promise<void>((r) => s.child!.once('exit', () => r())))
    for (const s of live) s.child!.kill('SIGTERM')
    const grace = setTimeout(() => {
      for (const s of live) if (s.child && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL')
    }, STOP_GRACE_MS)
    await Promise.all(exits)
    clearTimeout(grace)
  }

  /** Fresh figures from every ready worker (each bounded by COUNT_TIMEOUT_MS), before counts(). */
  async refresh(): Promise<void> {
    await Promise.all(this.slots.filter((s) => s.ready).map((s) => new Promise<void>((r) => {
      const id = (this.countId = (this.countId + 1) % 2 ** 31)
      const t = setTimeout(() => {
        this.countWaiters.delete(id)
        r()
      }, COUNT_TIMEOUT_MS)
      this.countWaiters.set(id, () => {
        clearTimeout(t)
        r()
      })
      this.sendTo(s, {t: 'count', id})
    })))
  }

  counts(): EngineCounts {
    const r = this.retired
    const c: EngineCounts = {
      tunnels: 0, preauth: 0, sessions: 0, bytes: {...r.bytes},
      opensRefused: copyTally(r.opensRefused), handshakeFailures: copyTally(r.handshakeFailures), limitHits: copyTally(r.limitHits),
      workers: [],
    }
    for (const s of this.slots) {
      if (this.idle.includes(s)) continue
      const l = s.ready ? s.last : undefined
      c.workers!.push({worker: String(s.index), tunnels: l?.tunnels ?? 0, connections: this.connections.get(String(s.index)), restarts: this.restarts.get(String(s.index)), up: s.ready})
      if (!s.last) continue
      // Counters of a live worker; a dead one's are in `retired` already.
      if (!s.child) continue
      c.tunnels += l?.tunnels ?? 0
      c.preauth += l?.preauth ?? 0
      c.sessions! += l?.sessions ?? 0
      c.bytes.out += s.last.bytes.out
      c.bytes.back += s.last.bytes.back
      addTallies(c.opensRefused!, s.last.opensRefused)
      addTallies(c.handshakeFailures, s.last.handshakeFailures)
      addTallies(c.limitHits, s.last.limitHits)
    }
    for (const [k, n] of this.dropped.entries()) c.limitHits.add(k, n)
    return c
  }

  private spawn(s: Slot): void {
    s.restart = undefined
    if (this.closing) return
    const child = fork(this.o.script, this.o.args, {
      env: {...process.env, [WORKER_ENV]: String(s.index)},
      // stdout and stderr are the primary's: log lines and --json events go where its own go.
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
      // Its own process group: a terminal's Ctrl-C reaches the primary only, which stops the workers
      // in order (and does not take a worker's own exit for a crash).
      detached: true,
    })
    s.child = child
    s.pid = child.pid
    s.ready = false
    s.last = undefined
    s.startedAt = Date.now()
    child.on('message', (m, handle) => {
      // Whatever a worker sends, the primary carries on: a bad message is dropped and logged.
      try {
        // Workers never send descriptors: one that does gets it closed, not kept open here.
        if (handle) {
          const h = handle as {destroy?: () => void; close?: () => void}
          if (typeof h.destroy === 'function') h.destroy()
          else h.close?.()
          throw new Error('a worker sent a descriptor')
        }
        if (s.child === child) this.onMessage(s, m)
      } catch (e) {
        this.o.log.log('error', `gate worker ${s.index}: message dropped: ${(e as Error).message}`, {key: `worker message ${s.index}`})
      }
    })
    child.on('error', (e) => this.o.log.log('warn', `gate worker ${s.index}: ${e.message}`, {key: `worker error ${s.index}`}))
    child.once('exit', (code, signal) => this.onExit(s, child, code, signal))
  }

  private onExit(s: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (s.child !== child) return
    // Its counters stay in the totals; its leases go back to the ledger.
    if (s.last) {
      this.retired.bytes.out += s.last.bytes.out
      this.retired.bytes.back += s.last.bytes.back
      addTallies(this.retired.opensRefused, s.last.opensRefused)
      addTallies(this.retired.handshakeFailures, s.last.handshakeFailures)
      addTallies(this.retired.limitHits, s.last.limitHits)
    }
    s.child = undefined
    s.ready = false
    s.last = undefined
    this.release(s)
    const reclaimed = this.ledger.drop(s.index)
    for (const h of this.handshakes.values()) if (h.slot === s) this.settle(h)
    const how = signal ? `on ${signal}` : `with status ${code}`
    if (this.closing) return
    if (Date.now() - s.startedAt > STABLE_MS) s.crashes = 0
    const delay = Math.min(BACKOFF_MS * 2 ** s.crashes, BACKOFF_MAX_MS)
    s.crashes = Math.min(s.crashes + 1, 16)
    this.o.log.log('warn', `gate worker ${s.index} (pid ${child.pid}) exited ${how}; its tunnels ended${reclaimed ? `, ${reclaimed} leased unit(s) reclaimed` : ''}; restarting in ${delay} ms`)
    this.o.log.event('worker-down', {worker: s.index, pid: child.pid ?? null, code, signal, restartMs: delay})
    s.restart = setTimeout(() => {
      this.restarts.add(String(s.index))
      this.spawn(s)
    }, delay)
  }

  private onMessage(s: Slot, raw: unknown): void {
    const m = parseWorkerMessage(raw)
    if (typeof m === 'string') {
      this.o.log.log('warn', `gate worker ${s.index}: malformed message dropped: ${m}`, {key: `worker message ${s.index}`})
      return
    }
    switch (m.t) {
      case 'hello':
        s.files = this.files
        return this.sendTo(s, {t: 'config', files: this.files})
      case 'ready':
        if (s.ready) return
        s.ready = true
        // A reload came while it was starting from the files before: it loads them now.
        if (s.files !== this.files) {
          void this.reloadOne(s).then((r) => r.failed && this.o.log.log('error', `${r.failed}; it runs the configuration it started with`))
        }
        this.o.log.log('debug', `gate worker ${s.index} ready (pid ${s.pid})`)
        this.o.log.event('worker-up', {worker: s.index, pid: s.pid ?? null})
        this.release(s)
        return
      case 'ask': {
        let g
        try {
          g = this.ledger.ask(s.index, m.pool, m.key, m.n)
        } catch (e) {
          if (!(e instanceof ShareError)) throw e
          g = {granted: 0, tight: true}
        }
        this.sendTo(s, {t: 'grant', id: m.id, granted: g.granted, tight: g.tight})
        // Short: the others hand back what they hold spare, for the next open.
        if (g.granted < 1) for (const w of this.ledger.holders(m.pool, m.key, s.index)) this.sendTo(this.slots[w], {t: 'recall', pool: m.pool, key: m.key})
        return
      }
      case 'give': {
        const back = this.ledger.giveBack(s.index, m.pool, m.key, m.n)
        if (back < m.n) this.o.log.log('warn', `gate worker ${s.index} gave back ${m.n} unit(s) of ${m.pool} but held ${back}`, {key: `worker give ${s.index}`})
        return
      }
      case 'settled': {
        const h = this.handshakes.get(m.id)
        if (h?.slot !== s) return
        this.settle(h)
        // A second portal: the other workers start (a probe or a failed handshake starts none).
        if (m.up && this.idle.length && this.authenticated++ > 0) this.spawnTogether(this.idle.splice(0))
        return
      }
      case 'counts':
        s.last = m.counts
        this.countWaiters.get(m.id)?.()
        this.countWaiters.delete(m.id)
        return
      case 'reloaded':
      case 'reload-failed':
        this.reloadWaiters.get(m.id)?.(m.t === 'reloaded' ? {changed: m.changed} : {failed: `gate worker ${s.index}: ${m.message}`})
        this.reloadWaiters.delete(m.id)
    }
  }

  /**
   * Before authentication the source address is all the gate knows: its share of the handshake
   * slots (--max-startups) is decided here, for all workers at once, and on the addon's listener
   * before a socket exists (Gate.admit says why). A slot is held until the worker says `settled`.
   */
  private admit(address: string, port: number): Handshake | undefined {
    const h: Handshake = {id: (this.handshakeId = (this.handshakeId + 1) % 2 ** 31), source: sourceKey(address)}
    const admitted = admitStartup(this.startups, h, hostPort(address, port), this.o.log, this.dropped)
    if (!admitted) return undefined
    const e = admitted.evicted
    if (e) {
      this.handshakes.delete(e.id)
      if (e.slot) this.sendTo(e.slot, {t: 'evict', id: e.id})
      else e.socket?.destroy()
    }
    this.handshakes.set(h.id, h)
    return h
  }


  /** Its slot back: authenticated, closed, evicted, or its worker gone. */
  private settle(h: Handshake): void {
    if (this.handshakes.get(h.id) === h) this.handshakes.delete(h.id)
    this.startups.remove(h.source, h)
  }

  /** Round robin over the ready workers; none ready (all restarting): the connection waits. */
  private spawnTogether(slots: Slot[]): void {
    for (const s of slots) {
      this.spawn(s)
      this.together.add(s)
    }
    clearTimeout(this.holdTimer)
    this.holdTimer = setTimeout(() => this.release(), HOLD_MS).unref()
  }

  /** Worker `s` (undefined: all of them) is no longer waited for; connections go on once none is. */
  private release(s?: Slot): void {
    if (s) this.together.delete(s)
    else this.together.clear()
    if (this.together.size) return
    clearTimeout(this.holdTimer)
    for (const w of this.waiting.splice(0)) if (w.socket) this.dispatch(w.socket, w)
  }

  private dispatch(sock: Socket, h: Handshake): void {
    // A socket back from `waiting` has its listeners already.
    const fresh = h.socket !== sock
    if (fresh) sock.on('error', () => {})
    // Evicted while it waited for a worker.
    if (!this.handshakes.has(h.id)) return void sock.destroy()
    const n = this.together.size ? 0 : this.slots.length
    for (let i = 0; i < n; i++) {
      const s = this.slots[(this.next + i) % n]
      if (!s.ready || !s.child?.connected) continue
      this.next = (s.index + 1) % n
      this.connections.add(String(s.index))
      h.slot = s
      h.socket = undefined
      // Sent, the descriptor is the worker's: Node closes this process's copy.
      s.child.send({t: 'conn', id: h.id}, sock, (e) => {
        if (!e) return
        this.o.log.log('warn', `handing a connection to gate worker ${s.index}: ${e.message}`, {key: 'worker send'})
        sock.destroy()
        this.settle(h)
      })
      return
    }
    if (this.closing || this.waiting.length >= MAX_WAITING) {
      this.dropped.add('workers')
      this.o.log.log('warn', `refused ${sock.remoteAddress ?? '?'}: no gate worker is ready`, {key: 'no worker'})
      this.settle(h)
      return void sock.resetAndDestroy()
    }
    this.waiting.push(h)
    if (!fresh) return
    h.socket = sock
    sock.once('close', () => {
      const i = this.waiting.indexOf(h)
      if (i >= 0) this.waiting.splice(i, 1)
      if (!h.slot) this.settle(h)
    })
  }

  /** Worker `s` loads the configuration's current files: what changed, or why it failed. */
  private reloadOne(s: Slot): Promise<{changed?: string[]; failed?: string}> {
    return new Promise((r) => {
      const id = (this.countId = (this.countId + 1) % 2 ** 31)
      const t = setTimeout(() => {
        this.reloadWaiters.delete(id)
        r({failed: `gate worker ${s.index} did not answer within ${RELOAD_TIMEOUT_MS / 1000} s`})
      }, RELOAD_TIMEOUT_MS)
      this.reloadWaiters.set(id, (rep) => {
        clearTimeout(t)
        r(rep)
      })
      s.files = this.files
      this.sendTo(s, {t: 'reload', id, files: this.files})
    })
  }

  private sendTo(s: Slot, m: PrimaryMessage): void {
    if (!s.child?.connected) return
    s.child.send(m, (e: Error | null) => {
      if (e) this.o.log.log('debug', `gate worker ${s.index}: ${e.message}`)
    })
  }
}

function copyTally(t: Tally): Tally {
  const c = new Tally()
  for (const [k, n] of t.entries()) c.add(k, n)
  return c
}

function addTallies(t: Tally, from: Tallies): void {
  for (const [k, n] of from) t.add(k, n)
}

function tallies(t: Tally | undefined): Tallies {
  return t ? [...t.entries()] : []
}

/**
 * A worker, before it parses its flags: the primary's configuration files (`hello`, then
 * `config`), which it reads from then on instead of the disk (lib/io/config-files.ts).
 */
export function receiveFiles(): Promise<void> {
  if (!process.send) return Promise.reject(new TunkitError('TK_INTERNAL', `${WORKER_ENV} is set but this process has no IPC channel: a gate worker is started by gate --workers`))
  return new Promise((resolve, reject) => {
    const done = (e?: Error): void => {
      clearTimeout(timer)
      process.off('message', on)
      if (e) reject(e)
      else resolve()
    }
    const on = (raw: unknown): void => {
      const m = parsePrimaryMessage(raw)
      if (typeof m === 'string') return done(new TunkitError('TK_INTERNAL', `the gate primary sent no configuration: ${m}`))
      if (m.t !== 'config') return
      serveFiles(m.files)
      done()
    }
    const timer = setTimeout(() => done(new TunkitError('TK_INTERNAL', `the gate primary sent no configuration within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS)
    process.on('message', on)
    process.send!({t: 'hello'})
  })
}

/**
 * A worker's end of the channel: the gate's SharedQuota (leases by way of a ShareWallet), the
 * connections handed over, and its figures for the primary's scrapes.
 */
export class WorkerChannel implements SharedQuota {
  private readonly wallet = new ShareWallet()
  private askId = 0
  private readonly asks = new Map<number, {pool: Pool; key: string; done?: (ok: boolean) => void; timer: NodeJS.Timeout}>()
  private gate?: Gate
  /** Connections handed over and still in their handshake, by the primary's id (for `evict`). */
  private readonly handshaking = new Map<number, Socket>()
  /** The worker's reload (the command re-reads its flags): what changed, or it throws. */
  onReload?: () => Promise<string[]>
  private readonly onMsg = (m: unknown, handle: unknown): void => {
    try {
      this.onMessage(m, handle)
    } catch (e) {
      this.log.log('error', `message from the gate primary dropped: ${(e as Error).stack ?? e}`, {key: 'primary message'})
    }
  }

  constructor(private readonly log: Logger) {
    if (!process.send) throw new TunkitError('TK_INTERNAL', `${WORKER_ENV} is set but this process has no IPC channel: a gate worker is started by gate --workers`)
  }

  /** Start taking connections: the gate is ready. */
  attach(gate: Gate): void {
    this.gate = gate
    process.on('message', this.onMsg)
    this.send({t: 'ready'})
  }

  detach(): void {
    process.off('message', this.onMsg)
    for (const a of this.asks.values()) clearTimeout(a.timer)
  }

  take(pool: Pool, key: string): boolean | Promise<boolean> {
    if (this.wallet.take(pool, key)) return true
    if (this.asks.size >= MAX_ASKS || !process.connected) return false
    const id = (this.askId = (this.askId + 1) % 2 ** 31)
    return new Promise<boolean>((done) => {
      const timer = setTimeout(() => {
        // Refused; a grant that still comes is given back (onMessage).
        const a = this.asks.get(id)
        if (a) a.done = undefined
        done(false)
      }, ASK_TIMEOUT_MS)
      this.asks.set(id, {pool, key, done, timer})
      this.send({t: 'ask', id, pool, key, n: this.wallet.want(pool, key)})
    })
  }

  give(pool: Pool, key: string): void {
    const n = this.wallet.release(pool, key)
    if (n) this.send({t: 'give', pool, key, n})
  }

  private onMessage(raw: unknown, handle: unknown): void {
    const m = parsePrimaryMessage(raw)
    if (typeof m === 'string') {
      this.log.log('warn', `malformed message from the gate primary dropped: ${m}`, {key: 'primary message'})
      return
    }
    switch (m.t) {
      case 'conn': {
        const s = handle as Socket | undefined
        const id = m.id
        if (!s || typeof s.destroy !== 'function' || typeof s.remoteAddress !== 'string') {
          this.log.log('warn', 'a connection from the gate primary came without a socket', {key: 'primary message'})
          // Its startup slot goes back all the same.
          return this.send({t: 'settled', id, up: false})
        }
        if (!this.gate || this.handshaking.has(id)) {
          s.destroy()
          return this.send({t: 'settled', id, up: false})
        }
        this.handshaking.set(id, s)
        return this.gate.adopt(s, (up) => {
          if (this.handshaking.get(id) !== s) return
          this.handshaking.delete(id)
          this.send({t: 'settled', id, up})
        })
      }
      case 'evict':
        // Gone already (authenticated or closed): nothing to do, `settled` is on its way.
        this.handshaking.get(m.id)?.destroy()
        return
      case 'grant': {
        const a = this.asks.get(m.id)
        if (!a) return
        this.asks.delete(m.id)
        clearTimeout(a.timer)
        this.wallet.add(a.pool, a.key, {granted: m.granted, tight: m.tight})
        a.done?.(this.wallet.take(a.pool, a.key))
        // A tight grant keeps nothing spare (another worker may need it); a late one goes back too.
        const back = this.wallet.spare(a.pool, a.key)
        if (back) this.send({t: 'give', pool: a.pool, key: a.key, n: back})
        return
      }
      case 'recall': {
        const n = this.wallet.recall(m.pool, m.key)
        if (n) this.send({t: 'give', pool: m.pool, key: m.key, n})
        return
      }
      case 'count': {
        const c = this.gate?.counts()
        if (!c) return
        const counts: CountsData = {
          tunnels: c.tunnels, preauth: c.preauth, sessions: c.sessions ?? 0, bytes: c.bytes,
          opensRefused: tallies(c.opensRefused), handshakeFailures: tallies(c.handshakeFailures), limitHits: tallies(c.limitHits),
        }
        this.send({t: 'counts', id: m.id, counts})
        return
      }
      case 'config':
        // Sent once, before this channel listens (receiveFiles).
        return
      case 'reload': {
        const id = m.id
        serveFiles(m.files)
        const run = this.onReload ?? (() => Promise.resolve([]))
        run().then((changed) => this.send({t: 'reloaded', id, changed: changed.slice(0, 32).map((l) => l.slice(0, 1000))}), (e: Error) => {
          this.send({t: 'reload-failed', id, message: e.message.replace(/\s*\n\s*/g, ' ').slice(0, 1000)})
        })
      }
    }
  }

  private send(m: object): void {
    if (!process.connected) return
    process.send!(m, undefined, {}, () => {})
  }
}
