import {TunkitError} from '../../lib/errors.js'
import {ipv4FromU32, ipv4ToU32, isIPv4, isIPv6} from '../../lib/net/ip.js'
import type {VpnConfig} from '../../tunnel/core/handshake.js'

/**
 * What the portal accepts of the VPN configuration its gate pushes (RESPONSE client data, seed 000
 * Fig. 23). Every value reaches `ip addr`/`ip route` as an argument, so each is checked here, sans
 * I/O: the address, prefix and gateway must make sense or the configuration is refused whole;
 * routes and DNS servers are accepted or refused one by one.
 */

/** More than a gate has reason to push: the rest are refused (each route is one `ip` run). */
export const MAX_ROUTES = 64
export const MAX_DNS = 8

export interface Cidr {
  /** The network address as a 32-bit number (host bits cleared). */
  net: number
  prefix: number
}

export interface RoutePolicy {
  /** --accept-routes: only routes inside one of these. null: any route but one covering half the address space or more. */
  accept: Cidr[] | null
  /** The first hop's address (the gate, or the first relay): no pushed route or network may cover it. */
  avoid: string[]
}

export interface Refusal {
  kind: 'route' | 'dns'
  value: string
  reason: string
}

export interface AcceptedVpn extends VpnConfig {
  refused: Refusal[]
}

/** The gate pushed an address, prefix or gateway the portal cannot use. */
export class VpnConfigError extends TunkitError {
  override name = 'VpnConfigError'
  constructor(message: string) {
    super('TK_PROTOCOL_ERROR', message)
  }
}

const mask = (prefix: number): number => (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0)

/** Strict "a.b.c.d/n" (n an integer 0-32, in digits); host bits are cleared. null if it is not one. */
export function parseCidr4(s: string): Cidr | null {
  const m = /^([0-9.]{7,15})\/(\d{1,2})$/.exec(s)
  if (!m) return null
  const a = ipv4ToU32(m[1])
  const prefix = Number(m[2])
  if (a < 0 || prefix > 32) return null
  return {net: (a & mask(prefix)) >>> 0, prefix}
}

export function formatCidr(c: Cidr): string {
  return `${ipv4FromU32(c.net)}/${c.prefix}`
}

export function coversAddress(c: Cidr, addr: number): boolean {
  return ((addr & mask(c.prefix)) >>> 0) === c.net
}

export function within(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && coversAddress(outer, inner.net)
}

/** Why `c` may not be routed into the tunnel, or null when it may. */
export function routeProblem(c: Cidr, policy: RoutePolicy): string | null {
  for (const a of policy.avoid) {
    const n = ipv4ToU32(a)
    // Routing the first hop into the tunnel would carry the tunnel inside itself.
    if (n >= 0 && coversAddress(c, n)) return `covers ${a}, the path to the gate`
  }
  if (policy.accept) return policy.accept.some((o) => within(c, o)) ? null : 'not inside --accept-routes'
  // A default route, or one of the 0.0.0.0/1 + 128.0.0.0/1 pair that overrides it, takes every
  // destination of this host: only an explicit --accept-routes may ask for that.
  return c.prefix < 2 ? 'a default route or half the address space (allow it with --accept-routes)' : null
}

/** Checks and filters a pushed configuration; throws VpnConfigError when it cannot be used at all. */
export function acceptVpnConfig(cfg: VpnConfig, policy: RoutePolicy): AcceptedVpn {
  const show = (v: unknown): string => JSON.stringify(String(v).slice(0, 64))
  if (!isIPv4(cfg.address)) throw new VpnConfigError(`the gate pushed VPN address ${show(cfg.address)}, not an IPv4 address`)
  if (!Number.isInteger(cfg.prefix) || cfg.prefix < 0 || cfg.prefix > 32) throw new VpnConfigError(`the gate pushed VPN prefix ${show(cfg.prefix)}, not an integer from 0 to 32`)
  const addr = ipv4ToU32(cfg.address)
  const network: Cidr = {net: (addr & mask(cfg.prefix)) >>> 0, prefix: cfg.prefix}
  // The address's prefix installs a connected route: it answers to the same rules as a pushed route,
  // except that a prefix length short of --accept-routes is a normal VPN subnet, not a route.
  const netProblem = routeProblem(network, {accept: null, avoid: policy.avoid})
  const explicitlyAccepted = policy.accept?.some((o) => within(network, o)) ?? false
  if (netProblem && !explicitlyAccepted) throw new VpnConfigError(`the gate pushed VPN network ${formatCidr(network)}: ${netProblem}`)
  if (!isIPv4(cfg.gateway)) throw new VpnConfigError(`the gate pushed VPN gateway ${show(cfg.gateway)}, not an IPv4 address`)
  const gw = ipv4ToU32(cfg.gateway)
  if (gw === addr || !coversAddress(network, gw)) throw new VpnConfigError(`the gate pushed VPN gateway ${cfg.gateway}, not another address inside ${formatCidr(network)}`)

  const refused: Refusal[] = []
  const routes: string[] = []
  for (const r of cfg.routes) {
    const c = parseCidr4(r)
    const why = !c ? 'not an IPv4 CIDR' : routes.length >= MAX_ROUTES ? `more than ${MAX_ROUTES} routes` : routeProblem(c, policy)
    if (why) refused.push({kind: 'route', value: r.slice(0, 64), reason: why})
    else if (!routes.includes(formatCidr(c!))) routes.push(formatCidr(c!))
  }
  const dns: string[] = []
  for (const d of cfg.dns) {
    const why = !(isIPv4(d) || (isIPv6(d) && !d.includes('%'))) ? 'not an IP address' : dns.length >= MAX_DNS ? `more than ${MAX_DNS} DNS servers` : null
    if (why) refused.push({kind: 'dns', value: d.slice(0, 64), reason: why})
    else if (!dns.includes(d)) dns.push(d)
  }
  return {address: cfg.address, prefix: cfg.prefix, gateway: cfg.gateway, routes, dns, refused}
}
