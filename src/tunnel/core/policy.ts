import ipaddr from 'ipaddr.js'
import {isIP} from 'node:net'

/**
 * Gate access rules: "IDENTITY=TARGET[:PORTS]". IDENTITY is a certificate subject name or "*";
 * TARGET is a CIDR, an address, a host name (a leading "*." matches subdomains) or "*";
 * IPv6 targets go in brackets ("[2001:db8::/32]:443"); PORTS is "*", "22", "80,443" or
 * "8000-8100". With no rules at all, every authenticated identity may open anything.
 */
export interface Rule {
  text: string
  identity: string
  cidr?: [ipaddr.IPv4 | ipaddr.IPv6, number]
  host?: string
  ports: [number, number][] | null
}

export class PolicyError extends Error {}

function parsePorts(s: string, text: string): [number, number][] | null {
  if (s === '*' || s === '') return null
  return s.split(',').map((p) => {
    const m = p.match(/^(\d+)(?:-(\d+))?$/)
    const lo = m ? Number(m[1]) : NaN
    const hi = m?.[2] ? Number(m[2]) : lo
    if (!m || lo < 1 || hi > 65535 || lo > hi) throw new PolicyError(`bad port list "${s}" in rule "${text}"`)
    return [lo, hi] as [number, number]
  })
}

export function parseRule(text: string): Rule {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new PolicyError(`rule "${text}" is not IDENTITY=TARGET[:PORTS]`)
  const identity = text.slice(0, eq).trim()
  let rest = text.slice(eq + 1).trim()
  let target: string
  let ports = ''
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    if (close < 0) throw new PolicyError(`rule "${text}": missing "]"`)
    target = rest.slice(1, close)
    rest = rest.slice(close + 1)
    if (rest.startsWith(':')) ports = rest.slice(1)
    else if (rest !== '') throw new PolicyError(`rule "${text}": junk after "]"`)
  } else {
    const colon = rest.indexOf(':')
    target = colon < 0 ? rest : rest.slice(0, colon)
    ports = colon < 0 ? '' : rest.slice(colon + 1)
  }
  if (!identity || !target) throw new PolicyError(`rule "${text}" is not IDENTITY=TARGET[:PORTS]`)
  const rule: Rule = {text, identity, ports: parsePorts(ports, text)}
  if (target === '*') return rule
  try {
    if (target.includes('/')) rule.cidr = ipaddr.parseCIDR(target)
    else if (isIP(target)) {
      const a = ipaddr.parse(target)
      rule.cidr = [a, a.kind() === 'ipv4' ? 32 : 128]
    } else rule.host = target.toLowerCase()
  } catch {
    throw new PolicyError(`rule "${text}": "${target}" is not a valid CIDR`)
  }
  return rule
}

function hostMatches(pattern: string, host: string): boolean {
  host = host.toLowerCase()
  return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern
}

function ipMatches(cidr: [ipaddr.IPv4 | ipaddr.IPv6, number], ip: string): boolean {
  let a = ipaddr.parse(ip)
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address()
  return a.kind() === cidr[0].kind() && a.match(cidr)
}

export class Policy {
  constructor(readonly rules: Rule[]) {}

  get open(): boolean {
    return this.rules.length === 0
  }

  /** Decide on a name before resolving it; undefined means "resolve, then ask allowsAddress". */
  allowsName(identity: string, host: string, port: number): boolean | undefined {
    if (this.open) return true
    let needsAddress = false
    for (const r of this.rules) {
      if (!this.common(r, identity, port)) continue
      if (!r.cidr && !r.host) return true
      if (r.host && hostMatches(r.host, host)) return true
      if (r.cidr) needsAddress = true
    }
    return needsAddress ? undefined : false
  }

  allowsAddress(identity: string, ip: string, port: number): boolean {
    if (this.open) return true
    return this.rules.some((r) => this.common(r, identity, port) && (r.cidr ? ipMatches(r.cidr, ip) : !r.host))
  }

  private common(r: Rule, identity: string, port: number): boolean {
    return (r.identity === '*' || r.identity === identity) && (r.ports === null || r.ports.some(([lo, hi]) => port >= lo && port <= hi))
  }
}
