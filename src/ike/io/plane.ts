import type {EspTraceRecord} from '../../esp/io/engine.js'
import type {Endpoint} from '../core/exchange.js'

/**
 * What the IKE layer needs of the ESP data plane (src/esp/io/engine.ts): it owns UDP port 4500,
 * hands up IKE datagrams (non-ESP marker stripped, RFC 3948) and does ESP itself.
 */
export interface EspSaSpec {
  dir: 'in' | 'out'
  spi: Buffer
  encr: number
  encrKeyBits?: number
  integ?: number
  encKey: Buffer
  integKey?: Buffer
  peer?: Endpoint
  /** 'out': inner destinations routed to this SA; 'in': inner sources it may carry. */
  selectors: {from: string; to: string}[]
}

export interface EspStats {
  packets: number
  bytes: number
  seq: number
  lastRxMs: number
  drops: {replay: number; auth: number; malformed: number; policy: number}
}

export interface EspPlane {
  readonly port: number
  onIke(cb: (data: Buffer, from: Endpoint) => void): void
  sendIke(data: Buffer, to: Endpoint): boolean
  sendKeepalive(to: Endpoint): boolean
  attachTun(fd: number): void
  addSa(spec: EspSaSpec): number
  removeSa(id: number): boolean
  setPeer(id: number, peer: Endpoint): boolean
  stats(id: number): EspStats | undefined
  onEvent(cb: ((e: {type: 'seq-soft' | 'seq-exhausted'; id: number}) => void) | null): void
  trace(cb: ((r: EspTraceRecord) => void) | null): void
  close(): void
}
