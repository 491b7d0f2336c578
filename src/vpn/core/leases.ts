import ipaddr from 'ipaddr.js'
import {ipv4FromU32, ipv4ToU32} from '../../lib/net/ip.js'

/**
 * The gate's address pool: the first host address is the gateway's, the others are leased by
 * identity, so the same identity gets the same address after a reconnect. Leases are never
 * released while the gate runs.
 */
export class LeasePool {
  private leases = new Map<string, string>()
  readonly gateway: string
  readonly prefix: number
  private first: number
  private last: number
  private cursor: number

  /** Throws for a pool that is not an IPv4 CIDR. */
  constructor(pool: string) {
    const [net, prefix] = ipaddr.IPv4.parseCIDR(pool)
    const base = (ipv4ToU32(net.toString()) & (prefix === 0 ? 0 : ~0 << (32 - prefix))) >>> 0
    this.prefix = prefix
    this.first = base + 2
    this.last = base + 2 ** (32 - prefix) - 2
    this.gateway = ipv4FromU32(base + 1)
    this.cursor = this.first
  }

  /** The identity's address, or null when the pool is exhausted. */
  lease(identity: string): string | null {
    let a = this.leases.get(identity)
    if (!a) {
      // Leases are never released, so addresses go out in order and the next one is always free.
      if (this.cursor > this.last) return null
      a = ipv4FromU32(this.cursor++)
      this.leases.set(identity, a)
    }
    return a
  }
}
