import {randomBytes} from 'node:crypto'
import {createSocket, type Socket} from 'node:dgram'
import {decodeStun, encodeStun, mappedOf, StunMethod, type StunMessage, type TransportAddress} from '../codec/message.js'
import {CodecError, ConnectError} from '../../lib/errors.js'
import type {Logger} from '../../lib/log.js'
import {classifyNat, type Classification, type Observations} from '../core/classify.js'
import {STUN_TRACE} from '../trace.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {hostPort} from '../../lib/io/connect.js'
import {startListener} from '../../lib/io/listen.js'

/** No answer from the STUN server, or an ICMP error instead of one. */
export class ServerUnreachable extends ConnectError {
  override name = 'ServerUnreachable'
  constructor(message: string, options?: {cause?: unknown}) {
    super('TK_HOST_UNREACHABLE', message, options)
  }
}

/** Discovery's tunables, in seconds; the nat-discover flags show these. */
export const DISCOVER_DEFAULTS = {
  timeout: 5,
  /** 0 = skip the binding-lifetime test. */
  lifetime: 0,
}

export interface DiscoverOptions {
  server: TransportAddress
  bind?: string
  /** Whole run, seconds (the lifetime test excepted). */
  timeout: number
  /** Longest binding lifetime to test, seconds; 0 skips the test. */
  lifetime: number
  log: Logger
  tracer?: Tracer
}

export interface Discovery extends Classification {
  schema: 1
  server: {address: string; rfc5780: boolean; otherAddress: string | null; software: string | null}
  localAddress: string
  mappedAddress: string | null
  hairpinning: boolean | null
  bindingLifetimeSec: number | null
  durationMs: number
}

type Reply = StunMessage & {from: TransportAddress; rttMs: number}

/** One UDP socket with STUN transactions on it (RFC 8489 section 6.2.1 retransmission). */
class Endpoint {
  readonly sock: Socket
  private pending = new Map<string, (r: Reply | null) => void>()
  /** Requests that reach us (hairpin test), by transaction id. */
  incoming = new Map<string, () => void>()
  icmpError: string | null = null

  constructor(private readonly o: DiscoverOptions, private readonly family: 'udp4' | 'udp6') {
    this.sock = createSocket(family)
    this.sock.on('message', (msg, r) => this.onMessage(msg, {address: r.address, port: r.port}))
  }

  /** Rejects with a ListenError (an address not on this machine, say) before anything is sent. */
  bind(address?: string): Promise<TransportAddress> {
    const any = this.family === 'udp6' ? '::' : '0.0.0.0'
    return startListener(this.sock, address ?? any, 0, (e) => (this.icmpError = e.code ?? e.message))
  }

  close(): void {
    for (const done of this.pending.values()) done(null)
    try {
      this.sock.close()
    } catch {
      // never bound: nothing to close
    }
  }

  /** Sends at 0, RTO, 3 RTO, 7 RTO ... until `tries` sends, then waits `lastWait` RTOs more. */
  request(to: TransportAddress, extra: Partial<StunMessage>, rtoMs: number, tries: number, lastWait: number, deadline: number, transactionId: Buffer = randomBytes(12)): Promise<Reply | null> {
    const data = encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId, cookie: true, ...extra}, {fingerprint: true})
    const key = transactionId.toString('hex')
    const t0 = Date.now()
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout
      let sent = 0
      const finish = (r: Reply | null): void => {
        clearTimeout(timer)
        this.pending.delete(key)
        resolve(r)
      }
      this.pending.set(key, (r) => finish(r && {...r, rttMs: Date.now() - t0}))
      const send = (): void => {
        if (Date.now() >= deadline) return finish(null)
        this.o.tracer?.trace('out', hostPort(to.address, to.port), STUN_TRACE, decodeStun(data), data.length)
        this.sock.send(data, to.port, to.address)
        sent++
        const wait = sent < tries ? rtoMs * 2 ** (sent - 1) : rtoMs * lastWait
        timer = setTimeout(sent < tries ? send : () => finish(null), Math.min(wait, Math.max(0, deadline - Date.now())))
      }
      send()
    })
  }

  private onMessage(msg: Buffer, from: TransportAddress): void {
    let m: StunMessage
    try {
      m = decodeStun(msg)
    } catch (e) {
      if (e instanceof CodecError) return
      throw e
    }
    this.o.tracer?.trace('in', hostPort(from.address, from.port), STUN_TRACE, m, msg.length)
    const key = m.transactionId.toString('hex')
    if (m.klass === 'request') return this.incoming.get(key)?.()
    this.pending.get(key)?.({...m, from, rttMs: 0})
  }
}

const fmt = (a?: TransportAddress): string | null => (a ? hostPort(a.address, a.port) : null)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** RFC 5780 section 4: mapping, filtering, hairpinning and binding lifetime. */
export async function discover(o: DiscoverOptions): Promise<Discovery> {
  const started = Date.now()
  const deadline = started + o.timeout * 1000
  const family = o.server.address.includes(':') ? 'udp6' : 'udp4'
  const eps: Endpoint[] = []
  const endpoint = async (): Promise<[Endpoint, TransportAddress]> => {
    const ep = new Endpoint(o, family)
    eps.push(ep)
    return [ep, await ep.bind(o.bind)]
  }
  try {
    const [a, localA] = await endpoint()
    // Test I, with the standard initial RTO of 500 ms (RFC 8489): we know nothing of the path yet.
    const r1 = await a.request(o.server, {}, 500, 7, 16, deadline)
    if (a.icmpError) throw new ServerUnreachable(`${hostPort(o.server.address, o.server.port)}: ${a.icmpError}`)
    const local = {address: o.bind && o.bind !== '0.0.0.0' && o.bind !== '::' ? localA.address : await sourceAddressFor(o.server, family), port: localA.port}
    if (!r1) {
      const icmp = await icmpCheck(o.server, family)
      if (icmp) throw new ServerUnreachable(`${hostPort(o.server.address, o.server.port)}: ${icmp}`)
      const c = classifyNat({local, hairpinning: null, bindingLifetimeSec: null, otherAddressKnown: false})
      return {schema: 1, ...c, server: {address: fmt(o.server)!, rfc5780: false, otherAddress: null, software: null},
        localAddress: fmt(local)!, mappedAddress: null, hairpinning: null, bindingLifetimeSec: null, durationMs: Date.now() - started}
    }
    // `local` is the kernel's own source address for this path, so mapped === local means no NAT.
    // From here on the RTT is known: retransmit after 2 RTT (25 ms at least), give up after ~8 RTO.
    const rto = Math.min(500, Math.max(25, 2 * r1.rttMs))
    const quick = (ep: Endpoint, to: TransportAddress, extra: Partial<StunMessage> = {}, txid?: Buffer): Promise<Reply | null> =>
      ep.request(to, extra, rto, 3, 4, deadline, txid)
    const mapped1 = mappedOf(r1)
    const other = r1.otherAddress ?? r1.changedAddress
    const obs: Observations = {local, mapped1, hairpinning: null, bindingLifetimeSec: null, otherAddressKnown: !!other}

    const mappingTests = async (): Promise<void> => {
      if (!other) return
      const r2 = await quick(a, {address: other.address, port: o.server.port})
      obs.mapped2 = r2 ? mappedOf(r2) : undefined
      if (obs.mapped2 && mapped1 && (obs.mapped2.address !== mapped1.address || obs.mapped2.port !== mapped1.port)) {
        const r3 = await quick(a, other)
        obs.mapped3 = r3 ? mappedOf(r3) : undefined
      }
    }
    // Filtering on a fresh binding that has only ever talked to the primary address.
    const filteringTests = async (): Promise<void> => {
      if (!other) return
      const [b] = await endpoint()
      if (!(await quick(b, o.server))) return
      const [both, port] = await Promise.all([
        quick(b, o.server, {changeRequest: {ip: true, port: true}}),
        quick(b, o.server, {changeRequest: {ip: false, port: true}}),
      ])
      obs.filterChangeIpPort = !!both && both.from.address === other.address
      obs.filterChangePort = !!port && port.from.port === other.port
    }
    // Hairpinning (RFC 5780 section 4.5): a request from another local socket to our own mapped
    // address must come back in through the NAT to the first socket.
    const hairpinTest = async (): Promise<void> => {
      if (!mapped1) return
      const [c] = await endpoint()
      const txid = randomBytes(12)
      let hit = false
      a.incoming.set(txid.toString('hex'), () => (hit = true))
      await quick(c, mapped1, {}, txid)
      obs.hairpinning = hit
    }
    await Promise.all([mappingTests(), filteringTests(), hairpinTest()])
    if (o.lifetime > 0 && mapped1) obs.bindingLifetimeSec = await lifetimeTest(o, endpoint, rto)
    const c = classifyNat(obs)
    return {
      schema: 1, ...c,
      server: {address: fmt(o.server)!, rfc5780: !!r1.otherAddress, otherAddress: fmt(other), software: r1.software ?? null},
      localAddress: fmt(local)!, mappedAddress: fmt(mapped1), hairpinning: obs.hairpinning, bindingLifetimeSec: obs.bindingLifetimeSec,
      durationMs: Date.now() - started,
    }
  } finally {
    for (const ep of eps) ep.close()
  }
}

/**
 * RFC 5780 section 4.6, in parallel: for each idle time T, bind, learn the mapping, stay silent
 * for T, then ask the server (from another socket, with RESPONSE-PORT) to answer the old mapping.
 * Returns the longest T before the first binding that did not survive.
 */
async function lifetimeTest(o: DiscoverOptions, endpoint: () => Promise<[Endpoint, TransportAddress]>, rto: number): Promise<number | null> {
  const steps = [2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300].filter((t) => t <= o.lifetime)
  if (!steps.length) return null
  const results = await Promise.all(steps.map(async (t) => {
    const [x] = await endpoint()
    const far = Date.now() + (t + 10) * 1000
    const first = await x.request(o.server, {}, rto, 3, 4, far)
    const m = first && mappedOf(first)
    if (!m) return false
    await sleep(t * 1000)
    const [y] = await endpoint()
    let alive = false
    const wait = new Promise<void>((res) => {
      x.sock.once('message', () => {
        alive = true
        res()
      })
      setTimeout(res, rto * 8)
    })
    void y.request(o.server, {responsePort: m.port}, rto, 3, 4, Date.now() + rto * 8)
    await wait
    return alive
  }))
  // The lifetime is the last step before the first failure: a later success is noise, not proof.
  const firstDead = results.indexOf(false)
  if (firstDead === 0) return null
  return steps[firstDead < 0 ? steps.length - 1 : firstDead - 1]
}

/** The kernel's choice of source address towards the server: connecting a UDP socket sends nothing. */
function sourceAddressFor(server: TransportAddress, family: 'udp4' | 'udp6'): Promise<string> {
  const s = createSocket(family)
  return new Promise((res) => {
    s.on('error', () => {
      s.close()
      res(family === 'udp4' ? '0.0.0.0' : '::')
    })
    s.connect(server.port, server.address, () => {
      const a = s.address().address
      s.close()
      res(a)
    })
  })
}

/**
 * Silence means "UDP blocked"; an ICMP error means the server is not there. Only a connected UDP
 * socket hears ICMP errors, so one more request goes out on one.
 */
function icmpCheck(server: TransportAddress, family: 'udp4' | 'udp6'): Promise<string | null> {
  const s = createSocket(family)
  return new Promise((res) => {
    const done = (v: string | null): void => {
      clearTimeout(t)
      s.close()
      res(v)
    }
    const t = setTimeout(() => done(null), 500)
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'port unreachable (ICMP)' : e.code ?? e.message))
    s.connect(server.port, server.address, () => {
      s.send(encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId: randomBytes(12), cookie: true}))
    })
  })
}
