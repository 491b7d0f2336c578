import {createHash} from 'node:crypto'
import {CodecError, TunkitError, type ErrorCode} from '../../lib/errors.js'
import {ipv4Bytes, ipv6Bytes, isIPv4} from '../../lib/net/ip.js'
import {Exchange, Flag, HashAlg, Notify, NOTIFY_NAMES, PayloadType as P, ProtocolId} from '../codec/constants.js'
import {decodeMessage, type IkeMessage} from '../codec/message.js'
import {payloadOf, payloadsOf, type Payload, type PayloadOf} from '../codec/payload.js'
import type {Proposal} from '../codec/sa.js'
import type {TrafficSelector} from '../codec/ts.js'
import {createKeyExchange, deriveChildKeys, deriveIkeKeys, openSk, pooledRandom, rekeySkeyseed, sealSk, skKeys, type ChildKeys, type KeyExchange, type SkKeys, type Suite} from './crypto.js'
import {acceptAnswer, choose, toProposals, withPfs, type Policy} from './proposals.js'

/**
 * What both IKEv2 machines (initiator.ts, responder.ts) share once an IKE_SA has keys (RFC 7296
 * §2.1 to §2.3): message IDs, one request of ours in flight (window 1) retransmitted with
 * exponential backoff, the cached response to the peer's last request, silent drops of anything
 * malformed or unexpected, and INFORMATIONAL (DPD, DELETE). Sans-I/O: datagrams and `now` in,
 * actions out; randomness comes from `Deps`.
 */

export interface Endpoint {
  address: string
  port: number
}

/** Injected randomness, so a test can make a run repeat. */
export interface Deps {
  random(n: number): Buffer
  keyExchange(group: number): KeyExchange
  /** The I/O side: whether one of our inbound ESP SPIs is taken (the ESP engine finds SAs by it). */
  spiInUse?(spi: Buffer): boolean
}

export const DEFAULT_DEPS: Deps = {random: pooledRandom, keyExchange: createKeyExchange}

/**
 * Our inbound SPI for a new CHILD_SA: random, never 0–255 (reserved, RFC 4303 §2.1), never one in
 * use. Among 10 000 CHILD_SAs two random SPIs would collide about once in a hundred gateways, and
 * the second then took the first's ESP.
 */
export function childSpi(deps: Deps): Buffer {
  for (let i = 0; i < 64; i++) {
    const spi = deps.random(4)
    if (spi.readUInt32BE(0) >= 256 && !deps.spiInUse?.(spi)) return spi
  }
  throw new TunkitError('TK_RESOURCE_LIMIT', 'no free ESP SPI')
}

/** §2.1: the first retransmission after 0.5 s, then doubling; after `tries` sends the peer is dead. */
export interface Retransmit {
  initialMs: number
  tries: number
}

export const RETRANSMIT: Retransmit = {initialMs: 500, tries: 6}

/** One CHILD_SA as a data plane needs it. SPIs are the ones each side chose for its inbound SA. */
export interface ChildSa {
  suite: Suite
  /** The initiator's inbound SPI (ESP sent to the initiator carries it). */
  spiI: Buffer
  spiR: Buffer
  /** A gateway's driver swaps them for empty ones once the data plane has them. */
  keys: ChildKeys
  tsI: TrafficSelector[]
  tsR: TrafficSelector[]
}

export interface Established {
  role: 'initiator' | 'responder'
  spiI: Buffer
  spiR: Buffer
  ike: Suite
  /** The peer's identity as authenticated (text). */
  peerId: string
  child: ChildSa
  /** The initiator's virtual IP, leased by the responder (CFG_REPLY). */
  vip?: string
  dns: string[]
  /** The subnets the responder pushed (INTERNAL_IP4_SUBNET), as CIDR text: routes for the initiator. */
  subnets?: string[]
  /** §2.23: a NAT on the way; ESP then goes in UDP to port 4500 (RFC 3948). */
  nat: {local: boolean; remote: boolean}
  /** Where the peer is (after NAT detection the initiator moves to port 4500). */
  peer: Endpoint
  /** Initiator: further CHILD_SAs it asks for, one per pushed policy (seed 002); each ends in `child-up` or `child-failed`. */
  moreChildren?: number
}

export type Action =
  | {type: 'send'; to: Endpoint; data: Buffer}
  /** Call `tick(at)` at or after `at` (ms, the caller's clock). */
  | {type: 'timer'; at: number}
  | {type: 'established'; sa: Established}
  /** The IKE_SA failed; `error.message` is the one line for the user or the log. */
  | {type: 'failed'; spiI: Buffer; error: TunkitError}
  | {type: 'deleted'; spiI: Buffer; what: 'ike' | 'child'; by: 'peer' | 'us'; spis: Buffer[]; why?: string}
  /** `old` was rekeyed (§2.8) by the peer or by us: `child` is new; `old` stays until its DELETE is done. */
  | {type: 'rekeyed'; spiI: Buffer; old: ChildSa; child: ChildSa; by: 'peer' | 'us'}
  /** A CHILD_SA came up (the first one is also in `established`). */
  | {type: 'child-up'; spiI: Buffer; child: ChildSa}
  /** A CHILD_SA could not be made; the IKE_SA stays up. */
  | {type: 'child-failed'; spiI: Buffer; error: TunkitError}
  /**
   * The IKE_SA `oldSpiI` was rekeyed (§2.8): from now on its CHILD_SAs and traffic belong to the
   * new IKE_SA `sa`, and later actions name `sa.spiI`. Re-index by it.
   */
  | {type: 'ike-rekeyed'; oldSpiI: Buffer; sa: {spiI: Buffer; spiR: Buffer; ike: Suite; role: 'initiator' | 'responder'}}

export interface Counters {
  /** Datagrams dropped without a reply: malformed, failed integrity, unexpected ID or state. */
  dropped: number
  retransmits: number
  /** Retransmitted requests of the peer answered from the cache. */
  cachedReplies: number
}

/** NAT_DETECTION_*_IP data (§2.23): SHA-1(SPIi | SPIr | IP | port). */
export function natHash(spiI: Buffer, spiR: Buffer, at: Endpoint): Buffer {
  const port = Buffer.alloc(2)
  port.writeUInt16BE(at.port)
  return createHash('sha1').update(Buffer.concat([spiI, spiR, isIPv4(at.address) ? ipv4Bytes(at.address) : ipv6Bytes(at.address), port])).digest()
}

/**
 * §2.23 from one side's view of IKE_SA_INIT: the peer's SOURCE hashes not matching where we see it
 * means a NAT in front of the peer (`remote`); its DESTINATION hashes not matching our own address
 * means one in front of us (`local`). No hashes: the peer does no NAT-T, so there is none to handle.
 */
export function natDetected(ps: readonly Payload[], spiI: Buffer, spiR: Buffer, remote: Endpoint, local: Endpoint): {local: boolean; remote: boolean} {
  const ns = payloadsOf(ps, P.N)
  const misses = (type: number, at: Endpoint): boolean => {
    const hs = ns.filter((n) => n.notify === type)
    return hs.length > 0 && !hs.some((n) => n.data.equals(natHash(spiI, spiR, at)))
  }
  return {remote: misses(Notify.NAT_DETECTION_SOURCE_IP, remote), local: misses(Notify.NAT_DETECTION_DESTINATION_IP, local)}
}

/** RFC 7427 hashes we verify, announced in IKE_SA_INIT by both roles. */
export const SIGNATURE_HASHES = Buffer.from([0, HashAlg.SHA2_256, 0, HashAlg.SHA2_384, 0, HashAlg.SHA2_512])

export const notify = (type: number, data: Buffer = Buffer.alloc(0), protocol = 0, spi: Buffer = Buffer.alloc(0)): Payload => ({type: P.N, protocol, spi, notify: type, data})

/** The error notifies (types below 16384, §3.10.1) a message carries. */
export function errorNotifies(ps: readonly Payload[]): number[] {
  return ps.flatMap((p) => (p.type === P.N && !('unknown' in p) && p.notify < 16384 ? [p.notify] : []))
}

/** A failure of ours that must not escape as an exception: bad input is a drop, not a crash. */
export function isInputError(e: unknown): boolean {
  return e instanceof CodecError || e instanceof TunkitError
}

/** A datagram decoded, or undefined when it does not decode (the caller drops it). */
export function tryDecode(raw: Buffer): IkeMessage | undefined {
  try {
    return decodeMessage(raw)
  } catch (e) {
    if (isInputError(e)) return undefined
    throw e
  }
}

/**
 * What `--trace` sees of the protected messages (all sealed and opened in ProtectedSa): the
 * datagram as sent or received, and its inner payloads, or why there are none to see
 * (`unverified`: the integrity check failed; `malformed`: no well-formed SK, or its inside does not decode).
 */
export type SkObserver = (dir: 'in' | 'out', message: Buffer, inner: readonly Payload[] | 'unverified' | 'malformed') => void

/** Answers one genuine request of the peer; undefined drops it (not expected in this state). */
export type RequestHandler = (m: IkeMessage, inner: Payload[], now: number) => {reply: Payload[]; actions: Action[]} | undefined

/** Lifetimes (ms): rekey at `softMs` minus a random share of `jitterMs`, delete at `hardMs`. */
export interface Lifetime {
  softMs: number
  jitterMs: number
  hardMs: number
}

/** As strongSwan's defaults: CHILD_SAs rekey after 54–60 min (gone at 66), IKE_SAs after 3.6–4 h (gone at 4.4 h). */
export const CHILD_LIFETIME: Lifetime = {softMs: 3_600_000, jitterMs: 360_000, hardMs: 3_960_000}
export const IKE_LIFETIME: Lifetime = {softMs: 14_400_000, jitterMs: 1_440_000, hardMs: 15_840_000}
/** CHILD_SAs an IKE_SA may hold; requests beyond get NO_ADDITIONAL_SAS (a rekey briefly holds two). */
export const MAX_CHILDREN = 16
/** After TEMPORARY_FAILURE (§2.25) a rekey is tried again after 2 s plus up to 8 s. */
const RETRY_MS = 2_000
const RETRY_JITTER_MS = 8_000
/** How long an IKE_SA replaced by a rekey waits for the peer's DELETE before it is forgotten. */
const REKEYED_LINGER_MS = 30_000

/** What a responder's policy allows for a new CHILD_SA: the ESP proposals chosen, the narrowed TS. */
export type ChildSelection =
  | {ok: true; esp: readonly Policy[]; proposal: Proposal; suite: Suite; tsI: TrafficSelector[]; tsR: TrafficSelector[]}
  | {ok: false; notify: number; why: string}

/**
 * How an IKE_SA behaves: one object per machine, shared by all its IKE_SAs (a gateway holds
 * thousands), so what differs per IKE_SA comes in as an argument. An IKE_SA made by a rekey
 * inherits it; `adopt` is how the owning machine learns of that new IKE_SA (to route datagrams to it).
 */
export interface SaOptions {
  retransmit: Retransmit
  child: Lifetime
  ike: Lifetime
  /** A DPD after this long without a message or ESP packet (`sawTraffic`) from the peer; 0: none. */
  dpdMs: number
  maxChildren: number
  /** Our IKE proposals: what an IKE_SA rekey may choose, and what ours offers. */
  ikePolicies: readonly Policy[]
  /** A new CHILD_SA the peer asks for (TS as in the request, exchange roles); absent: NO_ADDITIONAL_SAS. */
  select?(sa: ProtectedSa, tsI: TrafficSelector[], tsR: TrafficSelector[], offered: Proposal[], pfs: boolean): ChildSelection
  adopt(prev: ProtectedSa, next: ProtectedSa): void
  /** Set only with `--trace`: sees every message this IKE_SA (and its rekeyed successors) seals or opens. */
  onPlain?: SkObserver
}

interface Pending {
  id: number
  data: Buffer
  sent: number
  at: number
  onResponse(inner: Payload[], now: number): Action[]
}

interface Queued {
  exchange: number
  inner: Payload[]
  onResponse(inner: Payload[], now: number): Action[]
}

/** Per CHILD_SA: the ESP policy it was made with (its rekeys use it), its timers, its rekey state. */
interface ChildState {
  esp: readonly Policy[]
  rekeyAt: number
  hardAt: number
  /** rekeying: our rekey is in flight; rekeyed: replaced, its DELETE is up to the peer; deleting: ours is in flight. */
  state: 'installed' | 'rekeying' | 'rekeyed' | 'deleting'
  /** §2.8.1: the peer's rekey of this CHILD_SA, answered while ours was in flight. */
  collision?: {nonces: Buffer[]; child: ChildSa}
}

type Answer = {reply: Payload[]; actions: Action[]}

/** What a CHILD_SA request of ours remembers until its answer. */
interface ChildRequest {
  esp: readonly Policy[]
  tsI: TrafficSelector[]
  tsR: TrafficSelector[]
  old?: ChildSa
  group?: number
  retried?: boolean
}

const lowest = (xs: readonly Buffer[]): Buffer => xs.reduce((a, b) => (Buffer.compare(b, a) < 0 ? b : a))

/**
 * An IKE_SA with keys. `role` is the role in the IKE_SA_INIT (or, after a rekey, in the
 * CREATE_CHILD_SA) that made it: it fixes the I flag and which keys send. `side` is this machine's
 * role in the first IKE_SA, the one `ChildSa` fields are named by; it survives IKE_SA rekeys.
 */
export class ProtectedSa {
  state: 'auth' | 'established' | 'rekeyed' | 'closing' | 'closed' = 'auth'
  /** The ID of our next request, and of the peer's next one. */
  myNext: number
  peerNext: number
  private pending: Pending | undefined
  private queue: Queued[] = []
  private lastResponse: {id: number; data: Buffer} | undefined
  /** The CHILD_SAs: the first one, further ones and rekeyed ones, until deleted. */
  readonly children: ChildSa[] = []
  private readonly childStates = new Map<ChildSa, ChildState>()
  readonly side: 'initiator' | 'responder'
  /** The IKE_SA that replaced this one (§2.8); the machines' `ikeSa` lookups follow it. */
  successor: ProtectedSa | undefined
  /** The negotiated IKE suite (for the rekey offer and the `ike-rekeyed` action). */
  suite: Suite = {encr: 0}
  /** Our IKE_SA rekey in flight, and the peer's one answered meanwhile (§2.8.2). */
  private ikeRekey: {ni: Buffer} | undefined
  private ikeCollision: {sa: ProtectedSa; nonces: Buffer[]} | undefined
  /** Replaced or redundant: its DELETE closes it without a `deleted` action. */
  private quiet = false
  /** Made by the peer's rekey that collided with ours, not yet known to survive: takes no CHILD_SA work. */
  private undecided = false
  private ikeRekeyAt = Infinity
  private ikeHardAt = Infinity
  private rekeyedAt = Infinity
  private lastInbound = 0
  private armed: number | undefined
  /** New CHILD_SAs we asked for and have no answer to yet (they count against `maxChildren`). */
  private creating = 0

  constructor(
    readonly role: 'initiator' | 'responder',
    readonly spiI: Buffer,
    readonly spiR: Buffer,
    readonly send: SkKeys,
    readonly recv: SkKeys,
    public peer: Endpoint,
    readonly counters: Counters,
    /** The PRF and SK_d, for CHILD_SA keys made on this SA (§2.17). */
    readonly prfId: number,
    readonly skD: Buffer,
    readonly deps: Deps,
    readonly opts: SaOptions,
    /** Set for an IKE_SA made by a rekey: message IDs start again at 0 (§2.18), `side` is inherited. */
    rekeyOf?: ProtectedSa,
  ) {
    this.side = rekeyOf?.side ?? role
    // IKE_SA_INIT used ID 0 and IKE_AUTH is 1: the initiator's next request is 1, the responder's first is 0.
    this.myNext = role === 'initiator' && !rekeyOf ? 1 : 0
    this.peerNext = role === 'initiator' || rekeyOf ? 0 : 1
  }

  /** This IKE_SA, or the one that replaced it (after rekeys, the newest). */
  get current(): ProtectedSa {
    let s: ProtectedSa = this
    while (s.successor) s = s.successor
    return s
  }

  get retransmit(): Retransmit {
    return this.opts.retransmit
  }

  /** Our SPI of this IKE_SA (the one the peer's messages name as ours). */
  get ourSpi(): Buffer {
    return this.role === 'initiator' ? this.spiI : this.spiR
  }

  private header(exchange: number, id: number, response: boolean): Omit<IkeMessage, 'payloads'> {
    const flags = (this.role === 'initiator' ? Flag.INITIATOR : 0) | (response ? Flag.RESPONSE : 0)
    return {spiI: this.spiI, spiR: this.spiR, exchange, flags, messageId: id}
  }

  /** Every message of ours is sealed here, and every one of the peer's opened in `open`: the one place `onPlain` watches. */
  private seal(h: Omit<IkeMessage, 'payloads'>, inner: Payload[]): Buffer {
    const data = sealSk(h, inner, this.send)
    this.opts.onPlain?.('out', data, inner)
    return data
  }

  private open(raw: Buffer): Payload[] {
    let inner: Payload[]
    try {
      inner = openSk(raw, this.recv).inner
    } catch (e) {
      this.opts.onPlain?.('in', raw, e instanceof CodecError && e.code === 'INTEGRITY' ? 'unverified' : 'malformed')
      throw e
    }
    this.opts.onPlain?.('in', raw, inner)
    return inner
  }

  /** Queues a request (window 1: it goes out when the one in flight is answered). */
  request(exchange: number, inner: Payload[], now: number, onResponse: Queued['onResponse'] = () => []): Action[] {
    this.queue.push({exchange, inner, onResponse})
    return this.pending ? [] : this.next(now)
  }

  private next(now: number): Action[] {
    const q = this.queue.shift()
    // An emptied array keeps the room it grew (17 slots); a fresh one has none. Per SA, for hours.
    if (!this.queue.length) this.queue = []
    if (!q) return []
    const id = this.myNext++
    const data = this.seal(this.header(q.exchange, id, false), q.inner)
    const at = now + this.retransmit.initialMs
    this.pending = {id, data, sent: 1, at, onResponse: q.onResponse}
    return [{type: 'send', to: this.peer, data}, {type: 'timer', at}]
  }

  /** The IKE_SA is up (IKE_AUTH done, or made by a rekey): its lifetimes and DPD start now. */
  up(now: number, suite: Suite): Action[] {
    this.state = 'established'
    this.suite = suite
    this.lastInbound = now
    this.ikeRekeyAt = now + this.opts.ike.softMs - this.jitter(this.opts.ike.jitterMs)
    this.ikeHardAt = now + this.opts.ike.hardMs
    return this.arm([])
  }

  /** A new CHILD_SA with the ESP policy it was chosen by (its rekeys use it); its lifetimes start now. */
  addChild(child: ChildSa, esp: readonly Policy[], now: number): Action[] {
    // Copies sized to fit: arrays grown by push keep room for 17 elements, per SA, for hours.
    child.tsI = child.tsI.slice()
    child.tsR = child.tsR.slice()
    this.children.push(child)
    const l = this.opts.child
    this.childStates.set(child, {esp, rekeyAt: now + l.softMs - this.jitter(l.jitterMs), hardAt: now + l.hardMs, state: 'installed'})
    return this.arm([])
  }

  private jitter(max: number): number {
    return max > 0 ? this.deps.random(4).readUInt32BE(0) % (max + 1) : 0
  }

  /** The ESP engine saw a packet from the peer: it is alive, no DPD needed yet. */
  sawTraffic(now: number): void {
    if (this.successor) return this.current.sawTraffic(now)
    this.lastInbound = Math.max(this.lastInbound, now)
  }

  /** Retransmits the request in flight when due; rekeys, deletes and checks liveness when their time comes. */
  tick(now: number): Action[] {
    const out: Action[] = []
    const p = this.pending
    if (p && now >= p.at) {
      if (p.sent >= this.retransmit.tries) {
        this.pending = undefined
        const quiet = this.quiet || this.state === 'rekeyed'
        this.state = 'closed'
        if (quiet) return []
        return [{type: 'failed', spiI: this.spiI, error: new TunkitError('TK_TIMEOUT', `the peer did not answer request ${p.id} after ${p.sent} tries`)}]
      }
      p.sent++
      this.counters.retransmits++
      p.at = now + this.retransmit.initialMs * 2 ** (p.sent - 1)
      out.push({type: 'send', to: this.peer, data: p.data}, {type: 'timer', at: p.at})
    }
    if (this.state === 'rekeyed' && !this.pending && now >= this.rekeyedAt + REKEYED_LINGER_MS) this.state = 'closed'
    if (this.state !== 'established' || this.successor) return out
    if (now >= this.ikeHardAt) return [...out, ...this.close(now)]
    if (now >= this.ikeRekeyAt) {
      // Once per due time, whether or not a rekey can start now (a timer in the past would spin).
      this.ikeRekeyAt = Infinity
      out.push(...this.rekeyIke(now))
    }
    for (const [c, st] of [...this.childStates]) {
      if (st.state !== 'deleting' && now >= st.hardAt) out.push(...this.deleteChild(c, now))
      else if (st.state === 'installed' && now >= st.rekeyAt) out.push(...this.rekeyChild(this.spis(c).ours, now))
    }
    if (this.opts.dpdMs > 0 && !this.pending && now >= this.lastInbound + this.opts.dpdMs) {
      this.lastInbound = now
      out.push(...this.dpd(now))
    }
    return this.arm(out)
  }

  /** When `tick` wants to run next: a retransmission, a rekey, a hard lifetime, a DPD. */
  get wakeAt(): number | undefined {
    let at = this.pending?.at ?? Infinity
    if (this.state === 'rekeyed' && !this.pending) at = Math.min(at, this.rekeyedAt + REKEYED_LINGER_MS)
    if (this.state === 'established' && !this.successor) {
      at = Math.min(at, this.ikeRekeyAt, this.ikeHardAt)
      if (this.opts.dpdMs > 0 && !this.pending) at = Math.min(at, this.lastInbound + this.opts.dpdMs)
      for (const st of this.childStates.values()) at = Math.min(at, st.state === 'deleting' ? Infinity : st.hardAt, st.state === 'installed' ? st.rekeyAt : Infinity)
    }
    return at === Infinity ? undefined : at
  }

  /** Adds a timer action when the next wake-up moved. */
  private arm(out: Action[]): Action[] {
    const at = this.wakeAt
    if (at === undefined || at === this.armed) return out
    this.armed = at
    return [...out, {type: 'timer', at}]
  }

  /**
   * A protected message for this SA (header already matched by SPI). Responses must answer the
   * request in flight; requests must carry the next ID (or repeat the last one: cached reply).
   */
  receive(raw: Buffer, now: number, handle: RequestHandler, from?: Endpoint): Action[] {
    const drop = (): Action[] => {
      this.counters.dropped++
      return []
    }
    if (this.state === 'closed' && !this.lastResponse) return drop()
    let m: IkeMessage
    let inner: Payload[]
    let answered: Pending | undefined
    try {
      m = decodeMessage(raw)
      // The peer's I flag must be the opposite of ours.
      if (((m.flags & Flag.INITIATOR) !== 0) === (this.role === 'initiator')) return drop()
      if (m.flags & Flag.RESPONSE) {
        if (!this.pending || m.messageId !== this.pending.id) return drop()
        inner = this.open(raw)
        answered = this.pending
      } else if (this.lastResponse && m.messageId === this.lastResponse.id) {
        // §2.1: a retransmitted request gets the same response; check it is genuine first.
        this.open(raw)
        this.counters.cachedReplies++
        return [{type: 'send', to: this.peer, data: this.lastResponse.data}]
      } else if (m.messageId !== this.peerNext || this.state === 'closed') return drop()
      else inner = this.open(raw)
    } catch (e) {
      if (isInputError(e)) return drop()
      throw e
    }
    this.lastInbound = Math.max(this.lastInbound, now)
    if (answered) {
      this.pending = undefined
      // The answer may queue (and so send) a request of its own; one in flight at a time (§2.3).
      const acted = answered.onResponse(inner, now)
      return this.arm([...acted, ...(this.state === 'closed' || this.pending ? [] : this.next(now))])
    }
    // §2.11: answer where a genuine request came from (the peer moves to port 4500 behind a NAT).
    const was = this.peer
    if (from) this.peer = from
    const answer = handle(m, inner, now)
    if (!answer) {
      this.peer = was
      return drop()
    }
    const {reply, actions} = answer
    const data = this.seal(this.header(m.exchange, m.messageId, true), reply)
    this.lastResponse = {id: m.messageId, data}
    this.peerNext++
    return this.arm([{type: 'send', to: this.peer, data}, ...actions])
  }

  /**
   * The INFORMATIONAL requests every established SA answers (§1.4, §1.5): empty (liveness),
   * DELETE of the IKE_SA or of the CHILD_SA. Anything else gets an empty answer.
   */
  informational(inner: Payload[], now: number): Answer {
    const reply: Payload[] = []
    const actions: Action[] = []
    for (const p of inner) {
      if (p.type !== P.D || 'unknown' in p) continue
      if (p.protocol === ProtocolId.IKE) {
        // The peer deletes the old IKE_SA when its colliding rekey survived (it had not seen ours): that one takes over.
        const moved = this.ikeCollision && !this.successor ? this.handOver(this.ikeCollision.sa, now) : []
        this.ikeCollision = undefined
        // An IKE_SA replaced by a rekey (or a redundant one) goes without its CHILD_SAs: they moved on.
        const quiet = this.quiet || this.state === 'rekeyed'
        this.state = 'closed'
        return {reply: [], actions: quiet ? moved : [{type: 'deleted', spiI: this.spiI, what: 'ike', by: 'peer', spis: []}]}
      }
      if (p.protocol !== ProtocolId.ESP) continue
      // The peer names its inbound SPIs; we answer with ours of the same pairs (§1.4.1).
      const gone = this.children.filter((c) => p.spis.some((s) => s.equals(this.spis(c).theirs)))
      if (!gone.length) continue
      reply.push({type: P.D, protocol: ProtocolId.ESP, spiSize: 4, spis: gone.map((c) => this.spis(c).ours)})
      for (const c of gone) actions.push(...this.forget(c, 'peer'))
    }
    if (inner.some((p) => p.type === P.N && !('unknown' in p) && p.notify === Notify.AUTHENTICATION_FAILED)) {
      this.state = 'closed'
      actions.push({type: 'failed', spiI: this.spiI, error: new TunkitError('TK_NOT_AUTHORIZED', 'the peer did not accept our authentication (AUTHENTICATION_FAILED)')})
    }
    return {reply, actions}
  }

  private forget(c: ChildSa, by: 'peer' | 'us'): Action[] {
    const i = this.children.indexOf(c)
    if (i < 0) return []
    this.children.splice(i, 1)
    this.childStates.delete(c)
    return [{type: 'deleted', spiI: this.spiI, what: 'child', by, spis: [this.spis(c).ours, this.spis(c).theirs]}]
  }

  /** Our inbound SPI of a CHILD_SA and the peer's. */
  spis(c: ChildSa): {ours: Buffer; theirs: Buffer} {
    return this.side === 'initiator' ? {ours: c.spiI, theirs: c.spiR} : {ours: c.spiR, theirs: c.spiI}
  }

  /** Our traffic selectors of a CHILD_SA and the peer's. */
  private selectors(c: ChildSa): {ours: TrafficSelector[]; theirs: TrafficSelector[]} {
    return this.side === 'initiator' ? {ours: c.tsI, theirs: c.tsR} : {ours: c.tsR, theirs: c.tsI}
  }

  /**
   * A CHILD_SA from the keys of an exchange (§2.17: KEYMAT's "initiator" is the exchange's), named
   * in `side` roles.
   */
  private makeChild(suite: Suite, ours: Buffer, theirs: Buffer, k: ChildKeys, weStarted: boolean, ts: {ours: TrafficSelector[]; theirs: TrafficSelector[]}): ChildSa {
    const out = weStarted ? {enc: k.encI, integ: k.integI} : {enc: k.encR, integ: k.integR}
    const inb = weStarted ? {enc: k.encR, integ: k.integR} : {enc: k.encI, integ: k.integI}
    return this.side === 'initiator'
      ? {suite, spiI: ours, spiR: theirs, keys: {encI: out.enc, integI: out.integ, encR: inb.enc, integR: inb.integ}, tsI: ts.ours, tsR: ts.theirs}
      : {suite, spiI: theirs, spiR: ours, keys: {encI: inb.enc, integI: inb.integ, encR: out.enc, integR: out.integ}, tsI: ts.theirs, tsR: ts.ours}
  }

  private get liveChildren(): number {
    let n = 0
    for (const st of this.childStates.values()) if (st.state === 'installed' || st.state === 'rekeying') n++
    return n
  }

  /**
   * CREATE_CHILD_SA from the peer (§1.3): an IKE_SA rekey (SA of protocol IKE, KE, no TS), a
   * CHILD_SA rekey (REKEY_SA naming one of ours, chosen by the ESP policy that CHILD_SA was made
   * with, with or without KE), or a new CHILD_SA (`select`, the responder's policies).
   */
  answerCreateChild(inner: Payload[], now: number): Answer {
    const refuse = (type: number, data?: Buffer, also: Action[] = []): Answer => ({reply: [notify(type, data)], actions: also})
    // §2.25: an IKE_SA being closed or replaced takes no new work.
    if (this.state !== 'established' || this.successor || this.quiet || this.undecided) return refuse(Notify.TEMPORARY_FAILURE)
    const rekey = payloadsOf(inner, P.N).find((n) => n.notify === Notify.REKEY_SA)
    const sa = payloadOf(inner, P.SA)
    const ni = payloadOf(inner, P.NONCE)
    const ke = payloadOf(inner, P.KE)
    const tsI = payloadOf(inner, P.TSi)
    const tsR = payloadOf(inner, P.TSr)
    if (!sa || !ni) return refuse(Notify.INVALID_SYNTAX)
    if (!rekey && !tsI && !tsR && sa.proposals.length && sa.proposals.every((p) => p.protocol === ProtocolId.IKE)) return this.answerIkeRekey(sa.proposals, ni.data, ke, now)
    if (!tsI || !tsR) return refuse(Notify.INVALID_SYNTAX)
    let old: ChildSa | undefined
    let choice: ChildSelection
    if (rekey) {
      if (rekey.protocol !== ProtocolId.ESP) return refuse(Notify.NO_ADDITIONAL_SAS)
      old = this.children.find((c) => this.spis(c).theirs.equals(rekey.spi))
      if (!old) return refuse(Notify.CHILD_SA_NOT_FOUND)
      const st = this.childStates.get(old)!
      if (st.state === 'rekeyed' || st.state === 'deleting') return refuse(Notify.TEMPORARY_FAILURE)
      if (this.children.length >= 2 * this.opts.maxChildren) return refuse(Notify.NO_ADDITIONAL_SAS)
      const c = choose(withPfs(st.esp, !!ke), sa.proposals)
      choice = c.ok ? {ok: true, esp: st.esp, proposal: c.proposal, suite: c.suite, tsI: tsI.selectors, tsR: tsR.selectors} : {ok: false, notify: Notify.NO_PROPOSAL_CHOSEN, why: 'no ESP proposal in common'}
    } else {
      if (!this.opts.select || this.liveChildren >= this.opts.maxChildren) return refuse(Notify.NO_ADDITIONAL_SAS)
      choice = this.opts.select(this, tsI.selectors, tsR.selectors, sa.proposals, !!ke)
    }
    if (!choice.ok) return refuse(choice.notify, undefined, old ? [] : [{type: 'child-failed', spiI: this.spiI, error: new TunkitError(choice.notify === Notify.NO_PROPOSAL_CHOSEN ? 'TK_UNSUPPORTED' : 'TK_DENIED', `CHILD_SA request: ${choice.why}`)}])
    if (choice.proposal.spi.length !== 4) return refuse(Notify.NO_PROPOSAL_CHOSEN)
    const group = choice.suite.dh
    if (ke && ke.group !== group) return refuse(Notify.INVALID_KE_PAYLOAD, Buffer.from([group! >> 8, group! & 255]))
    let secret: Buffer | undefined
    let kePayload: Payload[] = []
    if (ke) {
      const dh = this.deps.keyExchange(group!)
      try {
        secret = dh.computeSecret(ke.data)
      } catch (e) {
        if (isInputError(e)) return refuse(Notify.INVALID_SYNTAX)
        throw e
      }
      kePayload = [{type: P.KE, group: group!, data: dh.publicKey}]
    }
    const nr = this.deps.random(32)
    const mine = childSpi(this.deps)
    const k = deriveChildKeys(this.prfId, this.skD, choice.suite, ni.data, nr, secret)
    // The request's TSi are the peer's (it started the exchange), TSr ours.
    const child = this.makeChild(choice.suite, mine, choice.proposal.spi, k, false, {ours: choice.tsR, theirs: choice.tsI})
    // A CHILD_SA made with PFS is rekeyed with PFS.
    this.addChild(child, ke ? withPfs(choice.esp, true) : choice.esp, now)
    const reply: Payload[] = [{type: P.SA, proposals: [{...choice.proposal, spi: mine}]}, {type: P.NONCE, data: nr}, ...kePayload, {type: P.TSi, selectors: choice.tsI}, {type: P.TSr, selectors: choice.tsR}]
    if (!old) return {reply, actions: [{type: 'child-up', spiI: this.spiI, child}]}
    const st = this.childStates.get(old)!
    if (st.state === 'rekeying') st.collision = {nonces: [ni.data, nr], child}
    else st.state = 'rekeyed' // the peer started it: the peer deletes the old one
    return {reply, actions: [{type: 'rekeyed', spiI: this.spiI, old, child, by: 'peer'}]}
  }

  /** Asks for a new CHILD_SA with exactly `policy`'s proposals (PFS when they name DH groups); TS as we send them (TSi ours). */
  createChild(req: {policy: readonly Policy[]; tsI: TrafficSelector[]; tsR: TrafficSelector[]}, now: number): Action[] {
    if (this.successor) return this.current.createChild(req, now)
    if (this.state !== 'established') return []
    if (this.liveChildren + this.creating >= this.opts.maxChildren) return [{type: 'child-failed', spiI: this.spiI, error: new TunkitError('TK_RESOURCE_LIMIT', `no more than ${this.opts.maxChildren} CHILD_SAs on an IKE_SA`)}]
    this.creating++
    return this.arm(this.requestChild({esp: req.policy, tsI: req.tsI, tsR: req.tsR}, now))
  }

  /**
   * Rekeys the CHILD_SA with `spi` (ours or the peer's: the ESP engine's `seq-soft` names either)
   * by its own ESP policy; the old one is deleted once the new one is up (§2.8).
   */
  rekeyChild(spi: Buffer, now: number): Action[] {
    if (this.successor) return this.current.rekeyChild(spi, now)
    const c = this.children.find((x) => this.spis(x).ours.equals(spi) || this.spis(x).theirs.equals(spi))
    const st = c && this.childStates.get(c)
    if (!c || !st || st.state !== 'installed' || this.state !== 'established' || this.successor) return []
    st.state = 'rekeying'
    const ts = this.selectors(c)
    const group = c.suite.dh && st.esp.some((p) => p.dh.includes(c.suite.dh!)) ? c.suite.dh : undefined
    return this.arm(this.requestChild({esp: st.esp, tsI: ts.ours, tsR: ts.theirs, old: c, group}, now))
  }

  private requestChild(x: ChildRequest, now: number): Action[] {
    const spi = childSpi(this.deps)
    const ni = this.deps.random(32)
    const group = x.esp.some((p) => p.dh.length) ? (x.group ?? x.esp.find((p) => p.dh.length)!.dh[0]) : undefined
    const dh = group === undefined ? undefined : this.deps.keyExchange(group)
    const proposals = toProposals(x.esp, spi)
    const inner: Payload[] = [
      // REKEY_SA names the CHILD_SA by our inbound SPI, the one the peer sends with (§1.3.3).
      ...(x.old ? [notify(Notify.REKEY_SA, Buffer.alloc(0), ProtocolId.ESP, this.spis(x.old).ours)] : []),
      {type: P.SA, proposals},
      {type: P.NONCE, data: ni},
      ...(dh ? [{type: P.KE, group: dh.group, data: dh.publicKey} as Payload] : []),
      {type: P.TSi, selectors: x.tsI},
      {type: P.TSr, selectors: x.tsR},
    ]
    return this.request(Exchange.CREATE_CHILD_SA, inner, now, (reply, t) => this.onChildAnswer(x, {spi, ni, dh, proposals}, reply, t))
  }

  private onChildAnswer(x: ChildRequest, ctx: {spi: Buffer; ni: Buffer; dh: KeyExchange | undefined; proposals: Proposal[]}, reply: Payload[], now: number): Action[] {
    // The keys come from this IKE_SA (the exchange ran on it); the CHILD_SAs may have moved on to a successor.
    const cur = this.current
    if (!x.old) cur.creating = Math.max(0, cur.creating - 1)
    const st = x.old && cur.childStates.get(x.old)
    const failed = (error: TunkitError): Action[] => {
      if (!x.old) return [{type: 'child-failed', spiI: cur.spiI, error}]
      // A rekey that failed: the old CHILD_SA stays, and is tried again later, unless the peer's
      // colliding rekey replaced it (then the peer deletes it).
      if (st && st.state === 'rekeying') {
        if (st.collision) st.state = 'rekeyed'
        else {
          st.state = 'installed'
          st.rekeyAt = now + RETRY_MS + this.jitter(RETRY_JITTER_MS)
        }
      }
      return []
    }
    const errors = errorNotifies(reply)
    if (errors.length) {
      const n = errors[0]
      const ke = payloadsOf(reply, P.N).find((p) => p.notify === Notify.INVALID_KE_PAYLOAD)
      const group = ke?.data.length === 2 ? ke.data.readUInt16BE(0) : undefined
      // §1.3: INVALID_KE_PAYLOAD names the group the peer wants; try once more with it if we offered it.
      if (group !== undefined && ctx.dh && !x.retried && x.esp.some((p) => p.dh.includes(group))) {
        if (!x.old) cur.creating++
        return cur.requestChild({...x, group, retried: true}, now)
      }
      if (x.old && n === Notify.CHILD_SA_NOT_FOUND) return cur.forget(x.old, 'peer')
      return failed(refusal('the CHILD_SA', n))
    }
    const sa = payloadOf(reply, P.SA)
    const nr = payloadOf(reply, P.NONCE)
    const ke = payloadOf(reply, P.KE)
    const tsI = payloadOf(reply, P.TSi)
    const tsR = payloadOf(reply, P.TSr)
    let suite: Suite
    let secret: Buffer | undefined
    try {
      if (!sa || !nr || !tsI || !tsR) throw new TunkitError('TK_PROTOCOL_ERROR', 'the CREATE_CHILD_SA answer has no SA, Nr, TSi or TSr')
      suite = acceptAnswer(ctx.proposals, sa.proposals)
      if (sa.proposals[0].protocol !== ProtocolId.ESP || sa.proposals[0].spi.length !== 4) throw new TunkitError('TK_PROTOCOL_ERROR', 'the CHILD_SA answer is not ESP with a 4-byte SPI')
      if (ctx.dh) {
        if (!ke || ke.group !== ctx.dh.group || suite.dh !== ctx.dh.group) throw new TunkitError('TK_PROTOCOL_ERROR', 'the CHILD_SA answer has no KE of our group')
        secret = ctx.dh.computeSecret(ke.data)
      }
    } catch (e) {
      if (isInputError(e)) return failed(e instanceof TunkitError ? e : new TunkitError('TK_PROTOCOL_ERROR', `the CHILD_SA answer is broken: ${(e as Error).message}`))
      throw e
    }
    const k = deriveChildKeys(this.prfId, this.skD, suite, ctx.ni, nr.data, secret)
    const child = this.makeChild(suite, ctx.spi, sa.proposals[0].spi, k, true, {ours: tsI.selectors, theirs: tsR.selectors})
    const out = cur.addChild(child, x.esp, now)
    if (!x.old) return [...out, {type: 'child-up', spiI: cur.spiI, child}]
    out.push({type: 'rekeyed', spiI: cur.spiI, old: x.old, child, by: 'us'})
    if (!st || !cur.children.includes(x.old)) return out
    const collision = st.collision
    st.collision = undefined
    // §2.8.1: of two simultaneous rekeys, the one with the lowest of the four nonces is redundant
    // and its initiator deletes it; the initiator of the survivor deletes the old CHILD_SA.
    const low = collision && lowest([ctx.ni, nr.data, ...collision.nonces])
    if (low === ctx.ni || low === nr.data) {
      st.state = 'rekeyed'
      return [...out, ...cur.deleteChild(child, now)]
    }
    return [...out, ...cur.deleteChild(x.old, now)]
  }

  /** Deletes a CHILD_SA (§1.4.1): D with our inbound SPI; gone when answered. */
  deleteChild(c: ChildSa, now: number): Action[] {
    const st = this.childStates.get(c)
    if (!st || st.state === 'deleting') return []
    st.state = 'deleting'
    return this.arm(this.request(Exchange.INFORMATIONAL, [{type: P.D, protocol: ProtocolId.ESP, spiSize: 4, spis: [this.spis(c).ours]}], now, () => this.current.forget(c, 'us')))
  }

  // ---- IKE_SA rekey (§1.3.2, §2.18) ----

  /** The IKE_SA that replaces this one, from the rekey exchange's nonces, SPIs and DH secret. */
  private successorSa(role: 'initiator' | 'responder', spiI: Buffer, spiR: Buffer, suite: Suite, ni: Buffer, nr: Buffer, secret: Buffer): ProtectedSa {
    // §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the old PRF.
    const keys = deriveIkeKeys(suite, rekeySkeyseed(this.prfId, this.skD, secret, ni, nr), ni, nr, spiI, spiR)
    const sk = skKeys(suite, keys)
    const [send, recv] = role === 'initiator' ? [sk.initiator, sk.responder] : [sk.responder, sk.initiator]
    const next = new ProtectedSa(role, spiI, spiR, send, recv, this.peer, this.counters, suite.prf!, keys.skD, this.deps, this.opts, this)
    next.suite = suite
    next.state = 'established'
    return next
  }

  /** `next` replaces this IKE_SA: the CHILD_SAs move over, the owner routes to it, the I/O re-indexes. */
  private handOver(next: ProtectedSa, now: number): Action[] {
    for (const c of this.children) next.children.push(c)
    for (const [c, st] of this.childStates) next.childStates.set(c, st)
    this.children.length = 0
    this.childStates.clear()
    // Requests not yet sent go on the new IKE_SA (their answers act on `current`).
    next.queue.push(...this.queue.splice(0))
    next.creating += this.creating
    this.creating = 0
    next.undecided = false
    this.successor = next
    this.state = 'rekeyed'
    this.rekeyedAt = now
    this.opts.adopt(this, next)
    return [{type: 'ike-rekeyed', oldSpiI: this.spiI, sa: {spiI: next.spiI, spiR: next.spiR, ike: next.suite, role: next.role}}, ...next.up(now, next.suite), ...(next.pending ? [] : next.next(now))]
  }

  /** Deletes an IKE_SA whose CHILD_SAs live on elsewhere (replaced, or redundant): no `deleted` action. */
  private retire(now: number): Action[] {
    this.quiet = true
    this.rekeyedAt = Math.min(this.rekeyedAt, now)
    return this.request(Exchange.INFORMATIONAL, [{type: P.D, protocol: ProtocolId.IKE, spiSize: 0, spis: []}], now, () => {
      this.state = 'closed'
      return []
    })
  }

  private answerIkeRekey(offered: Proposal[], ni: Buffer, ke: PayloadOf<typeof P.KE> | undefined, now: number): Answer {
    const refuse = (type: number, data?: Buffer): Answer => ({reply: [notify(type, data)], actions: []})
    if (!ke) return refuse(Notify.INVALID_SYNTAX)
    const choice = choose(this.opts.ikePolicies, offered)
    if (!choice.ok || choice.proposal.spi.length !== 8) return refuse(Notify.NO_PROPOSAL_CHOSEN)
    const group = choice.suite.dh!
    if (ke.group !== group) return refuse(Notify.INVALID_KE_PAYLOAD, Buffer.from([group >> 8, group & 255]))
    const dh = this.deps.keyExchange(group)
    let secret: Buffer
    try {
      secret = dh.computeSecret(ke.data)
    } catch (e) {
      if (isInputError(e)) return refuse(Notify.INVALID_SYNTAX)
      throw e
    }
    const nr = this.deps.random(32)
    const spi = this.deps.random(8)
    // The peer started the rekey, so it is the new IKE_SA's initiator (§2.18).
    const next = this.successorSa('responder', choice.proposal.spi, spi, choice.suite, ni, nr, secret)
    const reply: Payload[] = [{type: P.SA, proposals: [{...choice.proposal, spi}]}, {type: P.NONCE, data: nr}, {type: P.KE, group, data: dh.publicKey}]
    if (this.ikeRekey) {
      // §2.8.2: ours is in flight too; which one survives is decided when its answer comes.
      this.ikeCollision = {sa: next, nonces: [ni, nr]}
      next.undecided = true
      this.opts.adopt(this, next)
      return {reply, actions: []}
    }
    // The peer started it: the peer deletes this IKE_SA.
    return {reply, actions: this.handOver(next, now)}
  }

  /** Rekeys the IKE_SA (§1.3.2): CREATE_CHILD_SA [SA(IKE, new SPIi), Ni, KE]; the CHILD_SAs move to the new one. */
  rekeyIke(now: number, group?: number): Action[] {
    if (this.state !== 'established' || this.successor || this.ikeRekey || !this.opts.ikePolicies.length) return []
    const spi = this.deps.random(8)
    const ni = this.deps.random(32)
    const groups = [...new Set(this.opts.ikePolicies.flatMap((p) => p.dh))]
    const dh = this.deps.keyExchange(group ?? (this.suite.dh !== undefined && groups.includes(this.suite.dh) ? this.suite.dh : groups[0]))
    const proposals = toProposals(this.opts.ikePolicies, spi)
    this.ikeRekey = {ni}
    const inner: Payload[] = [{type: P.SA, proposals}, {type: P.NONCE, data: ni}, {type: P.KE, group: dh.group, data: dh.publicKey}]
    return this.arm(this.request(Exchange.CREATE_CHILD_SA, inner, now, (reply, t) => this.onIkeRekeyAnswer({spi, ni, dh, proposals, retried: group !== undefined}, reply, t)))
  }

  private onIkeRekeyAnswer(x: {spi: Buffer; ni: Buffer; dh: KeyExchange; proposals: Proposal[]; retried: boolean}, reply: Payload[], now: number): Action[] {
    this.ikeRekey = undefined
    const collision = this.ikeCollision
    this.ikeCollision = undefined
    const again = (): Action[] => {
      // Ours failed; a colliding rekey of the peer's that we answered is then the one (the peer deletes us).
      if (collision) return this.handOver(collision.sa, now)
      this.ikeRekeyAt = now + RETRY_MS + this.jitter(RETRY_JITTER_MS)
      return []
    }
    if (this.state !== 'established' || this.successor) return []
    const errors = errorNotifies(reply)
    if (errors.length) {
      const n = payloadsOf(reply, P.N).find((p) => p.notify === Notify.INVALID_KE_PAYLOAD)
      const group = n?.data.length === 2 ? n.data.readUInt16BE(0) : undefined
      if (group !== undefined && !x.retried && !collision && this.opts.ikePolicies.some((p) => p.dh.includes(group))) return this.rekeyIke(now, group)
      return again()
    }
    const sa = payloadOf(reply, P.SA)
    const nr = payloadOf(reply, P.NONCE)
    const ke = payloadOf(reply, P.KE)
    let next: ProtectedSa
    try {
      if (!sa || !nr || !ke || ke.group !== x.dh.group) return again()
      const suite = acceptAnswer(x.proposals, sa.proposals)
      if (sa.proposals[0].protocol !== ProtocolId.IKE || sa.proposals[0].spi.length !== 8 || suite.dh !== x.dh.group) return again()
      next = this.successorSa('initiator', x.spi, sa.proposals[0].spi, suite, x.ni, nr.data, x.dh.computeSecret(ke.data))
    } catch (e) {
      if (isInputError(e)) return again()
      throw e
    }
    if (collision) {
      const low = lowest([x.ni, nr.data, ...collision.nonces])
      if (low === x.ni || low === nr.data) {
        // Ours is redundant: we delete it; the peer, whose IKE_SA survives, deletes this one.
        this.opts.adopt(this, next)
        return [...this.handOver(collision.sa, now), ...next.retire(now)]
      }
      collision.sa.quiet = true // the peer deletes its redundant one
    }
    return [...this.handOver(next, now), ...this.retire(now)]
  }

  /** A liveness check (DPD, §1.4): an empty INFORMATIONAL; no answer after the retries fails the SA. */
  dpd(now: number): Action[] {
    if (this.successor) return this.current.dpd(now)
    if (this.state !== 'established') return []
    return this.request(Exchange.INFORMATIONAL, [], now)
  }

  /** Deletes the IKE_SA (and with it its CHILD_SAs): DELETE, then closed when answered. */
  close(now: number): Action[] {
    if (this.successor) return this.current.close(now)
    if (this.state !== 'established') return []
    this.state = 'closing'
    return this.request(Exchange.INFORMATIONAL, [{type: P.D, protocol: ProtocolId.IKE, spiSize: 0, spis: []}], now, () => {
      this.state = 'closed'
      return [{type: 'deleted', spiI: this.spiI, what: 'ike', by: 'us', spis: []}]
    })
  }
}

/** One line per refusal, for the user (the message of the failed action). */
const REFUSALS: Readonly<Record<number, [ErrorCode, string]>> = {
  [Notify.NO_PROPOSAL_CHOSEN]: ['TK_UNSUPPORTED', 'no proposal in common'],
  [Notify.AUTHENTICATION_FAILED]: ['TK_NOT_AUTHORIZED', 'authentication failed (wrong PSK, certificate or identity)'],
  [Notify.TS_UNACCEPTABLE]: ['TK_DENIED', 'traffic selectors unacceptable'],
  [Notify.INTERNAL_ADDRESS_FAILURE]: ['TK_RESOURCE_LIMIT', 'no internal address to lease'],
  [Notify.FAILED_CP_REQUIRED]: ['TK_UNSUPPORTED', 'the gateway requires a configuration request'],
  [Notify.NO_ADDITIONAL_SAS]: ['TK_RESOURCE_LIMIT', 'no more CHILD_SAs on this IKE_SA'],
  [Notify.TEMPORARY_FAILURE]: ['TK_UNAVAILABLE', 'busy, try again'],
}

export function refusal(what: string, n: number): TunkitError {
  const [code, why] = REFUSALS[n] ?? ['TK_PROTOCOL_ERROR', 'refused']
  return new TunkitError(code, `the gateway refused ${what}: ${why} (${NOTIFY_NAMES[n] ?? n})`)
}
