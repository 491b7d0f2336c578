import {execFileSync} from 'node:child_process'
import {TunkitError} from '../../lib/errors.js'
import {nativeBinding} from '../../lib/io/native.js'

/**
 * The TUN device ESP reads and writes. The ESP plane reads the descriptor itself (the packet path
 * never enters JavaScript), so this only opens it, configures it with iproute2 and closes it;
 * closing it removes its addresses and routes with it.
 */
export class IpsecDevice {
  private constructor(readonly fd: number, readonly name: string) {}

  static open(name: string): IpsecDevice {
    try {
      const [fd, actual] = nativeBinding().open(name, false, false)
      return new IpsecDevice(fd, actual)
    } catch (e) {
      const err = e as Error & {code?: string}
      throw new TunkitError('TK_FAILED', `cannot open TUN device ${name}: ${err.message}${err.code === 'EPERM' ? ' (key-exchange needs root or CAP_NET_ADMIN)' : ''}`)
    }
  }

  /** Address, MTU (room for ESP in UDP in a 1500-byte path) and up. */
  configure(address: string, prefix: number, mtu = 1400): void {
    ip(['addr', 'replace', `${address}/${prefix}`, 'dev', this.name])
    ip(['link', 'set', this.name, 'mtu', String(mtu), 'up'])
  }

  route(cidr: string): void {
    ip(['route', 'replace', cidr, 'dev', this.name])
  }

  close(): void {
    nativeBinding().close(this.fd)
  }
}

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, {stdio: ['ignore', 'ignore', 'pipe']})
  } catch (e) {
    throw new TunkitError('TK_FAILED', `ip ${args.join(' ')}: ${String((e as {stderr?: Buffer}).stderr ?? e).trim()}`)
  }
}
