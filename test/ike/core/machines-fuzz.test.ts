import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import type {Action} from '../../../src/ike/core/exchange.js'
import {CASES, fuzz, mutate} from '../../helpers/fuzz.js'
import {parseProposals} from '../../../src/ike/core/proposals.js'
import {ProtocolId} from '../../../src/ike/codec/constants.js'
import {makeCa, makeLeaf, T0} from './auth-certs.js'
import {CLIENT, pair, type Pair} from './loop.js'

/**
 * Both machines in every state fed random and mutated datagrams (seeded): they never throw, and
 * no datagram gets more than one reply. Each case runs a handshake, so a case costs more than a
 * codec case: TK_FUZZ_CASES / 40 cases (500 in CI), 8 datagrams to each side a case.
 */
const t = suite('fuzz: ike machines')

const STATES = ['fresh', 'half-open', 'established', 'closed', 'two-policies', 'rekeyed', 'rekeying'] as const

// Half the cases authenticate with ECDSA certificates (CERTREQ, CERT, RFC 7427 AUTH) instead of a PSK.
const ca = await makeCa('C=ZZ, CN=fuzz CA', 'p256')
const [gw, client] = await Promise.all(['gw', 'client'].map((n) => makeLeaf(ca, `CN=${n}.example.net`, {sans: [`dns:${n}.example.net`]})))
const CERTS = {
  start: T0,
  ini: {id: undefined, auth: {cert: [client.cert], key: client.key}, ca: [ca.cert]},
  res: {id: undefined, psk: undefined, cert: {cert: [gw.cert], key: gw.key}, ca: [ca.cert]},
}

function inState(state: (typeof STATES)[number], seed: number, certs = false): Pair {
  // fresh: the request never arrives; half-open: IKE_AUTH is lost, stop before its retransmission.
  const lose = state === 'fresh' ? () => true : state === 'half-open' ? (s: {dir: string; n: number}) => s.dir === 'i->r' && s.n > 0 : () => false
  // two-policies: a second CHILD_SA by CREATE_CHILD_SA (seed 002's configuration push).
  const policies = state === 'two-policies' ? [{subnet: '198.18.1.0/24', esp: parseProposals('aes256gcm16', ProtocolId.ESP)}, {subnet: '198.18.9.0/24', esp: parseProposals('aes256-sha512', ProtocolId.ESP)}] : undefined
  const p = pair({seed, lose, ...(certs ? {...CERTS, res: {...CERTS.res, policies}} : {res: {policies}})})
  p.run(state === 'fresh' || state === 'half-open' ? p.now + 400 : undefined)
  if (state === 'established' || state === 'closed') assert.ok(p.iEvents.some((e) => e.type === 'established'), `the handshake completed (${certs ? 'certificates' : 'PSK'})`)
  const i = p.ini.ikeSa
  const r = i && p.res.ikeSa(i.spiI)
  if (state === 'closed') p.feed('i', i!.close(p.now))
  // rekeyed: the gateway rekeyed the IKE_SA, then the client a CHILD_SA on the new one.
  if (state === 'rekeyed') {
    p.feed('r', r!.rekeyIke(p.now))
    const n = p.ini.ikeSa!
    p.feed('i', n.rekeyChild(n.children[0].spiI, p.now))
  }
  // rekeying: both sides' CHILD_SA and IKE_SA rekeys in flight at once, nothing delivered yet.
  if (state === 'rekeying') {
    p.feed('i', [...i!.rekeyChild(i!.children[0].spiI, p.now), ...i!.rekeyIke(p.now)], false)
    p.feed('r', [...r!.rekeyIke(p.now), ...r!.rekeyChild(r!.children[0].spiR, p.now)], false)
  }
  return p
}

const reference = [...inState('established', 7).sent, ...inState('established', 8, true).sent].map((s) => s.data)
const sends = (as: Action[]): number => as.filter((a) => a.type === 'send').length

t('random and mutated datagrams in every state, PSK and certificate SAs: no exception, at most one reply each', () => {
  fuzz('ike machines hostile datagrams', (r) => {
    const state = r.pick(STATES)
    const p = inState(state, r.u32(), r.chance(0.5))
    const corpus = [...reference, ...p.sent.map((s) => s.data)]
    for (let k = 0; k < 8; k++) {
      const x = r.chance(0.1) ? r.bytes(r.length(600)) : r.chance(0.1) ? r.pick(corpus) : mutate(r, r.pick(corpus))
      const from = r.chance(0.8) ? CLIENT : {address: r.ipv4(), port: r.port()}
      assert.ok(sends(p.res.receive(x, from, p.now)) <= 1, `responder (${state})`)
      assert.ok(sends(p.ini.receive(x, p.now)) <= 1, `initiator (${state})`)
    }
    // Whatever arrived, the timers still run without throwing.
    p.res.tick(p.now + 60_000)
    p.ini.tick(p.now + 60_000)
  }, Math.max(20, Math.floor(CASES / 40)))
})

t.run()
