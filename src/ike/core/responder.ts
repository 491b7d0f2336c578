import {createHmac, timingSafeEqual, type X509Certificate} from 'node:crypto'
import {CodecError, TunkitError, type ErrorCode} from '../../lib/errors.js'
import {ipv4Bytes, ipv4ToU32, ipv4FromU32, isIPv4} from '../../lib/net/ip.js'
import {CfgAttr, CfgType, Exchange, Flag, Notify, PayloadType as P, TsType} from '../codec/constants.js'
import {encodeCpPolicy, TUNKIT_POLICY, type CfgAttribute} from '../codec/cp.js'
import {idToString, type IdBody} from '../codec/id.js'
import {encodeMessage, type IkeMessage} from '../codec/message.js'
import {payloadOf, payloadsOf, type Payload} from '../codec/payload.js'
import type {Proposal} from '../codec/sa.js'
import {tsFromCidr, type TrafficSelector} from '../codec/ts.js'
import {certreq, defaultId, ourAuth, peerHashes, verifyPeer, type CertCredentials, type Credentials} from './auth.js'
import {deriveChildKeys, deriveIkeKeys, signedOctets, skeyseed, skKeys, type IkeKeys, type Suite} from './crypto.js'
import {CHILD_LIFETIME, childSpi, DEFAULT_DEPS, IKE_LIFETIME, isInputError, tryDecode, MAX_CHILDREN, natDetected, natHash, notify, SIGNATURE_HASHES, ProtectedSa, RETRANSMIT, type Action, type ChildSelection, type Lifetime, type Counters, type Deps, type Endpoint, type Established, type RequestHandler, type Retransmit, type SaOptions, type SkObserver} from './exchange.js'
import {choose, espPolicies, IKE_POLICIES, policyTransforms, withPfs, type Policy} from './proposals.js'

/**
 * The IKEv2 responder (RFC 7296 §1.2, §2.6, §2.7): one object for every IKE_SA of a gateway, so
 * that the COOKIE threshold and the half-open bound see them all. IKE_SA_INIT answers that keep no
 * state (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN) are made without allocating an SA.
 */

export interface ResponderConfig {
  /** Our address as the initiator sends to it (NAT detection). */
  local: Endpoint
  /** Our identity; by default the certificate's (first DNS name, else subject) or our address. */
  id?: IdBody
  /** The PSK of an initiator identity; undefined refuses PSK authentication for it. */
  psk?(id: IdBody): Buffer | undefined
  /** Our certificate, for initiators that authenticate with theirs. */
  cert?: CertCredentials
  /** CAs an initiator's certificate must chain to (named in our CERTREQ); none refuses certificates. */
  ca?: X509Certificate[]
  /** Our preferences, best first (default: everything tunkit supports). */
  ike?: readonly Policy[]
  esp?: readonly Policy[]
  /** The subnets we protect: the initiator's TSr is narrowed to them (all with the `esp` proposals). */
  subnets: readonly string[]
  /**
   * Seed 002, `--policy SUBNET=PROPOSALS`: instead of `subnets`/`esp`, each subnet with its own ESP
   * proposals, pushed in CFG_REPLY (INTERNAL_IP4_SUBNET and the tunkit policy attribute).
   */
  policies?: readonly {subnet: string; esp: readonly Policy[]}[]
  /** A virtual IPv4 address for an identity, or undefined when the pool is empty. */
  lease(id: IdBody): string | undefined
  dns?: readonly string[]
  /** Half-open SAs above which IKE_SA_INIT needs a COOKIE (§2.6), and the hard bound. */
  cookieThreshold?: number
  maxHalfOpen?: number
  /** How long a half-open or failed SA is kept. */
  halfOpenMs?: number
  retransmit?: Retransmit
  /** CHILD_SA and IKE_SA lifetimes (default CHILD_LIFETIME, IKE_LIFETIME), DPD after idle (default none), CHILD_SAs at most. */
  lifetimes?: {child?: Lifetime; ike?: Lifetime}
  dpdMs?: number
  maxChildren?: number
  /**
   * Established IKE_SAs one identity may hold (default MAX_SAS_PER_ID): its next IKE_AUTH is
   * refused with AUTHENTICATION_FAILED, unless it carries INITIAL_CONTACT, which replaces them.
   */
  maxSasPerId?: number
  /** Sees the inner payloads of every protected message (`--trace`). */
  onPlain?: SkObserver
}

/**
 * One identity's IKE_SAs at most. Leases are by identity, so its SAs share one address and only
 * the newest carries traffic; a few more let a client that does not send INITIAL_CONTACT
 * reconnect while its dead SAs wait for DPD.
 */
export const MAX_SAS_PER_ID = 4

interface Sa {
  ike: ProtectedSa
  remote: Endpoint
  suite: Suite
  /** What only IKE_AUTH needs; gone once it is answered (a gateway with 10 000 clients keeps none of it). */
  init?: HalfOpen
  nat: Established['nat']
  created: number
  closedAt?: number
  /** The initiator's leased address: new CHILD_SAs narrow TSi to it. */
  vip?: string
  /** The initiator's identity, once authenticated (the key of `byId`). */
  who?: string
  /** Replaced by a newer IKE_SA of its identity (INITIAL_CONTACT): reported deleted already. */
  replaced?: boolean
}

interface HalfOpen {
  ni: Buffer
  nr: Buffer
  keys: IkeKeys
  /** RealMessage1 and 2 of the AUTH octets. */
  initRequest: Buffer
  initResponse: Buffer
  /** The initiator's RFC 7427 hashes (SIGNATURE_HASH_ALGORITHMS). */
  hashes: number[]
}

const key = (spi: Buffer): string => spi.toString('hex')

export class IkeResponder {
  readonly counters: Counters = {dropped: 0, retransmits: 0, cachedReplies: 0}
  private readonly deps: Deps
  private readonly sas = new Map<string, Sa>()
  /**
   * By initiator SPI, the first SA to use it: to spot a retransmitted IKE_SA_INIT, and for the
   * driver's lookups (DPD, DELETE, ESP liveness), which a scan would make quadratic.
   */
  private readonly bySpiI = new Map<string, Sa>()
  private halfOpenCount = 0
  /** Established SAs by identity (`idToString`), for INITIAL_CONTACT and `maxSasPerId`. */
  private readonly byId = new Map<string, Set<Sa>>()
  private pushed: CfgAttribute[] | undefined
  /** The current cookie secret and the one before (a cookie made just before a rotation stays good). */
  private secrets: {version: number; secret: Buffer}[]
  /** Every IKE_SA's options: one object, not one per client. */
  private readonly saOptions: SaOptions
  /**
   * Our policies: each protected subnet (and its selector) with the ESP proposals that may protect
   * it. Made once, so every CHILD_SA narrowed to a whole subnet shares its selector (`narrow`).
   */
  private readonly policies: {subnets: readonly string[]; ts: readonly TrafficSelector[]; esp: readonly Policy[]}[]

  constructor(readonly config: ResponderConfig, deps: Partial<Deps> = {}) {
    this.deps = {...DEFAULT_DEPS, ...deps}
    this.secrets = [{version: 0, secret: this.deps.random(32)}]
    const c = config
    const ps = c.policies?.length ? c.policies.map((p) => ({subnets: [p.subnet], esp: p.esp})) : [{subnets: c.subnets, esp: c.esp ?? espPolicies()}]
    this.policies = ps.map((p) => ({...p, ts: p.subnets.map(tsFromCidr)}))
    this.saOptions = {
      retransmit: c.retransmit ?? RETRANSMIT,
      ikePolicies: c.ike ?? IKE_POLICIES,
      child: c.lifetimes?.child ?? CHILD_LIFETIME,
      ike: c.lifetimes?.ike ?? IKE_LIFETIME,
      dpdMs: c.dpdMs ?? 0,
      maxChildren: c.maxChildren ?? MAX_CHILDREN,
      select: (sa, tsI, tsR, offered, pfs) => this.select(this.sas.get(key(sa.ourSpi))?.vip, tsI, tsR, offered, pfs),
      // An IKE_SA made by a rekey: kept by our SPI of it, with what the first one knew.
      adopt: (prev, next) => {
        const first = this.sas.get(key(prev.ourSpi))
        if (!first) return
        const sa: Sa = {...first, ike: next, init: undefined, closedAt: undefined}
        this.sas.set(key(next.ourSpi), sa)
        this.index(sa)
        if (sa.who) this.byId.get(sa.who)?.add(sa)
      },
      onPlain: c.onPlain,
    }
  }

  /** §2.6: the caller rotates the cookie secret (e.g. every few minutes). */
  rotateCookieSecret(secret: Buffer): void {
    this.secrets = [{version: (this.secrets[0].version + 1) & 0xff, secret}, this.secrets[0]]
  }

  get halfOpen(): number {
    return this.halfOpenCount
  }

  /** How long a half-open SA waits for IKE_AUTH, and a closed one lingers for retransmitted requests. */
  private get linger(): number {
    return this.config.halfOpenMs ?? 30_000
  }

  /** IKE_AUTH is answered (either way): the SA is no longer half-open. */
  private settle(sa: Sa): void {
    if (!sa.init) return
    sa.init = undefined
    this.halfOpenCount--
  }

  /**
   * The IKE_SA whose initiator SPI is `spiI`, for DPD and DELETE. After a rekey this is the SA
   * that replaced it, found by the old SPIi as long as the old IKE_SA is remembered (until its
   * DELETE, plus `halfOpenMs`) and by the new one from `ike-rekeyed` on.
   */
  ikeSa(spiI: Buffer): ProtectedSa | undefined {
    return this.bySpiI.get(key(spiI))?.ike.current
  }

  private index(sa: Sa): void {
    const k = key(sa.ike.spiI)
    if (!this.bySpiI.has(k)) this.bySpiI.set(k, sa)
  }

  /** The IKE_SAs of identity `who` that are up (not being deleted, not replaced by a rekey). */
  established(who: string): ProtectedSa[] {
    return this.live(who).map((sa) => sa.ike)
  }

  private live(who: string): Sa[] {
    return [...(this.byId.get(who) ?? [])].filter((sa) => sa.ike.state === 'established' && !sa.ike.successor && !sa.replaced)
  }

  private drop(): Action[] {
    this.counters.dropped++
    return []
  }

  /** A datagram from `from` (without the non-ESP marker). */
  receive(raw: Buffer, from: Endpoint, now: number): Action[] {
    if (raw.length < 28) return this.drop()
    const spiR = raw.subarray(8, 16)
    if (spiR.every((b) => b === 0)) return this.onInit(raw, from, now)
    // SAs are kept by our SPI: SPIr, or SPIi of an IKE_SA we made by a rekey (the I flag says which).
    const sa = this.sas.get(key(raw[19] & Flag.INITIATOR ? spiR : raw.subarray(0, 8)))
    if (!sa || !raw.subarray(0, 8).equals(sa.ike.spiI) || !spiR.equals(sa.ike.spiR)) return this.drop()
    const actions = this.quietIfReplaced(sa, sa.ike.receive(raw, now, this.handler(sa), from))
    // Closed by this message (a DELETE, a failed IKE_AUTH): forgotten after the linger, which
    // needs a wake-up of its own; an idle gateway would otherwise keep every closed SA.
    if (sa.ike.state === 'closed' && sa.closedAt === undefined) {
      sa.closedAt = now
      actions.push({type: 'timer', at: now + this.linger})
    }
    return actions
  }

  /** A replaced SA was reported deleted when it was replaced: its DELETE's end is not news. */
  private quietIfReplaced(sa: Sa, actions: Action[]): Action[] {
    return sa.replaced ? actions.filter((a) => a.type !== 'deleted' && a.type !== 'failed') : actions
  }

  tick(now: number): Action[] {
    const out: Action[] = []
    const linger = this.linger
    let next = Infinity
    for (const [k, sa] of this.sas) {
      const ike = sa.ike
      // Only the SAs whose time has come: a visit to every one would allocate for 10 000 SAs each wake-up.
      let wake = ike.wakeAt
      if (wake !== undefined && wake <= now) {
        for (const a of this.quietIfReplaced(sa, ike.tick(now))) out.push(a)
        wake = ike.wakeAt
      }
      if (ike.state === 'closed') sa.closedAt ??= now
      // Half-open SAs expire; closed ones linger so a retransmitted request still gets its answer.
      if ((ike.state === 'auth' && now - sa.created >= linger) || (sa.closedAt !== undefined && now - sa.closedAt >= linger)) {
        this.sas.delete(k)
        this.settle(sa)
        if (this.bySpiI.get(key(ike.spiI)) === sa) this.bySpiI.delete(key(ike.spiI))
        this.forget(sa)
        continue
      }
      next = Math.min(next, wake ?? Infinity, ike.state === 'auth' ? sa.created + linger : sa.closedAt !== undefined ? sa.closedAt + linger : Infinity)
    }
    if (next < Infinity) out.push({type: 'timer', at: next})
    return out
  }

  private cookieFor(version: number, secret: Buffer, ni: Buffer, from: Endpoint, spiI: Buffer): Buffer {
    const mac = createHmac('sha256', secret).update(Buffer.concat([ni, Buffer.from(from.address), spiI])).digest()
    return Buffer.concat([Buffer.from([version]), mac])
  }

  private cookieValid(cookie: Buffer, ni: Buffer, from: Endpoint, spiI: Buffer): boolean {
    const s = this.secrets.find((x) => x.version === cookie[0])
    if (!s) return false
    const want = this.cookieFor(s.version, s.secret, ni, from, spiI)
    return want.length === cookie.length && timingSafeEqual(want, cookie)
  }

  /** An answer that keeps no state: HDR(SPIi, 0), N(type, data). */
  private stateless(m: IkeMessage, from: Endpoint, type: number, data?: Buffer): Action[] {
    const payloads = [notify(type, data)]
    return [{type: 'send', to: from, data: encodeMessage({spiI: m.spiI, spiR: Buffer.alloc(8), exchange: Exchange.IKE_SA_INIT, flags: Flag.RESPONSE, messageId: 0, payloads})}]
  }

  private onInit(raw: Buffer, from: Endpoint, now: number): Action[] {
    const m = tryDecode(raw)
    if (!m) return this.drop()
    if (m.exchange !== Exchange.IKE_SA_INIT || m.flags & Flag.RESPONSE || !(m.flags & Flag.INITIATOR) || m.messageId !== 0) return this.drop()
    const sa = payloadOf(m.payloads, P.SA)
    const ke = payloadOf(m.payloads, P.KE)
    const ni = payloadOf(m.payloads, P.NONCE)
    if (!sa || !ke || !ni) return this.drop()
    const old = this.bySpiI.get(key(m.spiI))
    if (old && old.remote.address === from.address && old.remote.port === from.port) {
      // §2.1: a retransmission gets the same answer; another nonce on the same SPI is a new attempt we ignore.
      if (!old.init?.ni.equals(ni.data) || old.ike.state !== 'auth') return this.drop()
      this.counters.cachedReplies++
      return [{type: 'send', to: from, data: old.init.initResponse}]
    }
    const half = this.halfOpen
    if (half >= (this.config.cookieThreshold ?? 64)) {
      const n = m.payloads[0]
      const ok = n?.type === P.N && !('unknown' in n) && n.notify === Notify.COOKIE && this.cookieValid(n.data, ni.data, from, m.spiI)
      if (!ok) return this.stateless(m, from, Notify.COOKIE, this.cookieFor(this.secrets[0].version, this.secrets[0].secret, ni.data, from, m.spiI))
    }
    const choice = choose(this.config.ike ?? IKE_POLICIES, sa.proposals)
    if (!choice.ok) return this.stateless(m, from, Notify.NO_PROPOSAL_CHOSEN)
    const group = choice.suite.dh!
    if (ke.group !== group) return this.stateless(m, from, Notify.INVALID_KE_PAYLOAD, Buffer.from([group >> 8, group & 255]))
    if (half >= (this.config.maxHalfOpen ?? 4096)) return this.drop()
    const dh = this.deps.keyExchange(group)
    let secret: Buffer
    try {
      secret = dh.computeSecret(ke.data)
    } catch (e) {
      if (isInputError(e)) return this.drop()
      throw e
    }
    // Both SPIs in one allocation: each Buffer of its own costs ~200 bytes beside its 8, per SA, for hours.
    const spis = Buffer.allocUnsafeSlow(16)
    m.spiI.copy(spis)
    this.deps.random(8).copy(spis, 8)
    const spiR = spis.subarray(8)
    const nr = this.deps.random(32)
    const suite = choice.suite
    const keys = deriveIkeKeys(suite, skeyseed(suite.prf!, ni.data, nr, secret), ni.data, nr, m.spiI, spiR)
    const ns = payloadsOf(m.payloads, P.N)
    // In the request SPIr is still zero (§2.23).
    const nat = natDetected(m.payloads, m.spiI, Buffer.alloc(8), from, this.config.local)
    const natT = ns.some((n) => n.notify === Notify.NAT_DETECTION_SOURCE_IP)
    const payloads: Payload[] = [
      {type: P.SA, proposals: [choice.proposal]},
      {type: P.KE, group, data: dh.publicKey},
      {type: P.NONCE, data: nr},
      ...(natT ? [notify(Notify.NAT_DETECTION_SOURCE_IP, natHash(m.spiI, spiR, this.config.local)), notify(Notify.NAT_DETECTION_DESTINATION_IP, natHash(m.spiI, spiR, from))] : []),
      // No IKEV2_FRAGMENTATION_SUPPORTED: we do not reassemble SKF, so the initiator must send whole
      // messages (an RSA-3072 IKE_AUTH of ~3 KB; strongSwan fragments it only when both announce).
      notify(Notify.SIGNATURE_HASH_ALGORITHMS, SIGNATURE_HASHES),
      ...certreq(this.config.ca),
    ]
    const initResponse = encodeMessage({spiI: m.spiI, spiR, exchange: Exchange.IKE_SA_INIT, flags: Flag.RESPONSE, messageId: 0, payloads})
    const sk = skKeys(suite, keys)
    const ike = new ProtectedSa('responder', spis.subarray(0, 8), spiR, sk.responder, sk.initiator, from, this.counters, suite.prf!, keys.skD, this.deps, this.saOptions)
    const entry: Sa = {ike, remote: from, suite, init: {ni: ni.data, nr, keys, initRequest: raw, initResponse, hashes: peerHashes(m.payloads)}, nat, created: now}
    this.sas.set(key(spiR), entry)
    this.index(entry)
    this.halfOpenCount++
    return [{type: 'send', to: from, data: initResponse}, {type: 'timer', at: now + this.linger}]
  }

  private handler(sa: Sa): RequestHandler {
    return (m, inner, now) => {
      const ike = sa.ike
      if (ike.state === 'auth') return m.exchange === Exchange.IKE_AUTH ? this.onAuth(sa, inner, now) : undefined
      if (m.exchange === Exchange.INFORMATIONAL) return ike.informational(inner, now)
      if (m.exchange === Exchange.CREATE_CHILD_SA) return ike.answerCreateChild(inner, now)
      return undefined
    }
  }

  /**
   * A CHILD_SA the initiator asks for (TS as it sent them): TSi narrowed to its VIP, TSr to the
   * first policy whose subnets it overlaps AND whose proposals it offered; that policy's choice.
   */
  private select(vip: string | undefined, tsI: TrafficSelector[], tsR: TrafficSelector[], offered: Proposal[], pfs: boolean): ChildSelection {
    const narrowedI = vip ? narrow(tsI, [tsFromCidr(`${vip}/32`)]) : tsI
    let proposal = false
    for (const pol of this.policies) {
      const choice = choose(withPfs(pol.esp, pfs), offered)
      if (!choice.ok) continue
      proposal = true
      const narrowedR = narrow(tsR, pol.ts)
      if (narrowedI.length && narrowedR.length) return {ok: true, esp: pol.esp, proposal: choice.proposal, suite: choice.suite, tsI: narrowedI, tsR: narrowedR}
    }
    if (!proposal) return {ok: false, notify: Notify.NO_PROPOSAL_CHOSEN, why: 'no ESP proposal in common'}
    return {ok: false, notify: Notify.TS_UNACCEPTABLE, why: `traffic selectors outside ${this.policies.flatMap((p) => p.subnets).join(', ') || 'nothing'}`}
  }

  private onAuth(sa: Sa, inner: Payload[], now: number): {reply: Payload[]; actions: Action[]} {
    const c = this.config
    const ike = sa.ike
    // Whatever the answer, the SA is half-open no more; what AUTH needs stays in `init` until then.
    const init = sa.init!
    this.settle(sa)
    const prf = sa.suite.prf!
    const idi = payloadOf(inner, P.IDi)
    const auth = payloadOf(inner, P.AUTH)
    const fail = (n: number, code: ErrorCode, why: string): {reply: Payload[]; actions: Action[]} => {
      ike.state = 'closed'
      return {reply: [notify(n)], actions: [{type: 'failed', spiI: ike.spiI, error: new TunkitError(code, `IKE_AUTH from ${sa.remote.address}: ${why}`)}]}
    }
    if (!idi || !auth) return fail(Notify.INVALID_SYNTAX, 'TK_PROTOCOL_ERROR', 'no IDi or AUTH')
    const who = idToString(idi)
    // Policy before work: the cap is checked before the AUTH, the lease and the CHILD_SA keys. With
    // INITIAL_CONTACT the initiator, once authenticated, replaces its identity's SAs instead.
    const contact = payloadsOf(inner, P.N).some((n) => n.notify === Notify.INITIAL_CONTACT)
    const cap = c.maxSasPerId ?? MAX_SAS_PER_ID
    if (!contact && this.live(who).length >= cap) return fail(Notify.AUTHENTICATION_FAILED, 'TK_RESOURCE_LIMIT', `${who} already has ${cap} IKE_SAs, the limit per identity (INITIAL_CONTACT would replace them)`)
    const psk = c.psk?.(idi)
    const id = c.id ?? defaultId(c.cert, c.local.address)
    let reply: Payload[]
    try {
      const how = verifyPeer({id: idi, auth, inner, octets: signedOctets(prf, init.initRequest, init.nr, init.keys.skPi, idi), prfId: prf, psk, ca: c.ca, now})
      // We answer in kind: a PSK initiator with its PSK, a certificate one with our certificate if we have one.
      const creds: Credentials | undefined = how === 'cert' && c.cert ? c.cert : psk ? {psk} : undefined
      if (!creds) throw new TunkitError('TK_NOT_AUTHORIZED', `${who} authenticated with a certificate and we have neither a certificate nor a PSK to answer with`)
      const mine = ourAuth(creds, prf, signedOctets(prf, init.initResponse, init.ni, init.keys.skPr, id), init.hashes)
      reply = [{type: P.IDr, ...id}, ...mine.certs, mine.auth]
    } catch (e) {
      if (e instanceof TunkitError) return fail(Notify.AUTHENTICATION_FAILED, e.code, e.message)
      throw e
    }
    const replaced = contact ? this.replace(who, ike, now) : []
    ike.state = 'established'
    sa.who = who
    let mine = this.byId.get(who)
    if (!mine) this.byId.set(who, (mine = new Set()))
    mine.add(sa)
    // The IKE_SA stands; a CHILD_SA we cannot make is refused by notify (§1.2, §2.21.2).
    const childFails = (n: number, why: string): {reply: Payload[]; actions: Action[]} => ({
      reply: [...reply, notify(n)],
      actions: [...replaced, {type: 'failed', spiI: ike.spiI, error: new TunkitError(n === Notify.NO_PROPOSAL_CHOSEN ? 'TK_UNSUPPORTED' : 'TK_DENIED', `CHILD_SA for ${who}: ${why}`)}],
    })
    const saP = payloadOf(inner, P.SA)
    const tsI = payloadOf(inner, P.TSi)
    const tsR = payloadOf(inner, P.TSr)
    if (!saP || !tsI || !tsR) return childFails(Notify.INVALID_SYNTAX, 'no SA, TSi or TSr')
    const cp = payloadsOf(inner, P.CP).find((p) => p.cfgType === CfgType.REQUEST)
    let vip: string | undefined
    if (cp?.attributes.some((a) => a.type === CfgAttr.INTERNAL_IP4_ADDRESS)) {
      vip = c.lease(idi)
      if (!vip) return childFails(Notify.INTERNAL_ADDRESS_FAILURE, 'the address pool is empty')
    }
    // The first CHILD_SA covers the first policy whose proposals the initiator offered (§2.9).
    const choice = this.select(vip, tsI.selectors, tsR.selectors, saP.proposals, false)
    if (!choice.ok) return childFails(choice.notify, choice.why)
    if (choice.proposal.spi.length !== 4) return childFails(Notify.NO_PROPOSAL_CHOSEN, 'no ESP proposal in common')
    sa.vip = vip
    const spis = Buffer.allocUnsafeSlow(8)
    choice.proposal.spi.copy(spis)
    childSpi(this.deps).copy(spis, 4)
    const spiR = spis.subarray(4)
    const dns = vip ? (c.dns ?? []) : []
    if (cp) reply.push({type: P.CP, cfgType: CfgType.REPLY, attributes: [...(vip ? [{type: CfgAttr.INTERNAL_IP4_ADDRESS, value: ipv4Bytes(vip)}] : []), ...dns.map((d) => ({type: CfgAttr.INTERNAL_IP4_DNS, value: ipv4Bytes(d)})), ...this.pushedPolicies()]})
    reply.push({type: P.SA, proposals: [{...choice.proposal, spi: spiR}]}, {type: P.TSi, selectors: choice.tsI}, {type: P.TSr, selectors: choice.tsR})
    const child = {suite: choice.suite, spiI: spis.subarray(0, 4), spiR, keys: deriveChildKeys(prf, init.keys.skD, choice.suite, init.ni, init.nr), tsI: choice.tsI, tsR: choice.tsR}
    const est: Established = {role: 'responder', spiI: ike.spiI, spiR: ike.spiR, ike: sa.suite, peerId: who, child, dns: [...dns], nat: sa.nat, peer: ike.peer}
    if (vip) est.vip = vip
    return {reply, actions: [...replaced, {type: 'established', sa: est}, ...ike.up(now, sa.suite), ...ike.addChild(child, choice.esp, now), {type: 'child-up', spiI: ike.spiI, child}]}
  }

  /**
   * INITIAL_CONTACT (§2.4; strongSwan's uniqueids): the identity's other IKE_SAs go at once. Each is
   * reported deleted now, so that its CHILD_SAs leave the data plane before the new ones arrive,
   * and a DELETE goes to its peer (retransmitted as usual; its answer or timeout is not reported).
   */
  private replace(who: string, by: ProtectedSa, now: number): Action[] {
    return this.live(who).flatMap((sa) => {
      sa.replaced = true
      return [...sa.ike.close(now), {type: 'deleted', spiI: sa.ike.spiI, what: 'ike', by: 'us', spis: [], why: `replaced by IKE_SA ${by.spiI.toString('hex')} of ${who} (INITIAL_CONTACT)`} as Action]
    })
  }

  private forget(sa: Sa): void {
    const mine = sa.who ? this.byId.get(sa.who) : undefined
    if (!mine) return
    mine.delete(sa)
    if (!mine.size) this.byId.delete(sa.who!)
  }

  /**
   * CFG_REPLY: each IPv4 subnet we protect (INTERNAL_IP4_SUBNET), and with `policies` its
   * proposals (tunkit attribute; one that does not fit its bounds is left out, the client then
   * offers everything). Made once.
   */
  private pushedPolicies(): CfgAttribute[] {
    if (this.pushed) return this.pushed
    const out: CfgAttribute[] = []
    for (const p of this.policies) {
      for (const subnet of p.subnets) {
        const ts = tsFromCidr(subnet)
        if (ts.tsType !== TsType.IPV4_ADDR_RANGE) continue
        const prefix = 32 - Math.log2(ipv4ToU32(ts.end) - ipv4ToU32(ts.start) + 1)
        const mask = Buffer.alloc(4)
        mask.writeUInt32BE(prefix ? (0xffffffff << (32 - prefix)) >>> 0 : 0)
        out.push({type: CfgAttr.INTERNAL_IP4_SUBNET, value: Buffer.concat([ipv4Bytes(ts.start), mask])})
        if (!this.config.policies?.length) continue
        try {
          out.push({type: TUNKIT_POLICY, value: encodeCpPolicy({address: ts.start, prefix, proposals: p.esp.map(policyTransforms)})})
        } catch (e) {
          if (!(e instanceof CodecError)) throw e
        }
      }
    }
    return (this.pushed = out)
  }
}

/**
 * The parts of `offered` inside `allowed` (§2.9 narrowing), IPv4 ranges only: each offered
 * selector cut to each allowed one, protocol and ports intersected too.
 */
export function narrow(offered: readonly TrafficSelector[], allowed: readonly TrafficSelector[]): TrafficSelector[] {
  const out: TrafficSelector[] = []
  for (const o of offered) {
    for (const a of allowed) {
      if (o.tsType !== TsType.IPV4_ADDR_RANGE || a.tsType !== TsType.IPV4_ADDR_RANGE || !isIPv4(o.start) || !isIPv4(o.end)) continue
      if (o.ipProtocol && a.ipProtocol && o.ipProtocol !== a.ipProtocol) continue
      const start = Math.max(ipv4ToU32(o.start), ipv4ToU32(a.start))
      const end = Math.min(ipv4ToU32(o.end), ipv4ToU32(a.end))
      const startPort = Math.max(o.startPort, a.startPort)
      const endPort = Math.min(o.endPort, a.endPort)
      if (start > end || startPort > endPort) continue
      const ipProtocol = o.ipProtocol || a.ipProtocol
      // All of `a`: that very selector, so the CHILD_SAs of many clients share one.
      if (start === ipv4ToU32(a.start) && end === ipv4ToU32(a.end) && startPort === a.startPort && endPort === a.endPort && ipProtocol === a.ipProtocol) {
        out.push(a)
        continue
      }
      out.push({tsType: TsType.IPV4_ADDR_RANGE, ipProtocol, startPort, endPort, start: ipv4FromU32(start), end: ipv4FromU32(end)})
    }
  }
  return out
}

