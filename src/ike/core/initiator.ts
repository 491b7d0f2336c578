import type {X509Certificate} from 'node:crypto'
import {TunkitError, type ErrorCode} from '../../lib/errors.js'
import {CfgAttr, CfgType, Exchange, Flag, Notify, NOTIFY_NAMES, PayloadType as P, ProtocolId, TransformType} from '../codec/constants.js'
import {cpAddress} from '../codec/cp.js'
import {idToString, type IdBody} from '../codec/id.js'
import {decodeMessage, encodeMessage, type IkeMessage} from '../codec/message.js'
import {payloadOf, payloadsOf, type Payload} from '../codec/payload.js'
import type {Proposal} from '../codec/sa.js'
import {tsFromCidr, type TrafficSelector} from '../codec/ts.js'
import {certreq, defaultId, ourAuth, peerHashes, verifyPeer, type Credentials} from './auth.js'
import {deriveChildKeys, deriveIkeKeys, signedOctets, skeyseed, skKeys, type KeyExchange, type Suite} from './crypto.js'
import {DEFAULT_DEPS, errorNotifies, isInputError, natDetected, natHash, notify, ProtectedSa, RETRANSMIT, SIGNATURE_HASHES, type Action, type Counters, type Deps, type Endpoint, type Established, type RequestHandler, type Retransmit} from './exchange.js'
import {acceptAnswer, espOffer, espPolicies, ikeOffer} from './proposals.js'

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
}

/** How often the gateway may send us back for a cookie or another group before we give up. */
const MAX_BOUNCES = 3

/** One line per refusal, for the user (the message of the failed action). */
const REFUSALS: Readonly<Record<number, [ErrorCode, string]>> = {
  [Notify.NO_PROPOSAL_CHOSEN]: ['TK_UNSUPPORTED', 'no proposal in common'],
  [Notify.AUTHENTICATION_FAILED]: ['TK_NOT_AUTHORIZED', 'authentication failed (wrong PSK, certificate or identity)'],
  [Notify.TS_UNACCEPTABLE]: ['TK_DENIED', 'traffic selectors unacceptable'],
  [Notify.INTERNAL_ADDRESS_FAILURE]: ['TK_RESOURCE_LIMIT', 'no internal address to lease'],
  [Notify.FAILED_CP_REQUIRED]: ['TK_UNSUPPORTED', 'the gateway requires a configuration request'],
}

export function refusal(what: string, n: number): TunkitError {
  const [code, why] = REFUSALS[n] ?? ['TK_PROTOCOL_ERROR', 'refused']
  return new TunkitError(code, `the gateway refused ${what}: ${why} (${NOTIFY_NAMES[n] ?? n})`)
}

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

  constructor(readonly config: InitiatorConfig, deps: Partial<Deps> = {}) {
    this.deps = {...DEFAULT_DEPS, ...deps}
    this.rt = config.retransmit ?? RETRANSMIT
    this.spiI = this.deps.random(8)
    this.ni = this.deps.random(32)
    this.ke = this.deps.keyExchange(suiteGroups(this.offer)[0])
  }

  /** The established IKE_SA, for DPD and DELETE; undefined before IKE_AUTH is answered. */
  get ikeSa(): ProtectedSa | undefined {
    return this.sa
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
    if (this.phase === 'sa') return this.sa!.tick(now)
    if (this.phase !== 'init' || now < this.init.at) return []
    if (this.init.sent >= this.rt.tries) return this.fail(new TunkitError('TK_TIMEOUT', `the gateway ${this.config.gateway.address} did not answer IKE_SA_INIT (${this.init.sent} tries)`))
    this.init.sent++
    this.counters.retransmits++
    this.init.at = now + this.rt.initialMs * 2 ** (this.init.sent - 1)
    return [{type: 'send', to: this.config.gateway, data: this.init.data}, {type: 'timer', at: this.init.at}]
  }

  receive(raw: Buffer, now: number): Action[] {
    if (this.phase === 'sa') {
      const sa = this.sa!
      if (raw.length < 16 || !raw.subarray(0, 8).equals(sa.spiI) || !raw.subarray(8, 16).equals(sa.spiR)) return this.drop()
      return sa.receive(raw, now, (m, inner) => this.onRequest(sa, m, inner))
    }
    if (this.phase !== 'init') return this.drop()
    let m: IkeMessage
    try {
      m = decodeMessage(raw)
    } catch (e) {
      if (isInputError(e)) return this.drop()
      throw e
    }
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
    const ike = new ProtectedSa('initiator', this.spiI, m.spiR, sk.initiator, sk.responder, peer, this.counters, suite.prf!, keys.skD, this.deps, this.rt)
    this.sa = ike
    this.phase = 'sa'
    const childSpi = this.deps.random(4)
    const esp = espOffer(childSpi)
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
      notify(Notify.INITIAL_CONTACT),
      ...certreq(c.ca),
      ...(c.remoteId ? [{type: P.IDr, ...c.remoteId} as Payload] : []),
      mine.auth,
      {type: P.CP, cfgType: CfgType.REQUEST, attributes: [{type: CfgAttr.INTERNAL_IP4_ADDRESS, value: Buffer.alloc(0)}, {type: CfgAttr.INTERNAL_IP4_DNS, value: Buffer.alloc(0)}]},
      {type: P.SA, proposals: esp},
      {type: P.TSi, selectors: c.tsI ?? [tsFromCidr('0.0.0.0/0')]},
      {type: P.TSr, selectors: c.tsR ?? [tsFromCidr('0.0.0.0/0')]},
    ]
    const ctx = {suite, keys, nr: nr.data, initResponse: raw, esp, childSpi, nat}
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
    ike.children.push(est.child)
    return [{type: 'established', sa: est}]
  }

  /** Requests of the gateway: INFORMATIONAL (DPD, DELETE), CREATE_CHILD_SA (CHILD_SA rekey). */
  private onRequest(sa: ProtectedSa, m: IkeMessage, inner: Payload[]): ReturnType<RequestHandler> {
    if (sa.state === 'auth') return undefined
    if (m.exchange === Exchange.INFORMATIONAL) return sa.informational(inner)
    if (m.exchange === Exchange.CREATE_CHILD_SA) return sa.answerCreateChild(inner, espPolicies())
    return undefined
  }
}

function suiteGroups(offer: readonly Proposal[]): number[] {
  return [...new Set(offer.flatMap((p) => p.transforms.filter((t) => t.type === TransformType.DH).map((t) => t.id)))]
}
