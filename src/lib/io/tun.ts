import {EventEmitter} from 'node:events'
import {finish, finishVnet, fromVnet, toVnet, VNET_HDR_LEN} from '../../inet/codec/offload.js'
import {nativeBinding as binding, READ_HEADROOM} from './native.js'

/** The device can no longer be read: code TUN_READ_FAILED; `errno` is the system's name for the
 * cause (EBADFD once the interface has been deleted, EIO). */
export class TunError extends Error {
  override readonly name = 'TunError'
  constructor(readonly code: 'TUN_READ_FAILED', readonly errno: string, message: string) {
    super(message)
  }
}

/** In a packet's flags from the device: READ_HEADROOM bytes in front of it are free (never sent). */
export const HAS_ROOM = 0x10000

/**
 * A TUN (layer 3) or TAP (Ethernet) device: the role node-tun would have had. Packets arrive in
 * batches ('packets' event) read on the main loop when the descriptor is readable; write() is one
 * non-blocking write(2) and drops the packet when the device queue is full, as a NIC would.
 * 'packets' has a second array: each packet's offload flags (inet/codec/offload.ts: a TUN device
 * opened with offloads, when the kernel agreed, hands over TCP super-packets and partial
 * checksums), plus HAS_ROOM: the packet's buffer has READ_HEADROOM bytes in front of it that the
 * listener may overwrite. write() takes such flags too; a device without offloads finishes the
 * packet in software first.
 * A read that fails for good is one 'error' event (a TunError) and reading stops; its users must
 * listen for it and close(), or the process ends as for any unhandled 'error' event.
 */
export class TunDevice extends EventEmitter {
  readonly name: string
  private fd: number
  private reader: object | null
  private reading = true
  private readonly header = Buffer.alloc(VNET_HDR_LEN)
  dropped = 0

  private constructor(fd: number, name: string, readonly offload: boolean) {
    super()
    this.fd = fd
    this.name = name
    this.reader = binding().startReading(fd, (err, packets) => {
      if (packets.length) this.emit('packets', ...(offload ? split(packets) : plain(packets)))
      if (err && this.fd >= 0) this.emit('error', new TunError('TUN_READ_FAILED', err.code, `${name}: reading the device failed: ${err.message} (${err.code})`))
    })
  }

  /** Opens (creating if needed) the device; an empty name lets the kernel choose (tun0, tap0…). */
  static open(name = '', mode: 'tun' | 'tap' = 'tun', offload = false): TunDevice {
    const [fd, actual, offloaded] = binding().open(name, mode === 'tap', offload)
    return new TunDevice(fd, actual, offloaded)
  }

  /** flags: the packet's offload flags (checked with offloadProblem when they came from a peer). */
  write(packet: Buffer, flags = 0): boolean {
    if (this.fd < 0) return false
    if (flags && !this.offload) return finish(flags, packet).every((p) => this.write(p))
    const n = this.offload ? binding().write(this.fd, packet, toVnet(flags, packet, this.header)) : binding().write(this.fd, packet)
    if (n < 0) this.dropped++
    return n >= 0
  }

  /** Stop (or restart) reading the device. Paused, the kernel queues what is sent to it, and a
   * local TCP sender waits there for room (TCP small queues) rather than losing packets. */
  pause(paused: boolean): void {
    if (this.reader && paused === this.reading) binding().pauseReading(this.reader, paused)
    this.reading = !paused
  }

  get paused(): boolean {
    return !this.reading
  }

  close(): void {
    if (this.fd < 0) return
    if (this.reader) binding().stopReading(this.reader)
    this.reader = null
    binding().close(this.fd)
    this.fd = -1
  }
}

/** Packets read without virtio-net headers: the packets and their flags. */
function plain(raw: Buffer[]): [Buffer[], number[]] {
  return [raw.map((r) => r.subarray(READ_HEADROOM)), raw.map(() => HAS_ROOM)]
}

/** Packets read with their virtio-net headers: the packets and their flags. */
function split(raw: Buffer[]): [Buffer[], number[]] {
  const packets: Buffer[] = []
  const flags: number[] = []
  for (const r of raw) {
    if (r.length < READ_HEADROOM + VNET_HDR_LEN) continue
    const h = r.subarray(READ_HEADROOM, READ_HEADROOM + VNET_HDR_LEN)
    const p = r.subarray(READ_HEADROOM + VNET_HDR_LEN)
    const f = fromVnet(h, p)
    if (f >= 0) {
      packets.push(p)
      flags.push(f | HAS_ROOM)
    } else {
      for (const q of finishVnet(h, p)) {
        packets.push(q)
        flags.push(0)
      }
    }
  }
  return [packets, flags]
}
