import {createSocket} from 'node:dgram'
import {Resolver} from 'node:dns/promises'
import {readFileSync} from 'node:fs'
import {isIP} from 'node:net'
import {TunkitError} from '../../lib/errors.js'
import {hostPort} from '../../lib/io/connect.js'
import {resolvconfAdd, resolvconfDelete} from '../../lib/io/resolvconf.js'
import type {Logger} from '../../lib/log.js'
import type {Tracer} from '../../lib/trace/tracer.js'
import {MAX_DNS, parseCidr4, routeProblem, type Cidr} from '../../vpn/core/pushed.js'
import type {Action, ChildSa, Established} from '../core/exchange.js'
import {rangeToCidrs, suiteText, tsRanges} from '../core/describe.js'
import {IkeInitiator, type InitiatorConfig} from '../core/initiator.js'
import {IKE_PORT, IkeDriver, NATT_PORT} from './driver.js'
import type {EspEngine} from '../../esp/io/engine.js'
import {IpsecDevice} from './tun.js'

/** strongSwan's default: NAT mappings for UDP live 30 s or more. */
const KEEPALIVE_MS = 20_000

export interface ClientOptions {
  /** The gateway's IP address. */
  gateway: string
  /** Our address toward it; found by asking the kernel's routing when absent. */
  bind?: string
  /** Authentication and identities of the initiator (InitiatorConfig without the addresses). */
  auth: Omit<InitiatorConfig, 'local' | 'gateway'>
  dev: string
  /** --accept-routes: pushed subnets to route only when inside these (null: the default policy). */
  accept: Cidr[] | null
  plane: EspEngine
  log: Logger
  tracer?: Tracer
  /** The IKE_SA and first CHILD_SA must be up within this (ms), or start() fails with TK_TIMEOUT. */
  setupMs?: number
  /** --dns-apply: resolvconf's path; the pushed DNS servers go to it while the SA is up. */
  resolvconf?: string
  /** Every action after the client's own handling, for events and the export. */
  on?(a: Action, c: IkeClient): void
}

/**
 * `key-exchange --gateway`: one IKE_SA with the gateway; its CHILD_SAs carry the TUN device's
 * traffic. The device is made when the first CHILD_SA is up, with the pushed address, and routes
 * for every subnet the gateway narrowed TSr to.
 */
export class IkeClient {
  private machine!: IkeInitiator
  private driver!: IkeDriver
  private dev: IpsecDevice | undefined
  established: Established | undefined
  private settle!: {resolve(e: Established): void; reject(e: Error): void}
  /** Resolves when the IKE_SA ends after being up (the error says why; undefined: we closed it). */
  readonly ended: Promise<TunkitError | undefined>
  private end!: (e: TunkitError | undefined) => void
  /** Resolves with every CHILD_SA once the first is up and each further one asked for is up or refused. */
  readonly children: Promise<ChildSa[]>
  private up: ChildSa[] = []
  private waiting = 0
  private childrenDone!: (c: ChildSa[]) => void
  private routed = new Set<string>()
  private keepalive: ReturnType<typeof setInterval> | undefined
  /** The device whose DNS servers resolvconf holds (removed in stop()). */
  private dnsOn: string | undefined

  constructor(private readonly o: ClientOptions) {
    this.ended = new Promise((r) => (this.end = r))
    this.children = new Promise((r) => (this.childrenDone = r))
  }

  private childSettled(c?: ChildSa): void {
    if (this.waiting <= 0) return // settled already: a later CHILD_SA is not part of the set-up
    if (c) this.up.push(c)
    if (--this.waiting === 0) this.childrenDone(this.up)
  }

  /** Resolves once the IKE_SA and its first CHILD_SA are up and the device is configured. */
  async start(): Promise<Established> {
    const o = this.o
    const bind = o.bind ?? (await sourceAddress(o.gateway))
    // We always carry ESP in UDP (the plane is a UDP socket): like strongSwan's encap=yes, our
    // NAT_DETECTION_SOURCE_IP names a port we do not use, so both ends see a NAT and float to 4500.
    const local = {address: bind, port: 0}
    this.machine = new IkeInitiator({...o.auth, local, gateway: {address: o.gateway, port: IKE_PORT}, onPlain: o.tracer && ((...a) => this.driver.onPlain(...a))}, {spiInUse: (spi) => this.driver.installed.has(spi.toString('hex'))})
    this.driver = new IkeDriver({receive: (raw, _from, now) => this.machine.receive(raw, now), tick: (now) => this.machine.tick(now), sa: () => this.machine.ikeSa}, o.plane, {
      role: 'initiator',
      log: o.log,
      tracer: o.tracer,
      on: (a) => this.onAction(a),
    })
    await this.driver.listen(bind, 0)
    const up = new Promise<Established>((resolve, reject) => (this.settle = {resolve, reject}))
    this.driver.run(this.machine.start(Date.now()))
    if (!o.setupMs) return up
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TunkitError('TK_TIMEOUT', `the gateway ${o.gateway} did not answer ${this.machine.ikeSa ? 'IKE_AUTH' : 'IKE_SA_INIT'} within ${Math.round(o.setupMs! / 100) / 10} s`)), o.setupMs)
    })
    return Promise.race([up, late]).finally(() => clearTimeout(timer))
  }

  private onAction(a: Action): void {
    try {
      this.handle(a)
    } catch (e) {
      this.fail(e as TunkitError)
    }
    this.o.on?.(a, this)
  }

  private handle(a: Action): void {
    const log = this.o.log
    switch (a.type) {
      case 'established': {
        const sa = a.sa
        this.established = sa
        log.log('info', `IKE_SA up with ${sa.peerId} at ${hostPort(sa.peer.address, sa.peer.port)}: ${suiteText(sa.ike)}, SPIs ${sa.spiI.toString('hex')}/${sa.spiR.toString('hex')}${sa.nat.local || sa.nat.remote ? ', ESP in UDP' : ''}`)
        if (!sa.vip) throw new TunkitError('TK_PROTOCOL_ERROR', 'the gateway leased no internal address (no INTERNAL_IP4_ADDRESS in its CFG_REPLY)')
        this.dev = IpsecDevice.open(this.o.dev)
        this.o.plane.attachTun(this.dev.fd)
        this.dev.configure(sa.vip, 32)
        log.log('info', `${IkeDriver.childLine(sa.child, 'initiator')}`)
        this.routeChild(sa.child.tsR)
        // Each server is a line of resolv.conf: a few, once each (a gateway could push 256).
        const dns = [...new Set(sa.dns)].slice(0, MAX_DNS)
        if (this.o.resolvconf && dns.length) {
          resolvconfAdd(this.o.resolvconf, this.dev.name, dns)
          this.dnsOn = this.dev.name
        }
        log.log('info', `address ${sa.vip} on ${this.dev.name}${dns.length ? `, DNS ${dns.join(' ')} (${this.dnsOn ? 'applied with resolvconf' : 'not applied'})` : this.o.resolvconf ? ', no DNS server pushed' : ''}`)
        // RFC 3948 §4: keep the NAT mapping of our UDP 4500 open while ESP is idle.
        if (sa.nat.local) this.keepalive = setInterval(() => this.o.plane.sendKeepalive({address: sa.peer.address, port: NATT_PORT}), KEEPALIVE_MS)
        this.settle.resolve(sa)
        this.waiting = (sa.moreChildren ?? 0) + 1
        this.childSettled(sa.child)
        break
      }
      case 'rekeyed':
        this.o.log.log('info', `rekeyed: ${IkeDriver.childLine(a.child, 'initiator')}`)
        break
      case 'child-up':
        // Further CHILD_SAs (one per pushed policy, seed 002); the first was logged and routed above.
        if (!this.dev || a.child === this.established?.child) break
        log.log('info', IkeDriver.childLine(a.child, 'initiator'))
        this.routeChild(a.child.tsR)
        this.childSettled(a.child)
        break
      case 'child-failed':
        log.log('warn', a.error.message, {code: a.error.code})
        if (this.established) this.childSettled()
        break
      case 'failed':
        this.fail(a.error)
        break
      case 'deleted':
        if (a.what === 'ike') {
          log.log('info', `IKE_SA deleted by ${a.by === 'us' ? 'us' : 'the gateway'}`)
          if (a.by === 'peer') this.fail(new TunkitError('TK_CLOSED', 'the gateway deleted the IKE_SA'))
          else this.end(undefined)
        } else log.log('info', `CHILD_SA ${a.spis.map((s) => s.toString('hex')).join('/')} deleted by ${a.by === 'us' ? 'us' : 'the gateway'}`)
        break
    }
  }

  /** Routes for the narrowed TSr, each checked like a portal's pushed routes. */
  private routeChild(ts: Established['child']['tsR']): void {
    for (const r of tsRanges(ts)) {
      for (const net of rangeToCidrs(r.from, r.to)) {
        if (this.routed.has(net)) continue
        const why = routeProblem(parseCidr4(net)!, {accept: this.o.accept, avoid: [this.o.gateway]})
        if (why) {
          this.o.log.log('warn', `not routing ${net} into the tunnel: ${why}`)
          continue
        }
        this.dev!.route(net)
        this.routed.add(net)
        this.o.log.log('info', `route ${net} via ${this.dev!.name}`)
      }
    }
  }

  private fail(e: TunkitError): void {
    // Before start() resolves (e.g. resolvconf or `ip` failing while the SA comes up) it rejects;
    // after, `ended` tells. Settling a settled promise does nothing.
    this.settle.reject(e)
    if (this.established) this.end(e)
  }

  /** Sends DELETE for the IKE_SA and waits for its answer, at most `graceMs`. */
  async stop(graceMs = 1000): Promise<void> {
    const sa = this.machine?.ikeSa
    if (sa && sa.state === 'established') {
      this.driver.run(sa.close(Date.now()))
      await Promise.race([this.ended, new Promise((r) => setTimeout(r, graceMs).unref())])
    }
    clearInterval(this.keepalive)
    if (this.dnsOn) {
      try {
        resolvconfDelete(this.o.resolvconf!, this.dnsOn)
      } catch (e) {
        this.o.log.log('warn', (e as Error).message)
      }
      this.dnsOn = undefined
    }
    this.driver?.close()
    this.dev?.close()
    this.dev = undefined
  }
}

/**
 * --gateway as an IPv4 address: /etc/hosts, then DNS within `timeoutMs`. Not getaddrinfo (lib/io/
 * connect's resolve): a lookup its resolver never answers cannot be cancelled, and its thread
 * holds the process's exit for resolv.conf's timeout × attempts (10 s by default) after ours.
 * c-ares (dns.Resolver) is cancelled at the bound and tells NXDOMAIN from no answer.
 */
export async function resolveGateway(name: string, timeoutMs: number): Promise<string> {
  if (isIP(name)) return name
  const listed = fromHostsFile(name)
  if (listed) return listed
  const r = new Resolver({timeout: timeoutMs, tries: 1})
  const timer = setTimeout(() => r.cancel(), timeoutMs)
  try {
    const [address] = await r.resolve4(name)
    if (address) return address
    throw Object.assign(new Error('no address'), {code: 'ENODATA'})
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? ''
    const why = DNS_FAILURES[code] ?? (code === 'ETIMEOUT' || code === 'ECANCELLED' ? `no answer within ${timeoutMs / 1000} s` : code || String(e))
    throw new TunkitError('TK_HOST_NOT_FOUND', `--gateway ${name} does not resolve: ${why}`, {cause: e})
  } finally {
    clearTimeout(timer)
  }
}

const DNS_FAILURES: Readonly<Record<string, string>> = {
  ENOTFOUND: 'no such name (NXDOMAIN)',
  ENODATA: 'the name has no IPv4 address',
  ESERVFAIL: 'the DNS server failed (SERVFAIL)',
  EREFUSED: 'the DNS server refused the query',
  ECONNREFUSED: 'no DNS server answers (connection refused)',
}

/** The first IPv4 address /etc/hosts gives `name` (names compare without case). */
function fromHostsFile(name: string): string | undefined {
  let text: string
  try {
    text = readFileSync('/etc/hosts', 'utf8')
  } catch {
    return undefined
  }
  const want = name.toLowerCase().replace(/\.$/, '')
  for (const line of text.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/)
    if (isIP(address) === 4 && names.some((n) => n.toLowerCase() === want)) return address
  }
  return undefined
}

/** The source address the kernel picks toward `to` (a connected UDP socket sends nothing). */
async function sourceAddress(to: string): Promise<string> {
  const s = createSocket(to.includes(':') ? 'udp6' : 'udp4')
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject)
      s.connect(IKE_PORT, to, () => resolve())
    })
    return s.address().address
  } catch (e) {
    throw new TunkitError('TK_HOST_UNREACHABLE', `no route to the gateway ${to}: ${(e as Error).message}`)
  } finally {
    s.close()
  }
}
