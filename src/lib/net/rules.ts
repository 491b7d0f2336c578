import ipaddr from 'ipaddr.js'
import {isIP} from './ip.js'

/**
 * The one matcher behind the gate's --allow rules and the relay's --allow-next rules: a target
 * (anything, a CIDR or address, or a host name where a leading "*." matches subdomains) and a
 * set of ports. Each rule syntax parses into these; deciding is done here, once.
 */
export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number]
export type TargetMatch = {kind: 'any'} | {kind: 'cidr'; cidr: Cidr} | {kind: 'host'; pattern: string}
/** Inclusive port ranges; null means every port. */
export type PortMatch = [number, number][] | null

export interface Match {
  target: TargetMatch
  ports: PortMatch
}

export class RuleSyntaxError extends Error {}

/** "*", "" (every port), "22", "80,443" or "8000-8100". */
export function parsePorts(s: string): PortMatch {
  if (s === '*' || s === '') return null
  return s.split(',').map((p) => {
    const m = p.match(/^(\d+)(?:-(\d+))?$/)
    const lo = m ? Number(m[1]) : NaN
    const hi = m?.[2] ? Number(m[2]) : lo
    if (!m || lo < 1 || hi > 65535 || lo > hi) throw new RuleSyntaxError(`bad port list "${s}"`)
    return [lo, hi] as [number, number]
  })
}

/** Splits "TARGET[:PORTS]" or "[IPV6 TARGET][:PORTS]" at the first colon outside brackets. */
export function splitTarget(s: string): {target: string; ports: string} {
  if (!s.startsWith('[')) {
    const colon = s.indexOf(':')
    return colon < 0 ? {target: s, ports: ''} : {target: s.slice(0, colon), ports: s.slice(colon + 1)}
  }
  const close = s.indexOf(']')
  if (close < 0) throw new RuleSyntaxError('missing "]"')
  const rest = s.slice(close + 1)
  if (rest !== '' && !rest.startsWith(':')) throw new RuleSyntaxError('junk after "]"')
  return {target: s.slice(1, close), ports: rest.slice(1)}
}

const HOST_NAME = /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$/

/**
 * "*", a CIDR, an address (a /32 or /128) or a host name. With `strictHost`, a name must look like
 * one (letters, digits, "._-", an optional leading "*.") and "*" is refused.
 */
export function parseTarget(s: string, strictHost = false): TargetMatch {
  if (s === '*' && !strictHost) return {kind: 'any'}
  try {
    if (s.includes('/')) return {kind: 'cidr', cidr: ipaddr.parseCIDR(s)}
    if (isIP(s)) {
      const a = ipaddr.parse(s)
      return {kind: 'cidr', cidr: [a, a.kind() === 'ipv4' ? 32 : 128]}
    }
  } catch {
    throw new RuleSyntaxError(`"${s}" is not a valid CIDR`)
  }
  if (strictHost && !HOST_NAME.test(s)) throw new RuleSyntaxError(`"${s}" is not a CIDR, address or host name`)
  return {kind: 'host', pattern: s.toLowerCase()}
}

export function portMatches(ports: PortMatch, port: number): boolean {
  return ports === null || ports.some(([lo, hi]) => port >= lo && port <= hi)
}

export function hostMatches(pattern: string, host: string): boolean {
  host = host.toLowerCase()
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern
}

/** IPv4-mapped IPv6 addresses match IPv4 CIDRs. */
function parseAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const a = ipaddr.parse(ip)
  return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a
}

/** Decide on a name before resolving it; undefined means "resolve it, then ask matchAddress". */
export function matchName(rules: Iterable<Match>, host: string, port: number): boolean | undefined {
  let needAddress = false
  for (const r of rules) {
    if (!portMatches(r.ports, port)) continue
    const t = r.target
    if (t.kind === 'any') return true
    if (t.kind === 'host' && hostMatches(t.pattern, host)) return true
    if (t.kind === 'cidr') needAddress = true
  }
  return needAddress ? undefined : false
}

export function matchAddress(rules: Iterable<Match>, ip: string, port: number): boolean {
  let a: ipaddr.IPv4 | ipaddr.IPv6 | undefined
  for (const r of rules) {
    if (!portMatches(r.ports, port)) continue
    const t = r.target
    if (t.kind === 'any') return true
    if (t.kind !== 'cidr') continue
    a ??= parseAddress(ip)
    if (a.kind() === t.cidr[0].kind() && a.match(t.cidr)) return true
  }
  return false
}
