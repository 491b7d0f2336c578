import ipaddr from 'ipaddr.js'
import {ipv4FromU32, ipv4ToU32} from '../../lib/net/ip.js'

/**
 * The gate's address pool: the first host address is the gateway's, the others are leased by
 * identity, so the same identity gets the same address after a reconnect. Leases are never
 * released while the gate runs.
 */
export class LeasePool {
  private leases = new Map<string, string>()
  private used = new Set<string>()
  readonly gateway: string
  readonly prefix: number
  private first: number
  private last: number

  /** Throws for a pool that is not an IPv4 CIDR. */
  constructor(pool: string) {
    const [net, prefix] = ipaddr.IPv4.parseCIDR(pool)
    const base = (ipv4ToU32(net.toString()) & (prefix === 0 ? 0 : ~0 << (32 - prefix))) >>> 0
    this.prefix = prefix
    this.first = base + 2
    this.last = base + 2 ** (32 - prefix) - 2
    this.gateway = ipv4FromU32(base + 1)
  }

  /** The identity's address, or null when the pool is exhausted. */
  lease(identity: string): string | null {
    let a = this.leases.get(identity)
    if (!a) {
      for (let n = this.first; n <= this.last; n++) {
        const cand = ipv4FromU32(n)
        if (!this.used.has(cand)) { a = cand; break }
      }
      if (!a) return null
      this.leases.set(identity, a)
      this.used.add(a)
    }
    return a
  }
}
