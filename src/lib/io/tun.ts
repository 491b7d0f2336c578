import {EventEmitter} from 'node:events'
import {nativeBinding as binding} from './native.js'

/** The device can no longer be read: code TUN_READ_FAILED; `errno` is the system's name for the
 * cause (EBADFD once the interface has been deleted, EIO). */
export class TunError extends Error {
  override readonly name = 'TunError'
  constructor(readonly code: 'TUN_READ_FAILED', readonly errno: string, message: string) {
    super(message)
  }
}

/**
 * A TUN (layer 3) or TAP (Ethernet) device: the role node-tun would have had. Packets arrive in
 * batches ('packets' event) read on the main loop when the descriptor is readable; write() is one
 * non-blocking write(2) and drops the packet when the device queue is full, as a NIC would.
 * A read that fails for good is one 'error' event (a TunError) and reading stops; its users must
 * listen for it and close(), or the process ends as for any unhandled 'error' event.
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
      if (packets.length) this.emit('packets', packets)
      if (err && this.fd >= 0) this.emit('error', new TunError('TUN_READ_FAILED', err.code, `${name}: reading the device failed: ${err.message} (${err.code})`))
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
