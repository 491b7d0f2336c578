import {type CodecError, TunkitError, fromSystemError} from '../../lib/errors.js'
import {nativeBinding} from '../../lib/io/native.js'
import {ipv4ToU32, isIPv4} from '../../lib/net/ip.js'
import {checkKeys} from '../codec/esp.js'

/** The addon's ESP part (native/esp.c); kept here, its only user. */
interface EspNative {
  espOpen(address: string, port: number, onIke: (batch: [Buffer, string, number][]) => void): [object, number]
  espAttachTun(h: object, fd: number): void
  espSendIke(h: object, data: Buffer, address: string, port: number): boolean
  espSendKeepalive(h: object, address: string, port: number): boolean
  espAddSa(h: object, out: boolean, spi: number, encr: number, keyBits: number, integ: number, encKey: Buffer, integKey: Buffer | null, peerAddress: string | null, peerPort: number, selectors: Buffer, sources: Buffer): number
  espRemoveSa(h: object, id: number): boolean
  espSetPeer(h: object, id: number, address: string, port: number): boolean
  espSetSeq(h: object, id: number, seq: number): void
  espStats(h: object, id: number): SaStats | null
  espTotals(h: object): EngineTotals
  espOnEvent(h: object, cb: ((type: EspEvent['type'], id: number) => void) | null): void
  espTrace(h: object, cb: ((records: EspTraceRecord[]) => void) | null): void
  espClose(h: object): void
  espPacketPair(): [number, number]
}

const native = (): EspNative => nativeBinding() as unknown as EspNative

export interface Endpoint {
  address: string
  port: number
}

/** An IPv4 range, inclusive: a traffic selector's addresses. */
export interface Selector {
  from: string
  to: string
}

export interface SaConfig {
  /** 'out': packets from the TUN whose destination the selectors hold; 'in': ESP with this SPI. */
  dir: 'in' | 'out'
  spi: Buffer
  encr: number
  encrKeyBits?: number
  integ?: number
  /** As IKE derives it (AEAD: the 4-byte salt at the end). */
  encKey: Buffer
  integKey?: Buffer
  /** Where an 'out' SA sends. */
  peer?: Endpoint
  /** 'out': the inner destinations routed to this SA; 'in': the inner sources it may carry. */
  selectors: Selector[]
  /** 'out': the inner sources it carries (absent: any). A packet goes to the newest SA that holds its destination and source. */
  sources?: Selector[]
  /**
   * 'out': the sequence number to start after (default 0). A test hook: near 2^32 − 2^16 it makes
   * the SA reach seq-soft, and a rekey, after a few packets.
   */
  seq?: number
}

export interface SaStats {
  packets: number
  /** Inner bytes. */
  bytes: number
  /** Out: the last sequence number sent; in: the highest accepted. */
  seq: number
  /** When the last authentic packet arrived (Date.now() scale; 0: none yet). */
  lastRxMs: number
  /** Dropped inbound packets, by cause; `dummy` counts next header 59 (RFC 4303 §2.6), dropped silently. */
  drops: {replay: number; auth: number; malformed: number; policy: number; dummy: number}
}

export interface EngineTotals {
  /** Datagrams whose SPI no inbound SA has, and TUN packets no usable outbound SA carries. */
  noSa: number
  keepalives: number
  ike: number
  /** Datagrams too short for an ESP header, or cut off by the receive buffer. */
  malformed: number
  /** Authentic packets with no TUN device attached yet. */
  noTun: number
  tunErrors: number
  /** Datagrams the socket refused (buffer full, too big, unreachable). */
  txErrors: number
}

/** The sequence number at which an outbound SA reports seq-soft (native/esp.c SEQ_SOFT: 2^32 − 2^16, no ESN). */
export const SEQ_SOFT = 2 ** 32 - 2 ** 16

export interface EspEvent {
  /** seq-soft: 2^32 − 2^16 numbers used, rekey now; seq-exhausted: the SA sends no more. */
  type: 'seq-soft' | 'seq-exhausted'
  id: number
}

/** One ESP packet for --trace: header fields and the first 20 bytes of the inner packet. */
export interface EspTraceRecord {
  dir: 'in' | 'out'
  spi: number
  seq: number
  /** The ESP packet's length (the UDP payload). */
  length: number
  inner: Buffer
}

function selectorBytes(sel: readonly Selector[]): Buffer {
  const b = Buffer.alloc(8 * sel.length)
  sel.forEach((s, i) => {
    if (!isIPv4(s.from) || !isIPv4(s.to)) throw new TunkitError('TK_UNSUPPORTED', `ESP selectors are IPv4 ranges, not ${s.from}-${s.to}`)
    const from = ipv4ToU32(s.from)
    const to = ipv4ToU32(s.to)
    if (from > to) throw new TunkitError('TK_INTERNAL', `selector ${s.from}-${s.to} is empty`)
    b.writeUInt32BE(from, 8 * i)
    b.writeUInt32BE(to, 8 * i + 4)
  })
  return b
}

/**
 * The ESP data plane: one UDP socket (RFC 3948 encapsulation) and a TUN device, the whole
 * per-packet path in the addon (native/esp.c). JavaScript sees IKE datagrams (non-ESP marker
 * stripped), sequence-number events and, only while a trace callback is set, trace records.
 * Keys go in through addSa and never come back out.
 */
export class EspEngine {
  private handle: object | null
  private ike: (data: Buffer, from: Endpoint) => void = () => {}

  private constructor(handle: object, readonly port: number) {
    this.handle = handle
  }

  static open(opts: {address: string; port: number; tunFd?: number}): EspEngine {
    let engine!: EspEngine
    try {
      const [handle, port] = native().espOpen(opts.address, opts.port, (batch) => {
        for (const [data, address, p] of batch) engine.ike(data, {address, port: p})
      })
      engine = new EspEngine(handle, port)
    } catch (e) {
      throw fromSystemError(e, `ESP: cannot open UDP ${opts.address}:${opts.port}`)
    }
    if (opts.tunFd !== undefined) engine.attachTun(opts.tunFd)
    return engine
  }

  private h(): object {
    if (!this.handle) throw new TunkitError('TK_CLOSED', 'the ESP engine is closed')
    return this.handle
  }

  /** The TUN device (the caller keeps and closes it, after close()); one per engine. */
  attachTun(fd: number): void {
    native().espAttachTun(this.h(), fd)
  }

  onIke(cb: (data: Buffer, from: Endpoint) => void): void {
    this.ike = cb
  }

  sendIke(data: Buffer, to: Endpoint): boolean {
    return native().espSendIke(this.h(), data, to.address, to.port)
  }

  sendKeepalive(to: Endpoint): boolean {
    return native().espSendKeepalive(this.h(), to.address, to.port)
  }

  /** Installs an SA; returns its id. The newest 'out' SA holding a packet's destination and source carries it (a rekey replaces the old SA for new packets). */
  addSa(c: SaConfig): number {
    try {
      checkKeys({suite: c, encKey: c.encKey, integKey: c.integKey})
    } catch (e) {
      throw new TunkitError((e as CodecError).code === 'UNSUPPORTED' ? 'TK_UNSUPPORTED' : 'TK_INTERNAL', `ESP SA: ${(e as Error).message}`)
    }
    if (c.spi.length !== 4) throw new TunkitError('TK_INTERNAL', 'an ESP SPI is 4 bytes')
    if (c.dir === 'out' && !c.peer) throw new TunkitError('TK_INTERNAL', 'an outbound SA needs the peer')
    if (c.dir === 'in' && (c.sources || c.seq)) throw new TunkitError('TK_INTERNAL', 'sources and seq are for outbound SAs')
    if (c.seq !== undefined && !(Number.isInteger(c.seq) && c.seq >= 0 && c.seq < 2 ** 32)) throw new TunkitError('TK_INTERNAL', `ESP sequence number ${c.seq} is out of range`)
    const h = this.h()
    try {
      const id = native().espAddSa(h, c.dir === 'out', c.spi.readUInt32BE(0), c.encr, c.encrKeyBits ?? 0, c.integ ?? 0, c.encKey, c.integKey ?? null, c.peer?.address ?? null, c.peer?.port ?? 0, selectorBytes(c.selectors), selectorBytes(c.sources ?? []))
      if (c.seq) native().espSetSeq(h, id, c.seq)
      return id
    } catch (e) {
      if (e instanceof TunkitError) throw e
      // EEXIST: an inbound SPI in use (the IKE layer picks another); ENOMEM.
      throw new TunkitError('TK_FAILED', `ESP SA ${c.spi.toString('hex')}: ${(e as Error).message}`, {cause: e})
    }
  }

  removeSa(id: number): boolean {
    return native().espRemoveSa(this.h(), id)
  }

  /** Where an 'out' SA sends from now on (the peer's NAT mapping changed). */
  setPeer(id: number, peer: Endpoint): boolean {
    return native().espSetPeer(this.h(), id, peer.address, peer.port)
  }

  /** Test hook: start an SA at a high sequence number (the last sent, or the highest accepted). */
  setSequence(id: number, seq: number): void {
    native().espSetSeq(this.h(), id, seq)
  }

  stats(id: number): SaStats | undefined {
    return native().espStats(this.h(), id) ?? undefined
  }

  totals(): EngineTotals {
    return native().espTotals(this.h())
  }

  onEvent(cb: ((e: EspEvent) => void) | null): void {
    native().espOnEvent(this.h(), cb && ((type, id) => cb({type, id})))
  }

  /** A callback per ESP packet both ways (--trace); null stops it, and costs nothing then. */
  trace(cb: ((r: EspTraceRecord) => void) | null): void {
    native().espTrace(this.h(), cb && ((records) => { for (const r of records) cb(r) }))
  }

  /** Frees the SAs (keys included) and the socket. The TUN descriptor stays the caller's. */
  close(): void {
    if (!this.handle) return
    native().espClose(this.handle)
    this.handle = null
  }
}

/** Two connected packet sockets ([a, b]): one end attached in place of a TUN device, the other read and written by a test. */
export function packetPair(): [number, number] {
  return native().espPacketPair()
}
