import {TunkitError} from '../../lib/errors.js'
import {DhGroup, Encr, Esn, Integ, Prf, ProtocolId, TransformType as T} from '../codec/constants.js'
import {keyLength, transform, type Proposal, type Transform} from '../codec/sa.js'
import type {Suite} from './crypto.js'

/**
 * Seed 002, "offer everything": the initiator's offer (every supported suite, strongest first),
 * the responder's choice (the first proposal of ITS preference list that the peer offered), and
 * strongSwan-style proposal strings (`aes256gcm16-prfsha256-x25519`) for a narrowed responder.
 */

export interface Algorithm {
  id: number
  keyBits?: number
}

/** A preference: per transform type the algorithms acceptable, best first (one SA proposal). */
export interface Policy {
  protocol: typeof ProtocolId.IKE | typeof ProtocolId.ESP
  encr: Algorithm[]
  /** Empty for AEAD ciphers. */
  integ: number[]
  /** IKE only. */
  prf: number[]
  /** Required DH groups; empty for ESP without PFS. */
  dh: number[]
  /** ESP only: Esn.NONE, Esn.ESN. */
  esn: number[]
}

const AEAD: readonly Algorithm[] = [{id: Encr.AES_GCM_16, keyBits: 256}, {id: Encr.AES_GCM_16, keyBits: 128}, {id: Encr.CHACHA20_POLY1305}]
const CBC: readonly Algorithm[] = [{id: Encr.AES_CBC, keyBits: 256}, {id: Encr.AES_CBC, keyBits: 128}]
const INTEGS: readonly number[] = [Integ.HMAC_SHA2_512_256, Integ.HMAC_SHA2_384_192, Integ.HMAC_SHA2_256_128, Integ.HMAC_SHA1_96]
const PRFS: readonly number[] = [Prf.HMAC_SHA2_512, Prf.HMAC_SHA2_384, Prf.HMAC_SHA2_256, Prf.HMAC_SHA1]
/** Strongest first; the initiator's KE in IKE_SA_INIT uses the first. */
export const DH_PREFERENCE: readonly number[] = [DhGroup.CURVE25519, DhGroup.ECP_384, DhGroup.ECP_256, DhGroup.MODP_3072, DhGroup.MODP_2048]

/** Everything tunkit supports for IKE: AEAD and CBC must be separate proposals (§3.3). */
export const IKE_POLICIES: readonly Policy[] = [
  {protocol: ProtocolId.IKE, encr: [...AEAD], integ: [], prf: [...PRFS], dh: [...DH_PREFERENCE], esn: []},
  {protocol: ProtocolId.IKE, encr: [...CBC], integ: [...INTEGS], prf: [...PRFS], dh: [...DH_PREFERENCE], esn: []},
]

/** Everything for ESP; with `pfs` also the DH groups (CREATE_CHILD_SA with KE). No ESN: libipsec has none. */
export function espPolicies(pfs = false): Policy[] {
  const dh = pfs ? [...DH_PREFERENCE] : []
  return [
    {protocol: ProtocolId.ESP, encr: [...AEAD], integ: [], prf: [], dh, esn: [Esn.NONE]},
    {protocol: ProtocolId.ESP, encr: [...CBC], integ: [...INTEGS], prf: [], dh, esn: [Esn.NONE]},
  ]
}

const algo = (type: number, a: Algorithm): Transform => transform(type, a.id, a.keyBits)

/** Policies as SA payload proposals, numbered from 1, each carrying `spi`. */
export function toProposals(policies: readonly Policy[], spi: Buffer = Buffer.alloc(0)): Proposal[] {
  return policies.map((p, i) => ({
    number: i + 1,
    protocol: p.protocol,
    spi,
    transforms: [
      ...p.encr.map((a) => algo(T.ENCR, a)),
      ...p.prf.map((id) => transform(T.PRF, id)),
      ...p.integ.map((id) => transform(T.INTEG, id)),
      ...p.dh.map((id) => transform(T.DH, id)),
      ...p.esn.map((id) => transform(T.ESN, id)),
    ],
  }))
}

/** The initiator's IKE offer: every supported suite, strongest first. */
export function ikeOffer(spi?: Buffer): Proposal[] {
  return toProposals(IKE_POLICIES, spi)
}

export function espOffer(spi: Buffer, pfs = false): Proposal[] {
  return toProposals(espPolicies(pfs), spi)
}

const sameAlgo = (t: Transform, a: Algorithm): boolean => t.id === a.id && keyLength(t) === a.keyBits && t.attributes.every((x) => x.tv && x.type === 14)

export type Choice = {ok: true; proposal: Proposal; suite: Suite} | {ok: false; notify: 'NO_PROPOSAL_CHOSEN'}

/** Picks the policy's first algorithm of `type` that the peer proposal offers; null when none. */
function pick(peer: Proposal, type: number, wanted: readonly Algorithm[]): Transform | null | undefined {
  // INTEG and DH "NONE" (id 0) offered by a peer mean the same as leaving the type out.
  const offered = peer.transforms.filter((t) => t.type === type && !((type === T.INTEG || type === T.DH) && t.id === 0))
  if (wanted.length === 0) return offered.length === 0 ? undefined : type === T.DH && peer.transforms.some((t) => t.type === T.DH && t.id === 0) ? undefined : null
  for (const a of wanted) {
    const t = offered.find((x) => sameAlgo(x, a))
    if (t) return algo(type, a)
  }
  return null
}

/**
 * The responder's choice (§2.7): for each of ITS policies in order, the first peer proposal of the
 * same protocol that has an acceptable algorithm of every type the policy needs and no type it
 * does not know. The answer is that peer proposal's number and SPI with one transform per type.
 */
export function choose(policies: readonly Policy[], offered: readonly Proposal[]): Choice {
  const known = new Set<number>([T.ENCR, T.PRF, T.INTEG, T.DH, T.ESN])
  for (const pol of policies) {
    for (const peer of offered) {
      if (peer.protocol !== pol.protocol || peer.transforms.some((t) => !known.has(t.type))) continue
      const encr = pick(peer, T.ENCR, pol.encr)
      const prf = pick(peer, T.PRF, pol.prf.map((id) => ({id})))
      const integ = pick(peer, T.INTEG, pol.integ.map((id) => ({id})))
      const dh = pick(peer, T.DH, pol.dh.map((id) => ({id})))
      // A peer leaving ESN out of an ESP proposal gets no ESN (RFC 7296 requires the transform; be lenient).
      const esn = pol.protocol === ProtocolId.ESP && !peer.transforms.some((t) => t.type === T.ESN) ? undefined : pick(peer, T.ESN, pol.esn.map((id) => ({id})))
      if (!encr || prf === null || integ === null || dh === null || esn === null) continue
      const transforms = [encr, prf, integ, dh, esn].filter((t): t is Transform => t !== undefined)
      const proposal = {number: peer.number, protocol: peer.protocol, spi: peer.spi, transforms}
      return {ok: true, proposal, suite: suiteOf(proposal)}
    }
  }
  return {ok: false, notify: 'NO_PROPOSAL_CHOSEN'}
}

/**
 * Suites by algorithms, each object made once: a gateway keeps one per IKE_SA and CHILD_SA, and
 * what it can hold is bounded by the algorithms it knows (the cap is a guard, never reached).
 */
const SUITES = new Map<string, Suite>()

function interned(s: Suite): Suite {
  const k = `${s.encr}/${s.encrKeyBits}/${s.integ}/${s.prf}/${s.dh}`
  const known = SUITES.get(k)
  if (known) return known
  if (SUITES.size < 256) SUITES.set(k, Object.freeze(s))
  return s
}

/** The suite of a proposal with one transform per type (an answer); throws on anything else. */
export function suiteOf(p: Proposal): Suite {
  const one = (type: number): Transform | undefined => {
    const ts = p.transforms.filter((t) => t.type === type)
    if (ts.length > 1) throw new TunkitError('TK_PROTOCOL_ERROR', `the chosen proposal has ${ts.length} transforms of type ${type}`)
    return ts[0]
  }
  const encr = one(T.ENCR)
  if (!encr) throw new TunkitError('TK_PROTOCOL_ERROR', 'the chosen proposal has no cipher')
  const s: Suite = {encr: encr.id}
  const bits = keyLength(encr)
  if (bits !== undefined) s.encrKeyBits = bits
  const integ = one(T.INTEG)
  if (integ && integ.id !== Integ.NONE) s.integ = integ.id
  const prf = one(T.PRF)
  if (prf) s.prf = prf.id
  const dh = one(T.DH)
  if (dh && dh.id !== DhGroup.NONE) s.dh = dh.id
  return interned(s)
}

/**
 * The initiator's check of the responder's answer (§3.3.6): one proposal, one transform per type,
 * each of them something we offered in the proposal of that number.
 */
export function acceptAnswer(offer: readonly Proposal[], answer: readonly Proposal[]): Suite {
  if (answer.length !== 1) throw new TunkitError('TK_PROTOCOL_ERROR', `the responder answered ${answer.length} proposals`)
  const a = answer[0]
  const mine = offer.find((p) => p.number === a.number && p.protocol === a.protocol)
  if (!mine) throw new TunkitError('TK_PROTOCOL_ERROR', `the responder chose proposal ${a.number}, which was not offered`)
  const suite = suiteOf(a)
  for (const t of a.transforms) {
    if (!mine.transforms.some((m) => m.type === t.type && m.id === t.id && keyLength(m) === keyLength(t))) throw new TunkitError('TK_PROTOCOL_ERROR', `the responder chose transform ${t.type}/${t.id}, which was not offered`)
  }
  // Every type we offered needs an answer, except DH when "none" was one of the choices.
  const optional = (type: number): boolean => type === T.DH && mine.transforms.some((m) => m.type === T.DH && m.id === DhGroup.NONE)
  const missing = mine.transforms.find((m) => !optional(m.type) && !a.transforms.some((t) => t.type === m.type))
  if (missing) throw new TunkitError('TK_PROTOCOL_ERROR', `the responder's answer has no transform of type ${missing.type}`)
  return suite
}

// ---- strongSwan-style proposal strings ----

const ENCR_WORDS: Readonly<Record<string, Algorithm>> = {
  aes128gcm16: {id: Encr.AES_GCM_16, keyBits: 128},
  aes128gcm128: {id: Encr.AES_GCM_16, keyBits: 128},
  aes256gcm16: {id: Encr.AES_GCM_16, keyBits: 256},
  aes256gcm128: {id: Encr.AES_GCM_16, keyBits: 256},
  chacha20poly1305: {id: Encr.CHACHA20_POLY1305},
  aes128: {id: Encr.AES_CBC, keyBits: 128},
  aes: {id: Encr.AES_CBC, keyBits: 128},
  aes256: {id: Encr.AES_CBC, keyBits: 256},
}
const HASH_WORDS: Readonly<Record<string, [number, number]>> = {
  sha1: [Integ.HMAC_SHA1_96, Prf.HMAC_SHA1],
  sha256: [Integ.HMAC_SHA2_256_128, Prf.HMAC_SHA2_256],
  sha384: [Integ.HMAC_SHA2_384_192, Prf.HMAC_SHA2_384],
  sha512: [Integ.HMAC_SHA2_512_256, Prf.HMAC_SHA2_512],
}
const DH_WORDS: Readonly<Record<string, number>> = {
  x25519: DhGroup.CURVE25519,
  curve25519: DhGroup.CURVE25519,
  ecp384: DhGroup.ECP_384,
  ecp256: DhGroup.ECP_256,
  modp3072: DhGroup.MODP_3072,
  modp2048: DhGroup.MODP_2048,
}

function usage(s: string, why: string): TunkitError {
  return new TunkitError('TK_USAGE', `proposal '${s}': ${why}`)
}

const add = <X>(xs: X[], x: X, eq: (a: X, b: X) => boolean = (a, b) => a === b): void => {
  if (!xs.some((y) => eq(x, y))) xs.push(x)
}

/**
 * One strongSwan-style proposal (`aes256gcm16-prfsha256-x25519`, `aes256-sha512`,
 * `aes128-sha1-modp2048`) as a policy for `protocol`. As in strongSwan, a hash word is the
 * integrity algorithm and, for IKE without `prf…`, also the PRF; with an AEAD cipher it is the PRF.
 * ESP takes DH groups as PFS groups. Throws TK_USAGE on what tunkit does not support.
 */
export function parseProposal(s: string, protocol: Policy['protocol']): Policy {
  const p: Policy = {protocol, encr: [], integ: [], prf: [], dh: [], esn: []}
  const hashes: [number, number][] = []
  for (const w of s.toLowerCase().split('-')) {
    if (ENCR_WORDS[w]) add(p.encr, ENCR_WORDS[w], (a, b) => a.id === b.id && a.keyBits === b.keyBits)
    else if (HASH_WORDS[w]) hashes.push(HASH_WORDS[w])
    else if (w.startsWith('prf') && HASH_WORDS[w.slice(3)]) {
      if (protocol !== ProtocolId.IKE) throw usage(s, 'ESP has no PRF')
      add(p.prf, HASH_WORDS[w.slice(3)][1])
    } else if (DH_WORDS[w]) add(p.dh, DH_WORDS[w])
    else if ((w === 'esn' || w === 'noesn') && protocol === ProtocolId.ESP) add(p.esn, w === 'esn' ? Esn.ESN : Esn.NONE)
    else throw usage(s, `unknown or unsupported algorithm '${w}'`)
  }
  if (p.encr.length === 0) throw usage(s, 'no cipher')
  const aead = p.encr.filter((a) => a.id !== Encr.AES_CBC).length
  if (aead && aead !== p.encr.length) throw usage(s, 'AEAD and CBC ciphers cannot share a proposal')
  for (const [integ, prf] of hashes) {
    if (!aead) add(p.integ, integ)
    if (protocol === ProtocolId.IKE && (aead || !s.toLowerCase().includes('prf'))) add(p.prf, prf)
  }
  if (!aead && p.integ.length === 0) throw usage(s, 'a CBC cipher needs an integrity algorithm (sha256…)')
  if (protocol === ProtocolId.IKE) {
    if (p.prf.length === 0) throw usage(s, 'no PRF (add prfsha256…)')
    if (p.dh.length === 0) throw usage(s, 'no DH group (add x25519…)')
  } else if (p.esn.length === 0) p.esn.push(Esn.NONE)
  return p
}

/** A comma-separated list of proposals, in order of preference. */
export function parseProposals(s: string, protocol: Policy['protocol']): Policy[] {
  const parts = s.split(',').map((x) => x.trim()).filter(Boolean)
  if (parts.length === 0) throw usage(s, 'empty')
  return parts.map((x) => parseProposal(x, protocol))
}

/**
 * ESP policies as a CREATE_CHILD_SA needs them: with a KE (PFS) every proposal requires a DH
 * group (its own, or any we support); without one (IKE_AUTH, or no PFS) none.
 */
export function withPfs(esp: readonly Policy[], pfs: boolean): Policy[] {
  return esp.map((p) => ({...p, dh: pfs ? (p.dh.length ? [...p.dh] : [...DH_PREFERENCE]) : []}))
}

// ---- per-policy configuration push (seed 002) ----

/** The transforms of one ESP policy as the tunkit CP attribute lists them. */
export function policyTransforms(p: Policy): {type: number; id: number; keyBits?: number}[] {
  return toProposals([p])[0].transforms.map((t) => {
    const bits = keyLength(t)
    return bits === undefined ? {type: t.type, id: t.id} : {type: t.type, id: t.id, keyBits: bits}
  })
}

const SUPPORTED: Readonly<Record<number, (t: {id: number; keyBits?: number}) => boolean>> = {
  [T.ENCR]: (t) => [...AEAD, ...CBC].some((a) => a.id === t.id && a.keyBits === t.keyBits),
  [T.INTEG]: (t) => INTEGS.includes(t.id) && t.keyBits === undefined,
  [T.DH]: (t) => DH_PREFERENCE.includes(t.id) && t.keyBits === undefined,
  [T.ESN]: (t) => (t.id === Esn.NONE || t.id === Esn.ESN) && t.keyBits === undefined,
}

/**
 * An ESP policy from the transforms a gateway pushed. Throws TK_UNSUPPORTED naming the first
 * transform tunkit cannot offer (a policy the client cannot meet), or a mix of AEAD and CBC.
 */
export function policyFromTransforms(ts: readonly {type: number; id: number; keyBits?: number}[]): Policy {
  const p: Policy = {protocol: ProtocolId.ESP, encr: [], integ: [], prf: [], dh: [], esn: []}
  for (const t of ts) {
    if (!SUPPORTED[t.type]?.(t)) throw new TunkitError('TK_UNSUPPORTED', `transform ${t.type}/${t.id}${t.keyBits ? `/${t.keyBits}` : ''} is not supported for ESP`)
    if (t.type === T.ENCR) add(p.encr, t.keyBits === undefined ? {id: t.id} : {id: t.id, keyBits: t.keyBits}, (a, b) => a.id === b.id && a.keyBits === b.keyBits)
    else if (t.type === T.INTEG) add(p.integ, t.id)
    else if (t.type === T.DH) add(p.dh, t.id)
    else add(p.esn, t.id)
  }
  const aead = p.encr.filter((a) => a.id !== Encr.AES_CBC).length
  if (!p.encr.length || (aead && (aead !== p.encr.length || p.integ.length)) || (!aead && !p.integ.length)) throw new TunkitError('TK_UNSUPPORTED', 'the proposal does not combine a cipher and integrity tunkit can use')
  if (!p.esn.length) p.esn.push(Esn.NONE)
  return p
}
