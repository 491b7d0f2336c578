import {createHash, randomBytes} from 'node:crypto'
import {CodecError, TunkitError} from '../../lib/errors.js'
import {ipv4Bytes, ipv6Bytes, isIPv4} from '../../lib/net/ip.js'
import {Exchange, Flag, HashAlg, Notify, PayloadType as P, ProtocolId} from '../codec/constants.js'
import {decodeMessage, type IkeMessage} from '../codec/message.js'
import {payloadOf, payloadsOf, type Payload} from '../codec/payload.js'
import type {TrafficSelector} from '../codec/ts.js'
import {createKeyExchange, deriveChildKeys, openSk, sealSk, type ChildKeys, type KeyExchange, type SkKeys, type Suite} from './crypto.js'
import {choose, DH_PREFERENCE, type Policy} from './proposals.js'

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
}

export const DEFAULT_DEPS: Deps = {random: randomBytes, keyExchange: createKeyExchange}

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
  /** §2.23: a NAT on the way; ESP then goes in UDP to port 4500 (RFC 3948). */
  nat: {local: boolean; remote: boolean}
  /** Where the peer is (after NAT detection the initiator moves to port 4500). */
  peer: Endpoint
}

export type Action =
  | {type: 'send'; to: Endpoint; data: Buffer}
  /** Call `tick(at)` at or after `at` (ms, the caller's clock). */
  | {type: 'timer'; at: number}
  | {type: 'established'; sa: Established}
  /** The IKE_SA failed; `error.message` is the one line for the user or the log. */
  | {type: 'failed'; spiI: Buffer; error: TunkitError}
  | {type: 'deleted'; spiI: Buffer; what: 'ike' | 'child'; by: 'peer' | 'us'; spis: Buffer[]}
  /** The peer rekeyed `old` (§2.8): `child` is new; `old` stays until its DELETE arrives. */
  | {type: 'rekeyed'; spiI: Buffer; old: ChildSa; child: ChildSa}

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

/** Answers one genuine request of the peer; undefined drops it (not expected in this state). */
export type RequestHandler = (m: IkeMessage, inner: Payload[], now: number) => {reply: Payload[]; actions: Action[]} | undefined

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

/**
 * An IKE_SA with keys. `role` is the role in IKE_SA_INIT (it fixes the I flag and which keys
 * send); either side may start requests afterwards.
 */
export class ProtectedSa {
  state: 'auth' | 'established' | 'closing' | 'closed' = 'auth'
  /** The ID of our next request, and of the peer's next one. */
  myNext: number
  peerNext: number
  private pending: Pending | undefined
  private readonly queue: Queued[] = []
  private lastResponse: {id: number; data: Buffer} | undefined
  /** The CHILD_SAs, the first one and rekeyed ones, until deleted. */
  readonly children: ChildSa[] = []

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
    readonly retransmit: Retransmit = RETRANSMIT,
  ) {
    // IKE_SA_INIT used ID 0 and IKE_AUTH is 1: the initiator's next request is 1, the responder's first is 0.
    this.myNext = role === 'initiator' ? 1 : 0
    this.peerNext = role === 'initiator' ? 0 : 1
  }

  private header(exchange: number, id: number, response: boolean): Omit<IkeMessage, 'payloads'> {
    const flags = (this.role === 'initiator' ? Flag.INITIATOR : 0) | (response ? Flag.RESPONSE : 0)
    return {spiI: this.spiI, spiR: this.spiR, exchange, flags, messageId: id}
  }

  /** Queues a request (window 1: it goes out when the one in flight is answered). */
  request(exchange: number, inner: Payload[], now: number, onResponse: Queued['onResponse'] = () => []): Action[] {
    this.queue.push({exchange, inner, onResponse})
    return this.pending ? [] : this.next(now)
  }

  private next(now: number): Action[] {
    const q = this.queue.shift()
    if (!q) return []
    const id = this.myNext++
    const data = sealSk(this.header(q.exchange, id, false), q.inner, this.send)
    const at = now + this.retransmit.initialMs
    this.pending = {id, data, sent: 1, at, onResponse: q.onResponse}
    return [{type: 'send', to: this.peer, data}, {type: 'timer', at}]
  }

  /** Retransmits the request in flight when due; after the last try, the SA has failed. */
  tick(now: number): Action[] {
    const p = this.pending
    if (!p || now < p.at) return []
    if (p.sent >= this.retransmit.tries) {
      this.pending = undefined
      this.state = 'closed'
      return [{type: 'failed', spiI: this.spiI, error: new TunkitError('TK_TIMEOUT', `the peer did not answer request ${p.id} after ${p.sent} tries`)}]
    }
    p.sent++
    this.counters.retransmits++
    p.at = now + this.retransmit.initialMs * 2 ** (p.sent - 1)
    return [{type: 'send', to: this.peer, data: p.data}, {type: 'timer', at: p.at}]
  }

  /** When `tick` wants to run next, if anything is in flight. */
  get wakeAt(): number | undefined {
    return this.pending?.at
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
        inner = openSk(raw, this.recv).inner
        answered = this.pending
      } else if (this.lastResponse && m.messageId === this.lastResponse.id) {
        // §2.1: a retransmitted request gets the same response; check it is genuine first.
        openSk(raw, this.recv)
        this.counters.cachedReplies++
        return [{type: 'send', to: this.peer, data: this.lastResponse.data}]
      } else if (m.messageId !== this.peerNext || this.state === 'closed') return drop()
      else inner = openSk(raw, this.recv).inner
    } catch (e) {
      if (isInputError(e)) return drop()
      throw e
    }
    if (answered) {
      this.pending = undefined
      return [...answered.onResponse(inner, now), ...(this.state === 'closed' ? [] : this.next(now))]
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
    const data = sealSk(this.header(m.exchange, m.messageId, true), reply, this.send)
    this.lastResponse = {id: m.messageId, data}
    this.peerNext++
    return [{type: 'send', to: this.peer, data}, ...actions]
  }

  /**
   * The INFORMATIONAL requests every established SA answers (§1.4, §1.5): empty (liveness),
   * DELETE of the IKE_SA or of the CHILD_SA. Anything else gets an empty answer.
   */
  informational(inner: Payload[]): {reply: Payload[]; actions: Action[]} {
    const reply: Payload[] = []
    const actions: Action[] = []
    for (const p of inner) {
      if (p.type !== P.D || 'unknown' in p) continue
      if (p.protocol === ProtocolId.IKE) {
        this.state = 'closed'
        return {reply: [], actions: [{type: 'deleted', spiI: this.spiI, what: 'ike', by: 'peer', spis: []}]}
      }
      if (p.protocol !== ProtocolId.ESP) continue
      // The peer names its inbound SPIs; we answer with ours of the same pairs (§1.4.1).
      const gone = this.children.filter((c) => p.spis.some((s) => s.equals(this.spis(c).theirs)))
      if (!gone.length) continue
      reply.push({type: P.D, protocol: ProtocolId.ESP, spiSize: 4, spis: gone.map((c) => this.spis(c).ours)})
      for (const c of gone) {
        this.children.splice(this.children.indexOf(c), 1)
        actions.push({type: 'deleted', spiI: this.spiI, what: 'child', by: 'peer', spis: [this.spis(c).ours, this.spis(c).theirs]})
      }
    }
    if (inner.some((p) => p.type === P.N && !('unknown' in p) && p.notify === Notify.AUTHENTICATION_FAILED)) {
      this.state = 'closed'
      actions.push({type: 'failed', spiI: this.spiI, error: new TunkitError('TK_NOT_AUTHORIZED', 'the peer did not accept our authentication (AUTHENTICATION_FAILED)')})
    }
    return {reply, actions}
  }

  /** Our inbound SPI of a CHILD_SA and the peer's. */
  spis(c: ChildSa): {ours: Buffer; theirs: Buffer} {
    return this.role === 'initiator' ? {ours: c.spiI, theirs: c.spiR} : {ours: c.spiR, theirs: c.spiI}
  }

  /**
   * CREATE_CHILD_SA from the peer (§1.3.3, §2.8): a CHILD_SA rekey, with or without KE, chosen by
   * `esp`. New CHILD_SAs and IKE_SA rekeys are refused with NO_ADDITIONAL_SAS for now (§1.3).
   */
  answerCreateChild(inner: Payload[], esp: readonly Policy[]): {reply: Payload[]; actions: Action[]} {
    const refuse = (type: number, data?: Buffer): {reply: Payload[]; actions: Action[]} => ({reply: [notify(type, data)], actions: []})
    const rekey = payloadsOf(inner, P.N).find((n) => n.notify === Notify.REKEY_SA)
    if (!rekey || rekey.protocol !== ProtocolId.ESP) return refuse(Notify.NO_ADDITIONAL_SAS)
    const old = this.children.find((c) => this.spis(c).theirs.equals(rekey.spi))
    if (!old) return refuse(Notify.CHILD_SA_NOT_FOUND)
    const sa = payloadOf(inner, P.SA)
    const ni = payloadOf(inner, P.NONCE)
    const ke = payloadOf(inner, P.KE)
    const tsI = payloadOf(inner, P.TSi)
    const tsR = payloadOf(inner, P.TSr)
    if (!sa || !ni || !tsI || !tsR) return refuse(Notify.INVALID_SYNTAX)
    const choice = choose(esp.map((p) => ({...p, dh: ke ? [...DH_PREFERENCE] : []})), sa.proposals)
    if (!choice.ok || choice.proposal.spi.length !== 4) return refuse(Notify.NO_PROPOSAL_CHOSEN)
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
    const mine = this.deps.random(4)
    // KEYMAT's "initiator" is the exchange's (§2.17): the peer. ChildSa speaks in IKE roles.
    const k = deriveChildKeys(this.prfId, this.skD, choice.suite, ni.data, nr, secret)
    const child: ChildSa = this.role === 'responder'
      ? {suite: choice.suite, spiI: choice.proposal.spi, spiR: mine, keys: k, tsI: tsI.selectors, tsR: tsR.selectors}
      : {suite: choice.suite, spiI: mine, spiR: choice.proposal.spi, keys: {encI: k.encR, integI: k.integR, encR: k.encI, integR: k.integI}, tsI: tsR.selectors, tsR: tsI.selectors}
    this.children.push(child)
    return {
      reply: [{type: P.SA, proposals: [{...choice.proposal, spi: mine}]}, {type: P.NONCE, data: nr}, ...kePayload, {type: P.TSi, selectors: tsI.selectors}, {type: P.TSr, selectors: tsR.selectors}],
      actions: [{type: 'rekeyed', spiI: this.spiI, old, child}],
    }
  }

  /** A liveness check (DPD, §1.4): an empty INFORMATIONAL; no answer after the retries fails the SA. */
  dpd(now: number): Action[] {
    if (this.state !== 'established') return []
    return this.request(Exchange.INFORMATIONAL, [], now)
  }

  /** Deletes the IKE_SA (and with it its CHILD_SA): DELETE, then closed when answered. */
  close(now: number): Action[] {
    if (this.state !== 'established') return []
    this.state = 'closing'
    return this.request(Exchange.INFORMATIONAL, [{type: P.D, protocol: ProtocolId.IKE, spiSize: 0, spis: []}], now, () => {
      this.state = 'closed'
      return [{type: 'deleted', spiI: this.spiI, what: 'ike', by: 'us', spis: []}]
    })
  }
}
