import type {Action, Endpoint} from '../../../src/ike/core/exchange.js'
import {IkeInitiator, type InitiatorConfig} from '../../../src/ike/core/initiator.js'
import {IkeResponder, type ResponderConfig} from '../../../src/ike/core/responder.js'
import {idFromString} from '../../../src/ike/codec/id.js'
import {Rng} from '../../helpers/fuzz.js'

/**
 * An initiator and a responder joined in memory: a tiny loop that passes datagrams, follows the
 * timers the machines ask for, and can lose or rewrite datagrams on the way.
 */

export const CLIENT: Endpoint = {address: '10.0.0.2', port: 500}
export const GATEWAY: Endpoint = {address: '10.0.0.1', port: 500}
export const PSK = Buffer.from('correct horse battery staple')

export interface Sent {
  dir: 'i->r' | 'r->i'
  to: Endpoint
  data: Buffer
  /** The index among the datagrams of this direction. */
  n: number
}

export interface Pair {
  ini: IkeInitiator
  res: IkeResponder
  now: number
  /** Every datagram sent, delivered or lost. */
  sent: Sent[]
  /** The non-send actions of each side. */
  iEvents: Action[]
  rEvents: Action[]
  /** The address the responder sees the initiator at (another one: a NAT on the way). */
  seenAs: Endpoint
  /** Returns true to lose a datagram. */
  lose: (s: Sent) => boolean
  /** Runs until nothing is in flight and no timer is due before `until`. */
  run(until?: number): void
  /** Hands the machines actions made outside the loop (dpd, close) and runs (unless `run` is false: to start two at once). */
  feed(dir: 'i' | 'r', actions: Action[], run?: boolean): void
}

export function seededRandom(seed: number): (n: number) => Buffer {
  const r = new Rng(seed)
  return (n) => r.bytes(n)
}

/** `start`: the clock's first reading (ms; certificates need a real date), 0 by default. */
export function pair(opts: {ini?: Partial<InitiatorConfig>; res?: Partial<ResponderConfig>; seed?: number; seenAs?: Endpoint; lose?: Pair['lose']; start?: number} = {}): Pair {
  const start = opts.start ?? 0
  const random = seededRandom(opts.seed ?? 1)
  const ini = new IkeInitiator({local: CLIENT, gateway: GATEWAY, id: idFromString('client@example.net'), auth: {psk: PSK}, ...opts.ini}, {random})
  const res = responder(opts.res, random)
  const timers: number[] = []
  const queue: Sent[] = []
  const counts = {'i->r': 0, 'r->i': 0}
  const p: Pair = {
    ini, res, now: start, sent: [], iEvents: [], rEvents: [], seenAs: opts.seenAs ?? CLIENT, lose: opts.lose ?? (() => false),
    feed(dir, actions, run = true) {
      take(dir, actions)
      if (run) p.run()
    },
    run(until = start + 120_000) {
      for (let steps = 0; steps < 10_000; steps++) {
        const s = queue.shift()
        if (s) {
          if (s.dir === 'i->r') {
            // After NAT detection the initiator sends from and to port 4500 (§2.23).
            const from = s.to.port === 4500 ? {...p.seenAs, port: 4500} : p.seenAs
            take('r', res.receive(s.data, from, p.now))
          } else take('i', ini.receive(s.data, p.now))
          continue
        }
        const next = Math.min(...timers.filter((t) => t > p.now))
        if (!(next <= until)) return
        p.now = next
        take('i', ini.tick(p.now))
        take('r', res.tick(p.now))
      }
      throw new Error('the loop did not settle')
    },
  }
  function take(side: 'i' | 'r', actions: Action[]): void {
    for (const a of actions) {
      if (a.type === 'send') {
        const dir = side === 'i' ? 'i->r' : 'r->i'
        const s: Sent = {dir, to: a.to, data: a.data, n: counts[dir]++}
        p.sent.push(s)
        if (!p.lose(s)) queue.push(s)
      } else if (a.type === 'timer') timers.push(a.at)
      else (side === 'i' ? p.iEvents : p.rEvents).push(a)
    }
  }
  take('i', ini.start(start))
  return p
}

/** The loop's gateway: PSK for client@example.net, leases by identity from 198.18.200.10 on. */
function responder(config: Partial<ResponderConfig> | undefined, random: (n: number) => Buffer): IkeResponder {
  const leases = new Map<string, string>()
  return new IkeResponder(
    {
      local: GATEWAY,
      id: idFromString('gw.example.net'),
      psk: (id) => (id.data.toString() === 'client@example.net' ? PSK : undefined),
      subnets: ['198.18.1.0/24'],
      lease: (id) => {
        const k = id.data.toString('hex')
        if (!leases.has(k)) leases.set(k, `198.18.200.${leases.size + 10}`)
        return leases.get(k)
      },
      dns: ['198.18.1.53'],
      ...config,
    },
    {random},
  )
}

/**
 * One responder and any number of initiators, each at its own address (datagrams go to the
 * initiator at their destination): several clients of one gateway, in memory.
 */
export interface Fleet {
  res: IkeResponder
  now: number
  rEvents: Action[]
  /** Every datagram the responder sent, with its destination. */
  toClients: {to: Endpoint; data: Buffer}[]
  /** Starts an initiator at `at` and runs the loop until nothing is in flight; its non-send actions. */
  connect(at: Endpoint, ini?: Partial<InitiatorConfig>): {ini: IkeInitiator; events: Action[]}
  /** Hands the responder actions made outside the loop (e.g. an initiator's `close`) and runs. */
  feed(from: Endpoint, actions: Action[]): void
  run(until?: number): void
}

export function fleet(opts: {res?: Partial<ResponderConfig>; seed?: number} = {}): Fleet {
  const random = seededRandom(opts.seed ?? 1)
  const res = responder(opts.res, random)
  const clients = new Map<string, {ini: IkeInitiator; events: Action[]}>()
  const queue: {to: 'r' | Endpoint; from: Endpoint; data: Buffer}[] = []
  const timers: number[] = []
  const f: Fleet = {
    res, now: 0, rEvents: [], toClients: [],
    connect(at, config) {
      const c = {ini: new IkeInitiator({local: at, gateway: GATEWAY, id: idFromString('client@example.net'), auth: {psk: PSK}, ...config}, {random}), events: []}
      clients.set(at.address, c)
      f.feed(at, c.ini.start(f.now))
      return c
    },
    feed(from, actions) {
      fromClient(from, actions)
      f.run()
    },
    run(until = f.now + 120_000) {
      for (let steps = 0; steps < 100_000; steps++) {
        const s = queue.shift()
        if (s) {
          if (s.to === 'r') take(res.receive(s.data, s.from, f.now), (a) => { f.toClients.push(a); queue.push({to: a.to, from: GATEWAY, data: a.data}) }, (a) => f.rEvents.push(a))
          else {
            const c = clients.get(s.to.address)
            if (c) fromClient(s.to, c.ini.receive(s.data, f.now))
          }
          continue
        }
        const next = Math.min(...timers.filter((t) => t > f.now))
        if (!(next <= until)) return
        f.now = next
        for (const [address, c] of clients) fromClient({address, port: 500}, c.ini.tick(f.now))
        take(res.tick(f.now), (a) => { f.toClients.push(a); queue.push({to: a.to, from: GATEWAY, data: a.data}) }, (a) => f.rEvents.push(a))
      }
      throw new Error('the loop did not settle')
    },
  }
  // After NAT detection an initiator sends from and to port 4500 (§2.23).
  function fromClient(from: Endpoint, actions: Action[]): void {
    const c = clients.get(from.address)
    take(actions, (a) => queue.push({to: 'r', from: {...from, port: a.to.port === 4500 ? 4500 : 500}, data: a.data}), (a) => c?.events.push(a))
  }
  function take(actions: Action[], send: (a: Extract<Action, {type: 'send'}>) => void, other: (a: Action) => void): void {
    for (const a of actions) {
      if (a.type === 'send') send(a)
      else if (a.type === 'timer') timers.push(a.at)
      else other(a)
    }
  }
  return f
}

export function only<T extends Action['type']>(events: Action[], type: T): Extract<Action, {type: T}>[] {
  return events.filter((a) => a.type === type) as Extract<Action, {type: T}>[]
}
