import {EventEmitter} from 'node:events'
import {nativeBinding as binding} from './native.js'

/**
 * A TUN (layer 3) or TAP (Ethernet) device: the role node-tun would have had. Packets arrive in
 * batches ('packets' event) read on the main loop when the descriptor is readable; write() is one
 * non-blocking write(2) and drops the packet when the device queue is full, as a NIC would.
 */
export class TunDevice extends EventEmitter {
  readonly name: string
  private fd: number
  private reader: object | null
  dropped = 0

  private constructor(fd: number, name: string) {
    super()
    this.fd = fd
    this.name = name
    this.reader = binding().startReading(fd, (err, packets) => {
      if (err) this.emit('error', new Error(`${name}: ${err}`))
      else if (packets.length) this.emit('packets', packets)
    })
  }

  /** Opens (creating if needed) the device; an empty name lets the kernel choose (tun0, tap0…). */
  static open(name = '', mode: 'tun' | 'tap' = 'tun'): TunDevice {
    const [fd, actual] = binding().open(name, mode === 'tap')
    return new TunDevice(fd, actual)
  }

  write(packet: Buffer): boolean {
    if (this.fd < 0) return false
    const n = binding().write(this.fd, packet)
    if (n < 0) this.dropped++
    return n >= 0
  }

  close(): void {
    if (this.fd < 0) return
    if (this.reader) binding().stopReading(this.reader)
    this.reader = null
    binding().close(this.fd)
    this.fd = -1
  }
}
