import {createServer, type Server, type Socket} from 'node:net'
import {networkInterfaces} from 'node:os'
import {CodecError, errorCode, RefusedError} from '../../lib/errors.js'
import {closeStatusFor} from '../errors.js'
import {CLOSE_STATUS_NAMES, encodeTunnel, TunnelType, withRelayHops} from '../codec/tunnel.js'
import type {Logger} from '../../lib/log.js'
import {allowsAddress, allowsName, entryIsSelf, placeInPath, reachesSelf, type HopRule, type Listen} from '../core/next-hop.js'
import {GateGroup, parseGateTarget, type Balance, type Member} from '../core/gate-group.js'
import {TUNNEL_TRACE} from '../trace.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {dialTcp, hostPort, resolve, resolveAll} from '../../lib/io/connect.js'
import {nodeMatches, readClearFrame} from './relay-frame.js'
import {tuneServerProcess} from '../../lib/io/native.js'
import {startListener} from '../../lib/io/listen.js'
import {Limiter} from '../../lib/limit.js'
import {sourceKey} from '../core/startups.js'
import {joinSockets} from '../../lib/io/join.js'
import {Tally, type Counted, type EngineCounts} from '../../lib/metrics.js'

/** The relay's tunables (times in seconds); the relay command's flags show these. */
export const RELAY_DEFAULTS = {
  host: '127.0.0.1',
  port: 4500,
  balance: 'least-connections' as Balance,
  /** 0 = no health checks. */
  healthInterval: 5,
  maxHops: 8,
  handshakeTimeout: 10,
  connectTimeout: 10,
}

/** What a Relay is built with: the tunables may be left to RELAY_DEFAULTS. */
export type RelayConfig = Omit<RelayOptions, keyof typeof RELAY_DEFAULTS> & Partial<typeof RELAY_DEFAULTS>

export interface RelayOptions {
  host: string
  port: number
  name: string
  allowNext: HopRule[]
  /** How a group member is chosen. */
  balance: Balance
  /** Gate groups portals may ask for as "group:NAME". */
  groups: {name: string; members: {host: string; port: number}[]}[]
  /** Seconds between health checks of group members (0 = none). */
  healthInterval: number
  maxHops: number
  handshakeTimeout: number
  connectTimeout: number
  log: Logger
  tracer?: Tracer
  /** Name lookup for next hops (tests count and fake lookups); lib/io/connect's resolve() by default. */
  lookup?: (host: string) => Promise<{address: string}>
}

/** The states of seed 000 Fig. 13 a relay's connection passes through, named in the log. */
type State = 'receive-relay' | 'forward-connect' | 'forward' | 'dead'

/**
 * A tunnel relay (seed 000, Fig. 13): reads the RELAY frame, finds itself in the path, connects the
 * next node, forwards the frame unchanged, then splices bytes both ways without reading them. TLS
 * runs end to end between portal and gate, so a relay never sees plaintext.
 */
/** Concurrent next-hop lookups per source address, and how many more may wait. */
const LOOKUPS_PER_SOURCE = 2
const LOOKUP_QUEUE_PER_SOURCE = 16
const MAX_LOOKUP_SOURCES = 4096
/** How old our own name's addresses may get before a frame makes us look it up again. */
const NAME_REFRESH_MS = 60_000

export class Relay implements Counted {
  private server: Server
  /** Closers for accepted connections and running joins (relay shutdown calls them all). */
  private live = new Set<() => void>()
  spliced = 0

  private healthTimer: NodeJS.Timeout | null = null
  /** Where we accept tunnels: a next hop that resolves to one of these is refused (issue 9). */
  private listens: Listen[] = []
  private lookups = new Map<string, Limiter>()
  /** What our --name resolves to (path entries may name us by address), and when it was looked up. */
  private nameAddresses: string[] = []
  private nameResolved = 0
  /** For --metrics: connections before their RELAY frame is forwarded, tunnels being forwarded. */
  private preauth = 0
  private forwarding = 0
  private readonly stats = {handshakeFailures: new Tally(), limitHits: new Tally()}
  private bytesClosed = {out: 0, back: 0}

  private readonly o: RelayOptions
  private readonly groups: GateGroup[]

  constructor(config: RelayConfig) {
    const o = (this.o = {...RELAY_DEFAULTS, ...config})
    this.server = createServer({noDelay: true, allowHalfOpen: true}, (s) => void this.accept(s))
    this.groups = o.groups.map((g) => new GateGroup(g.name, g.members, o.balance))
    if (o.healthInterval > 0 && this.groups.length) {
      this.healthTimer = setInterval(() => this.checkHealth(), o.healthInterval * 1000)
      this.healthTimer.unref()
    }
  }

  /** Active health checks: a TCP connect to every member of every group. */
  private checkHealth(): void {
    for (const g of this.groups) {
      for (const m of g.members) {
        dialTcp(m.host, m.port, Math.min(2000, this.o.healthInterval * 1000)).then(
          (s) => { s.destroy(); this.note(g, m, true) },
          () => this.note(g, m, false),
        )
      }
    }
  }

  private note(g: GateGroup, m: Member, ok: boolean): void {
    const change = g.report(m, ok)
    if (change) {
      this.o.log.log(ok ? 'info' : 'warn', change)
      this.o.log.event(ok ? 'gate-up' : 'gate-down', {group: g.name, gate: m.target})
    }
  }

  /** Failover at set-up: try the group's candidates in order until one accepts. */
  private async dialGroup(g: GateGroup): Promise<{sock: Socket; member: Member}> {
    for (const m of g.candidates()) {
      try {
        const sock = await dialTcp(m.host, m.port, this.o.connectTimeout * 1000)
        this.note(g, m, true)
        return {sock, member: m}
      } catch {
        this.note(g, m, false)
        this.o.log.log('warn', `gate ${m.target} of group ${g.name} did not accept; trying the next`)
      }
    }
    throw new RefusedError('TK_NO_HEALTHY_GATE', `no gate of group ${g.name} accepted the tunnel`)
  }

  listen(): Promise<{address: string; port: number}> {
    tuneServerProcess()
    return startListener(this.server, this.o.host, this.o.port, this.o.log).then(async (bound) => {
      this.listens = [bound]
      await this.resolveName()
      return bound
    })
  }

  /** Our --name's addresses: looked up at start, then again at most every NAME_REFRESH_MS. */
  private async resolveName(): Promise<void> {
    this.nameResolved = Date.now()
    const t = parseGateTarget(this.o.name)
    const found = await resolveAll(t?.kind === 'host' ? t.host : this.o.name)
    // A lookup that fails later keeps what the last one found.
    if (found.length || !this.nameAddresses.length) this.nameAddresses = found
  }

  /** Which path entries name us: our --name text, or an address we are reached on (entryIsSelf). */
  private isMe(): (entry: string) => boolean {
    // Refreshed in the background: a frame never waits for our own name's lookup.
    if (Date.now() - this.nameResolved > NAME_REFRESH_MS) void this.resolveName()
    const t = parseGateTarget(this.o.name)
    const self = {addresses: this.nameAddresses, ports: [...this.listens.map((l) => l.port), ...(t?.kind === 'host' ? [t.port] : [])], listens: this.listens, local: localAddresses()}
    return (entry) => nodeMatches(entry, this.o.name) || entryIsSelf(entry, self)
  }

  /** Bytes count once a tunnel ends: the kernel splices them, JavaScript never sees them pass. */
  counts(): EngineCounts {
    return {tunnels: this.forwarding, preauth: this.preauth, bytes: {...this.bytesClosed}, ...this.stats}
  }

  /** SIGHUP: new --allow-next rules for the tunnels that come next; returns what changed. */
  reload(allowNext: HopRule[]): string[] {
    const texts = (rs: HopRule[]): string => rs.map((r) => r.text).join(', ') || 'none'
    const was = texts(this.o.allowNext)
    this.o.allowNext = allowNext
    return was === texts(allowNext) ? [] : [`next hops: ${texts(allowNext)} (was ${was})`]
  }

  async close(): Promise<void> {
    if (this.healthTimer) clearInterval(this.healthTimer)
    for (const stop of this.live) stop()
    await new Promise<void>((r) => this.server.close(() => r()))
  }

  /** One source address's share of the name lookups (no login here: the address is all we know),
   * so names that never resolve, sent from one place, cannot hold every lookup slot. */
  private lookupBudget(address: string): Limiter {
    const key = sourceKey(address)
    let l = this.lookups.get(key)
    if (!l) {
      // Forgotten once idle, so the map holds only sources with lookups under way.
      if (this.lookups.size >= MAX_LOOKUP_SOURCES) for (const [k, v] of this.lookups) if (v.idle) this.lookups.delete(k)
      this.lookups.set(key, (l = new Limiter(LOOKUPS_PER_SOURCE, LOOKUP_QUEUE_PER_SOURCE)))
    }
    return l
  }

  private async accept(prev: Socket): Promise<void> {
    const peer = hostPort(prev.remoteAddress ?? '?', prev.remotePort ?? 0)
    const log = this.o.log
    let state: State = 'receive-relay'
    prev.on('error', () => {})
    const drop = (): void => void prev.destroy()
    this.live.add(drop)
    prev.once('close', () => this.live.delete(drop))
    this.preauth++
    const timer = setTimeout(() => {
      this.stats.handshakeFailures.add('TK_TIMEOUT')
      log.log('warn', `${peer}: no RELAY frame within ${this.o.handshakeTimeout} s (${state})`)
      prev.destroy()
    }, this.o.handshakeTimeout * 1000)
    let next: Socket | null = null
    // What only our log says: why a hop was refused, when the peer is told less (no DNS oracle).
    let why = ''
    try {
      let read
      try {
        read = await readClearFrame(prev, [TunnelType.RELAY], 'RELAY frame')
      } catch (e) {
        if (e instanceof CodecError && e.code === 'CLOSED') return
        throw new RefusedError('TK_BAD_RELAY_FRAME', (e as Error).message)
      }
      const {frame, wire, rest} = read
      if (frame.kind !== 'relay') throw new RefusedError('TK_BAD_RELAY_FRAME', 'not a RELAY frame')
      this.o.tracer?.trace('in', peer, TUNNEL_TRACE, frame, wire.length)
      const hops = frame.hops ?? 0
      log.log('debug', `${peer}: RELAY from ${frame.origin}, path ${frame.path.join(' -> ')}, ${hops} hop(s) so far`)
      const me = placeInPath(frame.path, hops, this.isMe(), this.o.name, this.o.maxHops)
      const hop = frame.path[me + 1]
      const target = parseGateTarget(hop)
      if (!target) throw new RefusedError('TK_BAD_RELAY_FRAME', `next hop "${hop}" is not host:port`)
      let member: Member | null = null
      let host: string
      let port: number
      if (target.kind === 'group') {
        // Our own groups are always allowed next hops.
        const g = this.groups.find((x) => x.name === target.name)
        if (!g) throw new RefusedError('TK_HOP_NOT_ALLOWED', `this relay has no gate group "${target.name}"`)
        state = 'forward-connect'
        const chosen = await this.dialGroup(g)
        next = chosen.sock
        member = chosen.member
        ;({host, port} = member)
      } else {
        ;({host, port} = target)
        // The rules first: a name no rule could allow is never looked up, so a peer can neither
        // make us query DNS for it nor learn from our answer whether it resolves (issue 9).
        const byName = allowsName(this.o.allowNext, host, port)
        const notAllowed = (): RefusedError => new RefusedError('TK_HOP_NOT_ALLOWED', `next hop ${hop} is not allowed (--allow-next)`)
        if (byName === false) {
          why = 'no rule allows this name and port; not resolved'
          throw notAllowed()
        }
        let address: string
        try {
          address = (await (this.o.lookup ? this.o.lookup(host) : resolve(host, {budget: this.lookupBudget(prev.remoteAddress ?? '?')}))).address
        } catch (e) {
          if (errorCode(e) === 'TK_RESOURCE_LIMIT') this.stats.limitHits.add('lookups')
          // A name a rule allows may say it does not resolve; one only an address rule could
          // allow gets the same answer as a disallowed address.
          if (byName) throw new RefusedError('TK_HOP_UNRESOLVABLE', `next hop ${hop}: ${(e as Error).message}`, {cause: e})
          why = `does not resolve: ${(e as Error).message}`
          throw notAllowed()
        }
        if (!byName && !allowsAddress(this.o.allowNext, address, port)) {
          why = `resolves to ${address}`
          throw notAllowed()
        }
        log.log('debug', `${peer}: next hop ${hop} allowed by ${byName ? 'a name rule' : `an address rule (it resolves to ${address})`}; connecting`)
        if (reachesSelf(address, port, this.listens, localAddresses())) {
          throw new RefusedError('TK_HOP_LOOP', `next hop ${hop} is this relay (${hostPort(address, port)})`)
        }
        state = 'forward-connect'
        try {
          next = await dialTcp(address, port, this.o.connectTimeout * 1000)
        } catch (e) {
          throw new RefusedError('TK_HOP_UNREACHABLE', `next hop ${hop}: ${(e as Error).message}`, {cause: e})
        }
      }
      if (member) member.tunnels++
      const group = target.kind === 'group' ? target.name : null
      const to = member ? `group ${group}: gate ${member.target}` : hostPort(host, port)
      log.log('info', `${peer} (${frame.origin}) -> ${to}: forwarding`)
      log.event('tunnel-up', {peer, origin: frame.origin, next: hop, ...(member ? {group, gate: member.target} : {address: hostPort(host, port)})})
      clearTimeout(timer)
      state = 'forward'
      this.spliced++
      this.forwarding++
      const n = next
      n.on('error', () => {})
      // Forwarded as received but for HOPS, which counts us in: a loop dies at the hop limit.
      const out = withRelayHops(wire, frame, hops + 1)
      this.o.tracer?.trace('out', hostPort(host, port), TUNNEL_TRACE, {...frame, hops: hops + 1}, out.length)
      const m = member
      const since = Date.now()
      const stop = joinSockets(prev, n, rest.length ? Buffer.concat([out, rest]) : out, (how) => {
        // Dead (Fig. 13): both directions have ended, or one side failed.
        state = 'dead'
        this.live.delete(stop)
        if (m) m.tunnels--
        this.forwarding--
        this.bytesClosed.out += how.aToB
        this.bytesClosed.back += how.bToA
        const secs = (Date.now() - since) / 1000
        log.log('info', `${peer} (${frame.origin}) -> ${to}: closed after ${secs.toFixed(1)} s, ${how.aToB} bytes out, ${how.bToA} back${how.error ? ` (${how.error})` : ''}`)
        log.event('tunnel-down', {
          peer, origin: frame.origin, next: hop, reason: how.error ?? 'closed', code: how.error ? errorCode({code: how.error}, 'TK_CONNECTION_RESET') : 'TK_CLOSED',
          status: null, seconds: secs, bytesOut: how.aToB, bytesBack: how.bToA,
        })
      })
      this.live.add(stop)
    } catch (e) {
      clearTimeout(timer)
      next?.destroy()
      this.stats.handshakeFailures.add(errorCode(e))
      if (!(e instanceof RefusedError)) {
        log.log('error', `${peer}: ${(e as Error).message}`)
        return void prev.destroy()
      }
      const status = closeStatusFor(e)
      log.log('warn', `refused ${peer} in ${state}: ${CLOSE_STATUS_NAMES[status]}: ${e.message}${why ? ` (${why})` : ''}`)
      prev.end(encodeTunnel({kind: 'close', status, reason: e.message}))
      setTimeout(() => prev.destroy(), 2000).unref()
    } finally {
      this.preauth--
    }
  }
}

/** This host's interface addresses, read at each check: interfaces come and go. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((xs) => (xs ?? []).map((x) => x.address))
}
