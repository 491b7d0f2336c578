import type {X509Certificate} from 'node:crypto'
import {TunkitError} from '../../lib/errors.js'
import {formatIPv4} from '../../lib/net/ip.js'
import {CfgAttr, CfgType, Exchange, Flag, Notify, PayloadType as P, ProtocolId, TransformType} from '../codec/constants.js'
import {cpAddress, decodeCpPolicy, TUNKIT_POLICY, type CfgAttribute} from '../codec/cp.js'
import {idToString, type IdBody} from '../codec/id.js'
import {encodeMessage, type IkeMessage} from '../codec/message.js'
import {payloadOf, payloadsOf, type Payload} from '../codec/payload.js'
import type {Proposal} from '../codec/sa.js'
import {tsFromCidr, type TrafficSelector} from '../codec/ts.js'
import {certreq, defaultId, ourAuth, peerHashes, verifyPeer, type Credentials} from './auth.js'
import {deriveChildKeys, deriveIkeKeys, signedOctets, skeyseed, skKeys, type KeyExchange, type Suite} from './crypto.js'
import {CHILD_LIFETIME, childSpi, DEFAULT_DEPS, errorNotifies, refusal, IKE_LIFETIME, isInputError, tryDecode, MAX_CHILDREN, natDetected, natHash, notify, ProtectedSa, RETRANSMIT, SIGNATURE_HASHES, type Action, type Lifetime, type Counters, type Deps, type Endpoint, type Established, type RequestHandler, type Retransmit, type SkObserver} from './exchange.js'
import {acceptAnswer, espOffer, espPolicies, IKE_POLICIES, ikeOffer, policyFromTransforms, type Policy} from './proposals.js'

/**
 * The IKEv2 initiator (RFC 7296 §1.2): IKE_SA_INIT with the full offer, then IKE_AUTH with PSK,
 * a CP request for an address and DNS and the first CHILD_SA. Sans-I/O: `start`, `receive` and
 * `tick` return actions; the caller owns the socket and the clock.
 */

export interface InitiatorConfig {
  /** Our address and port as we send from them, and the gateway's as we send to it (NAT detection). */
  local: Endpoint
  gateway: Endpoint
  /** Our identity; by default the certificate's (first DNS name, else subject) or our address. */
  id?: IdBody
  /** The identity we require of the gateway; without it, whatever the PSK or certificate proves. */
  remoteId?: IdBody
  /** How we authenticate (auth.ts). */
  auth: Credentials
  /** CAs the gateway's certificate must chain to (named in our CERTREQ). */
  ca?: X509Certificate[]
  /** Announce RFC 7383 fragmentation. */
  fragmentation?: boolean
  /** What we ask to protect; default everything (0.0.0.0/0 both ways), the gateway narrows it. */
  tsI?: TrafficSelector[]
  tsR?: TrafficSelector[]
  retransmit?: Retransmit
  /** CHILD_SA and IKE_SA lifetimes (default CHILD_LIFETIME, IKE_LIFETIME), DPD after idle (default none), CHILD_SAs at most. */
  lifetimes?: {child?: Lifetime; ike?: Lifetime}
  dpdMs?: number
  maxChildren?: number
  /** Send INITIAL_CONTACT (default true): the gateway then replaces our identity's older IKE_SAs. */
  initialContact?: boolean
  /** Sees the inner payloads of every protected message (`--trace`). */
  onPlain?: SkObserver
}

/** How often the gateway may send us back for a cookie or another group before we give up. */
const MAX_BOUNCES = 3

export class IkeInitiator {
  readonly counters: Counters = {dropped: 0, retransmits: 0, cachedReplies: 0}
  private phase: 'idle' | 'init' | 'sa' | 'failed' = 'idle'
  private readonly deps: Deps
  private readonly rt: Retransmit
  private readonly spiI: Buffer
  private readonly ni: Buffer
  private readonly offer: Proposal[] = ikeOffer()
  private ke: KeyExchange
  private cookie: Buffer | undefined
  private bounces = 0
  /** Our IKE_SA_INIT as last sent (RealMessage1 of the AUTH) and its retransmission state. */
  private init: {data: Buffer; sent: number; at: number} = {data: Buffer.alloc(0), sent: 0, at: 0}
  private sa: ProtectedSa | undefined
  /** Every IKE_SA of ours: the first, and those made by rekeys (an old one until its DELETE is done). */
  private readonly sas: ProtectedSa[] = []

  constructor(readonly config: InitiatorConfig, deps: Partial<Deps> = {}) {
    this.deps = {...DEFAULT_DEPS, ...deps}
    this.rt = config.retransmit ?? RETRANSMIT
    this.spiI = this.deps.random(8)
    this.ni = this.deps.random(32)
    this.ke = this.deps.keyExchange(suiteGroups(this.offer)[0])
  }

  /** The current IKE_SA (after rekeys, the newest), for DPD, DELETE, rekeys; undefined before IKE_AUTH is answered. */
  get ikeSa(): ProtectedSa | undefined {
    let s = this.sa
    while (s?.successor) s = s.successor
    return s
  }

  start(now: number): Action[] {
    if (this.phase !== 'idle') return []
    this.phase = 'init'
    return this.sendInit(now)
  }

  private sendInit(now: number): Action[] {
    const zero = Buffer.alloc(8)
    const payloads: Payload[] = [
      ...(this.cookie ? [notify(Notify.COOKIE, this.cookie)] : []), // §2.6: the cookie comes first
      {type: P.SA, proposals: this.offer},
      {type: P.KE, group: this.ke.group, data: this.ke.publicKey},
      {type: P.NONCE, data: this.ni},
      notify(Notify.NAT_DETECTION_SOURCE_IP, natHash(this.spiI, zero, this.config.local)),
      notify(Notify.NAT_DETECTION_DESTINATION_IP, natHash(this.spiI, zero, this.config.gateway)),
      ...(this.config.fragmentation ? [notify(Notify.IKEV2_FRAGMENTATION_SUPPORTED)] : []),
      notify(Notify.SIGNATURE_HASH_ALGORITHMS, SIGNATURE_HASHES),
    ]
    const data = encodeMessage({spiI: this.spiI, spiR: zero, exchange: Exchange.IKE_SA_INIT, flags: Flag.INITIATOR, messageId: 0, payloads})
    this.init = {data, sent: 1, at: now + this.rt.initialMs}
    return [{type: 'send', to: this.config.gateway, data}, {type: 'timer', at: this.init.at}]
  }

  private fail(error: TunkitError, also: Action[] = []): Action[] {
    this.phase = 'failed'
    return [...also, {type: 'failed', spiI: this.spiI, error}]
  }

  tick(now: number): Action[] {
    if (this.phase === 'sa') {
      const out = this.sas.flatMap((s) => s.tick(now))
      // Replaced IKE_SAs are forgotten once closed (their last answer went out long ago).
      for (let i = this.sas.length - 1; i >= 0; i--) if (this.sas[i].state === 'closed' && this.sas[i] !== this.ikeSa && this.sas[i].wakeAt === undefined) this.sas.splice(i, 1)
      return out
    }
    if (this.phase !== 'init' || now < this.init.at) return []
    if (this.init.sent >= this.rt.tries) return this.fail(new TunkitError('TK_TIMEOUT', `the gateway ${this.config.gateway.address} did not answer IKE_SA_INIT (${this.init.sent} tries)`))
    this.init.sent++
    this.counters.retransmits++
    this.init.at = now + this.rt.initialMs * 2 ** (this.init.sent - 1)
    return [{type: 'send', to: this.config.gateway, data: this.init.data}, {type: 'timer', at: this.init.at}]
  }

  receive(raw: Buffer, now: number): Action[] {
    if (this.phase === 'sa') {
      const sa = raw.length < 16 ? undefined : this.sas.find((s) => raw.subarray(0, 8).equals(s.spiI) && raw.subarray(8, 16).equals(s.spiR))
      if (!sa) return this.drop()
      return sa.receive(raw, now, (m, inner, t) => this.onRequest(sa, m, inner, t))
    }
    if (this.phase !== 'init') return this.drop()
    const m = tryDecode(raw)
    if (!m) return this.drop()
    if (m.exchange !== Exchange.IKE_SA_INIT || !(m.flags & Flag.RESPONSE) || m.flags & Flag.INITIATOR || m.messageId !== 0 || !m.spiI.equals(this.spiI)) return this.drop()
    return this.onInitResponse(m, raw, now)
  }

  private drop(): Action[] {
    this.counters.dropped++
    return []
  }

  private onInitResponse(m: IkeMessage, raw: Buffer, now: number): Action[] {
    const ns = payloadsOf(m.payloads, P.N)
    const cookie = ns.find((n) => n.notify === Notify.COOKIE)
    const invalidKe = ns.find((n) => n.notify === Notify.INVALID_KE_PAYLOAD)
    if (cookie || invalidKe) {
      // §2.6, §2.7: both answers are stateless on the gateway; resend with what it asked for.
      if (++this.bounces > MAX_BOUNCES) return this.fail(new TunkitError('TK_PROTOCOL_ERROR', 'the gateway keeps asking for a cookie or another DH group'))
      if (cookie) this.cookie = cookie.data
      if (invalidKe) {
        const group = invalidKe.data.readUInt16BE(0)
        if (group === this.ke.group || !suiteGroups(this.offer).includes(group)) return this.drop()
        this.ke = this.deps.keyExchange(group)
      }
      return this.sendInit(now)
    }
    const errors = errorNotifies(m.payloads)
    if (errors.length) return this.fail(refusal('IKE_SA_INIT', errors[0]))
    const sa = payloadOf(m.payloads, P.SA)
    const ke = payloadOf(m.payloads, P.KE)
    const nr = payloadOf(m.payloads, P.NONCE)
    if (!sa || !ke || !nr || m.spiR.every((b) => b === 0)) return this.drop()
    let suite: Suite
    let secret: Buffer
    try {
      suite = acceptAnswer(this.offer, sa.proposals)
      // The answer must name the group our KE used; anything else is a broken or forged answer.
      if (suite.dh !== this.ke.group || ke.group !== this.ke.group) return this.drop()
      secret = this.ke.computeSecret(ke.data)
    } catch (e) {
      if (isInputError(e)) return this.drop()
      throw e
    }
    const keys = deriveIkeKeys(suite, skeyseed(suite.prf!, this.ni, nr.data, secret), this.ni, nr.data, this.spiI, m.spiR)
    const sk = skKeys(suite, keys)
    const nat = natDetected(m.payloads, this.spiI, m.spiR, this.config.gateway, this.config.local)
    const peer = nat.local || nat.remote ? {address: this.config.gateway.address, port: 4500} : this.config.gateway
    const c0 = this.config
    const ike = new ProtectedSa('initiator', this.spiI, m.spiR, sk.initiator, sk.responder, peer, this.counters, suite.prf!, keys.skD, this.deps, {
      retransmit: this.rt,
      ikePolicies: IKE_POLICIES,
      child: c0.lifetimes?.child ?? CHILD_LIFETIME,
      ike: c0.lifetimes?.ike ?? IKE_LIFETIME,
      dpdMs: c0.dpdMs ?? 0,
      maxChildren: c0.maxChildren ?? MAX_CHILDREN,
      adopt: (_, s) => this.sas.push(s),
      onPlain: c0.onPlain,
    })
    this.sa = ike
    this.sas.push(ike)
    this.phase = 'sa'
    const ourSpi = childSpi(this.deps)
    const esp = espOffer(ourSpi)
    const c = this.config
    const id = c.id ?? defaultId(c.auth, c.local.address)
    let mine: ReturnType<typeof ourAuth>
    try {
      mine = ourAuth(c.auth, suite.prf!, signedOctets(suite.prf!, this.init.data, nr.data, keys.skPi, id), peerHashes(m.payloads))
    } catch (e) {
      if (e instanceof TunkitError) return this.fail(e)
      throw e
    }
    const inner: Payload[] = [
      {type: P.IDi, ...id},
      ...mine.certs,
      ...(c.initialContact === false ? [] : [notify(Notify.INITIAL_CONTACT)]),
      ...certreq(c.ca),
      ...(c.remoteId ? [{type: P.IDr, ...c.remoteId} as Payload] : []),
      mine.auth,
      {type: P.CP, cfgType: CfgType.REQUEST, attributes: [{type: CfgAttr.INTERNAL_IP4_ADDRESS, value: Buffer.alloc(0)}, {type: CfgAttr.INTERNAL_IP4_DNS, value: Buffer.alloc(0)}]},
      {type: P.SA, proposals: esp},
      {type: P.TSi, selectors: c.tsI ?? [tsFromCidr('0.0.0.0/0')]},
      {type: P.TSr, selectors: c.tsR ?? [tsFromCidr('0.0.0.0/0')]},
    ]
    const ctx = {suite, keys, nr: nr.data, initResponse: raw, esp, childSpi: ourSpi, nat}
    return ike.request(Exchange.IKE_AUTH, inner, now, (reply, t) => this.onAuthResponse(ike, ctx, reply, t))
  }

  private onAuthResponse(
    ike: ProtectedSa,
    x: {suite: Suite; keys: ReturnType<typeof deriveIkeKeys>; nr: Buffer; initResponse: Buffer; esp: Proposal[]; childSpi: Buffer; nat: Established['nat']},
    inner: Payload[],
    now: number,
  ): Action[] {
    const errors = errorNotifies(inner)
    const idr = payloadOf(inner, P.IDr)
    const auth = payloadOf(inner, P.AUTH)
    const dead = (error: TunkitError, also: Action[] = []): Action[] => {
      ike.state = 'closed'
      return this.fail(error, also)
    }
    if (!idr || !auth) return dead(errors.length ? refusal('IKE_AUTH', errors[0]) : new TunkitError('TK_PROTOCOL_ERROR', 'the IKE_AUTH answer has no IDr or AUTH'))
    const prf = x.suite.prf!
    const c = this.config
    try {
      const octets = signedOctets(prf, x.initResponse, this.ni, x.keys.skPr, idr)
      verifyPeer({id: idr, auth, inner, octets, prfId: prf, psk: 'psk' in c.auth ? c.auth.psk : undefined, ca: c.ca, remoteId: c.remoteId, now})
    } catch (e) {
      if (!(e instanceof TunkitError)) throw e
      // §2.21.2: an initiator tells the gateway in a separate INFORMATIONAL (sent once: we are done).
      return dead(new TunkitError(e.code, `the gateway: ${e.message}`), ike.request(Exchange.INFORMATIONAL, [notify(Notify.AUTHENTICATION_FAILED)], now))
    }
    // The IKE_SA stands from here (§1.2); a refused CHILD_SA leaves it up, so delete it ourselves
    // (the DELETE is retransmitted and its answer closes the SA).
    ike.state = 'established'
    const childFailed = (error: TunkitError): Action[] => [...ike.close(now), {type: 'failed', spiI: this.spiI, error}]
    if (errors.length) return childFailed(refusal('the CHILD_SA', errors[0]))
    const sa = payloadOf(inner, P.SA)
    const tsI = payloadOf(inner, P.TSi)
    const tsR = payloadOf(inner, P.TSr)
    let child: Suite
    try {
      if (!sa || !tsI || !tsR) throw new TunkitError('TK_PROTOCOL_ERROR', 'the IKE_AUTH answer has no SA, TSi or TSr')
      child = acceptAnswer(x.esp, sa.proposals)
      if (sa.proposals[0].protocol !== ProtocolId.ESP || sa.proposals[0].spi.length !== 4) throw new TunkitError('TK_PROTOCOL_ERROR', 'the CHILD_SA answer is not ESP with a 4-byte SPI')
    } catch (e) {
      if (e instanceof TunkitError) return childFailed(e)
      throw e
    }
    const cp = payloadsOf(inner, P.CP).find((p) => p.cfgType === CfgType.REPLY)
    const attr = (type: number): string[] => (cp?.attributes ?? []).filter((a) => a.type === type && a.value.length === 4).map((a) => cpAddress(a)!)
    const est: Established = {
      role: 'initiator',
      spiI: this.spiI,
      spiR: ike.spiR,
      ike: x.suite,
      peerId: idToString(idr),
      child: {
        suite: child,
        spiI: x.childSpi,
        spiR: sa!.proposals[0].spi,
        keys: deriveChildKeys(prf, x.keys.skD, child, this.ni, x.nr),
        tsI: tsI!.selectors,
        tsR: tsR!.selectors,
      },
      dns: attr(CfgAttr.INTERNAL_IP4_DNS),
      nat: x.nat,
      peer: ike.peer,
    }
    const vip = attr(CfgAttr.INTERNAL_IP4_ADDRESS)[0]
    if (vip) est.vip = vip
    const subnets = (cp?.attributes ?? []).filter((a) => a.type === CfgAttr.INTERNAL_IP4_SUBNET && a.value.length === 8).map((a) => `${formatIPv4(a.value, 0)}/${prefixLength(a.value.readUInt32BE(4))}`)
    if (subnets.length) est.subnets = subnets
    return [{type: 'established', sa: est}, ...ike.up(now, x.suite), ...this.perPolicy(ike, est, cp?.attributes ?? [], now)]
  }

  /**
   * Seed 002: the gateway's policies (tunkit CP attribute) beyond the one the first CHILD_SA
   * covers each get a CHILD_SA with exactly their transforms, TSi the VIP and TSr the subnet.
   * Without the attribute (strongSwan) the first CHILD_SA is all there is.
   */
  private perPolicy(ike: ProtectedSa, est: Established, attrs: readonly CfgAttribute[], now: number): Action[] {
    const first = est.child
    const out: Action[] = []
    let more = 0
    let firstEsp: Policy[] = espPolicies()
    const tsI = est.vip ? [tsFromCidr(`${est.vip}/32`)] : first.tsI
    for (const a of attrs) {
      if (a.type !== TUNKIT_POLICY) continue
      let subnet = '?'
      more++
      try {
        const p = decodeCpPolicy(a.value)
        subnet = `${p.address}/${p.prefix}`
        const ts = tsFromCidr(subnet)
        const esp = p.proposals.map(policyFromTransforms)
        if (first.tsR.some((s) => s.start === ts.start && s.end === ts.end)) {
          firstEsp = esp
          more--
        } else out.push(...ike.createChild({policy: esp, tsI, tsR: [ts]}, now))
      } catch (e) {
        if (!isInputError(e)) throw e
        out.push({type: 'child-failed', spiI: this.spiI, error: new TunkitError('TK_UNSUPPORTED', `the gateway's policy for ${subnet} cannot be met: ${(e as Error).message}`)})
      }
    }
    // Read when the `established` action before these is carried out, so set before they are returned.
    if (more) est.moreChildren = more
    return [...ike.addChild(first, firstEsp, now), {type: 'child-up', spiI: this.spiI, child: first}, ...out]
  }

  /** Requests of the gateway: INFORMATIONAL (DPD, DELETE), CREATE_CHILD_SA (CHILD_SA and IKE_SA rekeys). */
  private onRequest(sa: ProtectedSa, m: IkeMessage, inner: Payload[], now: number): ReturnType<RequestHandler> {
    if (sa.state === 'auth') return undefined
    if (m.exchange === Exchange.INFORMATIONAL) return sa.informational(inner, now)
    if (m.exchange === Exchange.CREATE_CHILD_SA) return sa.answerCreateChild(inner, now)
    return undefined
  }
}

function suiteGroups(offer: readonly Proposal[]): number[] {
  return [...new Set(offer.flatMap((p) => p.transforms.filter((t) => t.type === TransformType.DH).map((t) => t.id)))]
}

/** The prefix length of a netmask (its leading ones). */
function prefixLength(mask: number): number {
  let n = 0
  while (n < 32 && mask & (0x80000000 >>> n)) n++
  return n
}
