import {createSocket, type Socket} from 'node:dgram'
import {hostPort} from '../../lib/io/connect.js'
import {ListenError} from '../../lib/io/listen.js'
import type {Logger} from '../../lib/log.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import type {Action, ChildSa, Endpoint, ProtectedSa, SkObserver} from '../core/exchange.js'
import {ESP_TRACE} from '../../esp/trace.js'
import {suiteText, tsRanges, tsText} from '../core/describe.js'
import {IKE_TRACE, type IkeTraceRecord} from '../trace.js'
import {SEQ_SOFT, type EspEngine} from '../../esp/io/engine.js'

/** What the driver runs: the initiator or the responder, both sans-I/O (`receive`, `tick`). */
export interface Machine {
  receive(raw: Buffer, from: Endpoint, now: number): Action[]
  tick(now: number): Action[]
  /** The IKE_SA (the newest after rekeys) a CHILD_SA of IKE_SA `spiI` now lives on. */
  sa(spiI: Buffer): ProtectedSa | undefined
}

const TIMER_MS = 100
/** ESP liveness is read at most this often (a stats call per CHILD_SA): a DPD needs at least this much more silence. */
const LIVENESS_MS = 1000

/**
 * TUNKIT_ESP_SEQ_LIMIT=N, for tests only: each outbound SA starts N sequence numbers before
 * seq-soft, so its rekey for sequence exhaustion comes after N packets instead of 4 billion.
 */
const TEST_SEQ_LIMIT = Number(process.env.TUNKIT_ESP_SEQ_LIMIT)
const START_SEQ = Number.isInteger(TEST_SEQ_LIMIT) && TEST_SEQ_LIMIT > 0 && TEST_SEQ_LIMIT <= SEQ_SOFT ? SEQ_SOFT - TEST_SEQ_LIMIT : undefined

const NO_KEYS = Object.freeze({encI: Buffer.alloc(0), integI: Buffer.alloc(0), encR: Buffer.alloc(0), integR: Buffer.alloc(0)})

/** IKE's own port; NAT-T (and all ESP) goes to the plane's 4500 (RFC 3948). */
export const IKE_PORT = 500
export const NATT_PORT = 4500

interface Installed {
  ike: string
  child: ChildSa
  inId: number
  outId: number
  peer: Endpoint
  /** The last ESP arrival reported to the IKE layer. */
  lastRx: number
}

/**
 * Runs one IKE machine on real sockets: UDP 500 here, UDP 4500 through the ESP plane (which
 * hands IKE datagrams up and does ESP itself). Carries out the machine's actions, installs each
 * CHILD_SA in the plane as it comes up and removes it when deleted, and reports to `on`.
 * The clock given to the machines is the wall clock: certificate validity needs it.
 */
export class IkeDriver {
  private sock: Socket | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  /**
   * Every wake-up asked for and not yet due, ascending. A machine asks once for each time (a
   * ProtectedSa repeats no timer it already asked for), so a later one cannot be dropped in favour
   * of an earlier one: a client then never sent its DPD.
   */
  private wakes: number[] = []
  /** By our inbound SPI (hex): unique, as the machines draw SPIs not in it (`spiInUse`). */
  readonly installed = new Map<string, Installed>()
  /** Our inbound SPIs (hex) by IKE_SA (initiator SPI, hex), and by outbound engine SA: lookups a scan would make quadratic. */
  private readonly byIke = new Map<string, Set<string>>()
  private readonly byOutId = new Map<number, string>()
  private closed = false

  constructor(
    private readonly machine: Machine,
    readonly plane: EspEngine,
    private readonly o: {
      role: 'initiator' | 'responder'
      log: Logger
      tracer?: Tracer
      /** Actions the command reacts to (TUN, routes, events, exit); called after the driver's own handling. */
      on(a: Action): void
    },
  ) {
    plane.onIke((data, from) => this.receive(data, from))
    plane.onEvent((e) => this.onEspEvent(e))
    const tracer = o.tracer
    if (tracer) {
      plane.trace((r) => {
        const e = this.bySpi(r.spi)
        tracer.trace(r.dir, e ? hostPort(e.peer.address, e.peer.port) : '-', ESP_TRACE, r, r.length)
      })
    }
  }

  private livenessAt = 0

  /**
   * ESP that arrived counts as the peer being alive (RFC 7296 §2.4: DPD only when nothing came).
   * Read before a tick, where DPD is decided: a read every 5 s let DPDs out under steady traffic
   * with --dpd 2.
   */
  private reportLiveness(now: number): void {
    if (now - this.livenessAt < LIVENESS_MS) return
    this.livenessAt = now
    for (const e of this.installed.values()) {
      const rx = this.plane.stats(e.inId)?.lastRxMs ?? 0
      if (rx <= e.lastRx) continue
      e.lastRx = rx
      this.machine.sa(Buffer.from(e.ike, 'hex'))?.sawTraffic(rx)
    }
  }

  /** seq-soft: 2^32 − 2^16 sequence numbers used, so the CHILD_SA is rekeyed before it runs out. */
  private onEspEvent(ev: {type: 'seq-soft' | 'seq-exhausted'; id: number}): void {
    const k = this.byOutId.get(ev.id)
    const e = k === undefined ? undefined : this.installed.get(k)
    if (!e) return
    if (ev.type === 'seq-exhausted') return this.o.log.log('warn', `CHILD_SA ${e.child.spiI.toString('hex')}/${e.child.spiR.toString('hex')} used every sequence number; it sends nothing until its rekey`)
    this.run(this.machine.sa(Buffer.from(e.ike, 'hex'))?.rekeyChild(e.child.spiI, Date.now()) ?? [])
  }

  private bySpi(spi: number): Installed | undefined {
    for (const e of this.installed.values()) if (e.child.spiI.readUInt32BE(0) === spi || e.child.spiR.readUInt32BE(0) === spi) return e
    return undefined
  }

  /** Binds UDP 500 on `address` (port 0 in tests). */
  async listen(address: string, port = IKE_PORT): Promise<Endpoint> {
    const sock = createSocket({type: address.includes(':') ? 'udp6' : 'udp4'})
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(new ListenError(`UDP ${hostPort(address, port)}`, (e as NodeJS.ErrnoException).code ?? e.message)))
      sock.bind(port, address, () => resolve())
    })
    // A datagram the kernel could not deliver (ICMP unreachable) is not our problem: the machine retransmits.
    sock.on('error', (e) => this.o.log.log('debug', `UDP ${port}: ${e.message}`))
    sock.on('message', (data, rinfo) => this.receive(data, {address: rinfo.address, port: rinfo.port}))
    this.sock = sock
    const a = sock.address()
    return {address: a.address, port: a.port}
  }

  private receive(data: Buffer, from: Endpoint): void {
    if (this.closed) return
    // Traced after the machine had it: the line then shows what it found inside the SK.
    const actions = this.machine.receive(data, from, Date.now())
    this.trace('in', from, data)
    this.run(actions)
  }

  /** Carries out actions; `failed`, `established`… reach the command through `on`. */
  run(actions: Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          this.send(a.to, a.data)
          break
        case 'timer':
          this.arm(a.at)
          break
        case 'established':
          this.install(a.sa.spiI, a.sa.child, a.sa.peer)
          break
        case 'rekeyed':
        case 'child-up':
          this.install(a.spiI, a.child, undefined)
          break
        case 'ike-rekeyed':
          this.reindex(a.oldSpiI, a.sa.spiI)
          break
        case 'deleted':
          if (a.what === 'ike') this.uninstallIke(a.spiI)
          else this.uninstall(a.spis[0])
          break
        case 'failed':
          // An IKE_SA that failed (no answer to DPD or DELETE) takes its CHILD_SAs out of the plane.
          if (this.machine.sa(a.spiI)?.state === 'closed') this.uninstallIke(a.spiI)
          break
      }
      this.o.on(a)
    }
  }

  private send(to: Endpoint, data: Buffer): void {
    if (this.closed) return
    this.trace('out', to, data)
    if (to.port === NATT_PORT) this.plane.sendIke(data, to)
    else this.sock?.send(data, to.port, to.address)
  }

  private arm(at: number): void {
    // Wake-ups rounded up to TIMER_MS: a gateway's tick visits every SA, and 10 000 SAs with DPD
    // timers each would otherwise make it run thousands of times a second.
    at = Math.ceil(at / TIMER_MS) * TIMER_MS
    let i = 0
    for (let hi = this.wakes.length; i < hi;) {
      const mid = (i + hi) >>> 1
      if (this.wakes[mid] < at) i = mid + 1
      else hi = mid
    }
    if (this.wakes[i] === at) return
    this.wakes.splice(i, 0, at)
    if (i === 0) this.schedule()
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    const at = this.wakes[0]
    if (at === undefined || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      // Never earlier than asked: a machine told an earlier time would find nothing due and not ask again.
      const now = Math.max(Date.now(), at)
      let due = 0
      while (due < this.wakes.length && this.wakes[due] <= now) due++
      this.wakes.splice(0, due)
      this.reportLiveness(now)
      this.run(this.machine.tick(now))
      this.schedule()
    }, Math.max(0, at - Date.now()))
  }

  /** Where ESP for a CHILD_SA goes: to the IKE peer, always on 4500 (we always encapsulate). */
  private espPeer(peer: Endpoint): Endpoint {
    return {address: peer.address, port: peer.port === IKE_PORT ? NATT_PORT : peer.port}
  }

  /**
   * A CHILD_SA into the plane: inbound under our SPI with the peer's keys, outbound under the
   * peer's SPI with ours. ChildSa speaks in IKE roles (keys.encI: initiator to responder).
   */
  private install(ikeSpiI: Buffer, c: ChildSa, peer: Endpoint | undefined): void {
    const ike = ikeSpiI.toString('hex')
    const at = peer ?? this.machine.sa(ikeSpiI)?.peer
    if (!at) return
    const init = this.o.role === 'initiator'
    const [ours, theirs] = init ? [c.spiI, c.spiR] : [c.spiR, c.spiI]
    // The first CHILD_SA comes in `established` and again in `child-up`.
    if (this.installed.has(ours.toString('hex'))) return
    const k = c.keys
    const [sendEnc, sendInteg, recvEnc, recvInteg] = init ? [k.encI, k.integI, k.encR, k.integR] : [k.encR, k.integR, k.encI, k.integI]
    const [localTs, remoteTs] = [tsRanges(init ? c.tsI : c.tsR), tsRanges(init ? c.tsR : c.tsI)]
    const suite = {encr: c.suite.encr, encrKeyBits: c.suite.encrKeyBits, integ: c.suite.integ || undefined}
    const to = this.espPeer(at)
    const inId = this.plane.addSa({dir: 'in', spi: ours, ...suite, encKey: recvEnc, integKey: recvInteg.length ? recvInteg : undefined, selectors: remoteTs})
    const outId = this.plane.addSa({dir: 'out', spi: theirs, ...suite, encKey: sendEnc, integKey: sendInteg.length ? sendInteg : undefined, peer: to, selectors: remoteTs, sources: localTs, seq: START_SEQ})
    const key = ours.toString('hex')
    this.installed.set(key, {ike, child: c, inId, outId, peer: to, lastRx: 0})
    this.byOutId.set(outId, key)
    let set = this.byIke.get(ike)
    if (!set) this.byIke.set(ike, (set = new Set()))
    set.add(key)
    // The keys live in the plane now; a gateway has no `--export` to show them, so it keeps no copy.
    if (!init) c.keys = NO_KEYS
  }

  /**
   * Removes the CHILD_SA whose inbound SPI is `ours`. Never by the peer's SPI: peers pick theirs,
   * so two clients' can be equal, and one client's DELETE then took the other's ESP away.
   */
  private uninstall(ours: Buffer): void {
    this.remove(ours.toString('hex'))
  }

  private remove(k: string): void {
    const e = this.installed.get(k)
    if (!e) return
    this.plane.removeSa(e.inId)
    this.plane.removeSa(e.outId)
    this.installed.delete(k)
    this.byOutId.delete(e.outId)
    const set = this.byIke.get(e.ike)
    set?.delete(k)
    if (set?.size === 0) this.byIke.delete(e.ike)
  }

  /** An IKE_SA rekey (§2.8): its CHILD_SAs now belong to the new IKE_SA. */
  private reindex(oldSpiI: Buffer, spiI: Buffer): void {
    const [from, to] = [oldSpiI.toString('hex'), spiI.toString('hex')]
    const moved = this.byIke.get(from)
    if (!moved) return
    this.byIke.delete(from)
    const set = this.byIke.get(to) ?? new Set()
    for (const k of moved) {
      set.add(k)
      const e = this.installed.get(k)
      if (e) e.ike = to
    }
    this.byIke.set(to, set)
  }

  private uninstallIke(spiI: Buffer): void {
    for (const k of [...(this.byIke.get(spiI.toString('hex')) ?? [])]) this.remove(k)
  }

  /** The inner payloads of SK messages, by datagram, as the machine sealed or opened them (only with --trace). */
  private readonly inner = new WeakMap<Buffer, NonNullable<IkeTraceRecord['inner']>>()

  /** For the machine's `onPlain` option: set it only when tracing. */
  readonly onPlain: SkObserver = (_dir, message, inner) => {
    this.inner.set(message, inner)
  }

  /** IKE messages: header and the payload chain, SK contents as the machine saw them. */
  private trace(dir: 'in' | 'out', peer: Endpoint, data: Buffer): void {
    this.o.tracer?.trace(dir, hostPort(peer.address, peer.port), IKE_TRACE, {data, inner: this.inner.get(data)}, data.length)
  }

  /** Lines for the log: one per CHILD_SA. */
  static childLine(c: ChildSa, role: 'initiator' | 'responder'): string {
    const [ours, theirs] = role === 'initiator' ? [c.spiI, c.spiR] : [c.spiR, c.spiI]
    const [local, remote] = role === 'initiator' ? [c.tsI, c.tsR] : [c.tsR, c.tsI]
    return `CHILD_SA ESP ${suiteText(c.suite)}, SPIs in ${ours.toString('hex')} out ${theirs.toString('hex')}, ${tsText(local)} === ${tsText(remote)}`
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.plane.trace(null)
    this.plane.onEvent(null)
    this.sock?.close()
    this.sock = undefined
  }
}
