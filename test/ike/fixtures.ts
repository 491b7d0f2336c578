import {readFileSync} from 'node:fs'
import {Exchange, Flag, PayloadType as P, ProtocolId} from '../../src/ike/codec/constants.js'
import {decodeMessage, type IkeMessage} from '../../src/ike/codec/message.js'
import {payloadOf, type Payload} from '../../src/ike/codec/payload.js'
import {deriveIkeKeys, openSk, rekeySkeyseed, skeyseed, skKeys, type IkeKeys, type SkKeys, type Suite} from '../../src/ike/core/crypto.js'
import {parseProposals, suiteOf} from '../../src/ike/core/proposals.js'
import type {ResponderConfig} from '../../src/ike/core/responder.js'
import {idFromString} from '../../src/ike/codec/id.js'

/** The strongSwan capture made by scripts/ike-capture.sh (test/fixtures/ike/). */

export interface Captured {
  /** Line number in messages.txt, for failure messages. */
  line: number
  dir: 'i>r' | 'r>i'
  sport: number
  /** The IKE message (the non-ESP marker of port 4500 removed). */
  raw: Buffer
}

const DIR = 'test/fixtures/ike'

export function capturedMessages(): Captured[] {
  const out: Captured[] = []
  readFileSync(`${DIR}/messages.txt`, 'utf8').split('\n').forEach((l, i) => {
    if (!l || l.startsWith('#')) return
    const [dir, ports, hex] = l.split(' ')
    const sport = Number(ports.split('->')[0])
    const udp = Buffer.from(hex, 'hex')
    out.push({line: i + 1, dir: dir as Captured['dir'], sport, raw: sport === 4500 ? udp.subarray(4) : udp})
  })
  return out
}

/** One line of keys.txt: "<conn|n> label = hex". */
export interface KeyDump {
  sa: string
  label: string
  value: Buffer
}

export function keyDumps(): KeyDump[] {
  return readFileSync(`${DIR}/keys.txt`, 'utf8').split('\n').filter(Boolean).map((l) => {
    const m = /^(<[^>]*>) (.*) = ([0-9a-f]*)$/.exec(l)
    if (!m) throw new Error(`keys.txt: cannot read ${l}`)
    return {sa: m[1], label: m[2], value: Buffer.from(m[3], 'hex')}
  })
}

/** The IKE_SA key sets in the order charon derived them (each starts with the DH secret). */
export function ikeKeySets(): Map<string, Buffer>[] {
  const sets: Map<string, Buffer>[] = []
  for (const d of keyDumps()) {
    if (d.label === 'shared Diffie Hellman secret') sets.push(new Map())
    if (sets.length && /^(shared Diffie Hellman secret|SKEYSEED|Sk_\w+ secret)$/.test(d.label)) sets[sets.length - 1].set(d.label, d.value)
  }
  return sets
}

/** The lab's PSK (/work/shared/lab/ipsec/README.md). */
export const LAB_PSK = Buffer.from('ks-lab-psk-2f7c9e41')

/** The lab gateway (test/lab/ipsec) as a tunkit responder: its identity, PSK, IKE proposals, subnet, pool and DNS. */
export const LAB_GATEWAY: ResponderConfig = {
  local: {address: '203.0.113.1', port: 500},
  id: idFromString('gw.ks.test'),
  psk: (id) => (id.data.toString() === 'client-psk.ks.test' ? LAB_PSK : undefined),
  ike: parseProposals('aes256gcm16-prfsha256-x25519-ecp256-modp2048, aes256-sha256-x25519-ecp256-modp2048', ProtocolId.IKE),
  subnets: ['198.18.1.0/24'],
  lease: () => '198.18.200.1',
  dns: ['198.18.1.53'],
}

/** An IKE_SA as this test reconstructs it from the capture. */
export interface Sa {
  spiI: Buffer
  spiR: Buffer
  /** SKEYSEED as derived here (for the rekeyed SA: from the old SK_d, §2.18). */
  seed: Buffer
  suite: Suite
  ni: Buffer
  nr: Buffer
  keys: IkeKeys
  sk: {initiator: SkKeys; responder: SkKeys}
  logged: Map<string, Buffer>
}

export const nonce = (ps: Payload[]): Buffer => payloadOf(ps, P.NONCE)!.data
export const chosen = (ps: Payload[]): Suite => suiteOf(payloadOf(ps, P.SA)!.proposals[0])
export const saOf = (sas: Sa[], m: IkeMessage): Sa => sas.find((s) => s.spiI.equals(m.spiI) && s.spiR.equals(m.spiR))!
export const keysFor = (sa: Sa, m: IkeMessage): SkKeys => (m.flags & Flag.INITIATOR ? sa.sk.initiator : sa.sk.responder)

function newSa(spiI: Buffer, spiR: Buffer, s: Suite, ni: Buffer, nr: Buffer, seed: Buffer, logged: Map<string, Buffer>): Sa {
  const keys = deriveIkeKeys(s, seed, ni, nr, spiI, spiR)
  return {spiI, spiR, seed, suite: s, ni, nr, keys, sk: skKeys(s, keys), logged}
}

/** Every IKE_SA of the capture, in the order charon derived their keys. */
export function reconstructSas(msgs: Captured[], sets: Map<string, Buffer>[]): Sa[] {
  const sas: Sa[] = []
  for (let i = 0; i < msgs.length; i++) {
    const m = decodeMessage(msgs[i].raw)
    if (m.exchange === Exchange.IKE_SA_INIT && !(m.flags & Flag.RESPONSE)) {
      const r = decodeMessage(msgs[i + 1].raw)
      const s = chosen(r.payloads)
      const logged = sets[sas.length]
      const ni = nonce(m.payloads)
      const nr = nonce(r.payloads)
      sas.push(newSa(r.spiI, r.spiR, s, ni, nr, skeyseed(s.prf!, ni, nr, logged.get('shared Diffie Hellman secret')!), logged))
    } else if (m.exchange === Exchange.CREATE_CHILD_SA && !(m.flags & Flag.RESPONSE)) {
      const old = saOf(sas, m)
      const req = openSk(msgs[i].raw, keysFor(old, m)).inner
      if (payloadOf(req, P.SA)!.proposals[0].protocol !== 1) continue // a CHILD_SA, not an IKE rekey
      const res = openSk(msgs[i + 1].raw, keysFor(old, decodeMessage(msgs[i + 1].raw))).inner
      const answer = payloadOf(res, P.SA)!.proposals[0]
      const s = suiteOf(answer)
      const logged = sets[sas.length]
      // §2.18: the rekey's initiator is the new IKE_SA's initiator, its nonce Ni, its SPI SPIi.
      const ni = nonce(req)
      const nr = nonce(res)
      const seed = rekeySkeyseed(old.suite.prf!, old.keys.skD, logged.get('shared Diffie Hellman secret')!, ni, nr)
      sas.push(newSa(payloadOf(req, P.SA)!.proposals[0].spi, answer.spi, s, ni, nr, seed, logged))
    }
  }
  return sas
}

