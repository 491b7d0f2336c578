import {createSocket, type Socket} from 'node:dgram'
import {EspEngine, packetPair} from '../../../src/esp/io/engine.js'
import {nativeBinding, READ_HEADROOM} from '../../../src/lib/io/native.js'

/** Waits for `pred` to hold, polling; throws after `ms` naming `what`. */
export async function until<T>(what: string, pred: () => T | undefined | false, ms = 3000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = pred()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * A real engine on 127.0.0.1 with a packet socket pair in place of its TUN device, and a UDP
 * socket as its peer: what the engine writes "to the TUN" lands in `tun`, what it sends in `udp`.
 */
export class Harness {
  readonly engine: EspEngine
  readonly peer: Socket
  readonly tun: Buffer[] = []
  readonly udp: Buffer[] = []
  private readonly fds: [number, number]
  private readonly reader: object

  private constructor(peer: Socket) {
    this.peer = peer
    this.engine = EspEngine.open({address: '127.0.0.1', port: 0})
    this.fds = packetPair()
    this.engine.attachTun(this.fds[0])
    this.reader = nativeBinding().startReading(this.fds[1], (_err, packets) => this.tun.push(...packets.map((p) => p.subarray(READ_HEADROOM))))
    peer.on('message', (m) => this.udp.push(m))
  }

  static async open(): Promise<Harness> {
    const peer = createSocket('udp4')
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r))
    return new Harness(peer)
  }

  get peerEndpoint(): {address: string; port: number} {
    return {address: '127.0.0.1', port: this.peer.address().port}
  }

  /** A datagram from the peer to the engine. */
  send(d: Buffer): Promise<void> {
    return new Promise((res, rej) => this.peer.send(d, this.engine.port, '127.0.0.1', (e) => (e ? rej(e) : res())))
  }

  /** A packet into the engine's TUN side (as if the kernel routed it there). */
  inject(packet: Buffer): void {
    if (nativeBinding().write(this.fds[1], packet) < 0) throw new Error('the packet pair is full')
  }

  async nextTun(ms = 3000): Promise<Buffer> {
    await until('a packet on the TUN side', () => this.tun.length > 0, ms)
    return this.tun.shift()!
  }

  async nextUdp(ms = 3000): Promise<Buffer> {
    await until('a datagram at the peer', () => this.udp.length > 0, ms)
    return this.udp.shift()!
  }

  close(): void {
    this.engine.close()
    nativeBinding().stopReading(this.reader)
    nativeBinding().close(this.fds[0])
    nativeBinding().close(this.fds[1])
    this.peer.close()
  }
}
