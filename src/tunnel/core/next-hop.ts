import ipaddr from 'ipaddr.js'
import {isIP} from 'node:net'

/**
 * `relay --allow-next` rules: a CIDR, an address or a host name (a leading "*." matches
 * subdomains), optionally with ":port" ("[v6]:port" for IPv6). A relay forwards only to next hops
 * some rule allows: it is not an open proxy.
 */
export interface HopRule {
  text: string
  cidr?: [ipaddr.IPv4 | ipaddr.IPv6, number]
  host?: string
  port?: number
}

export class HopRuleError extends Error {}

export function parseHopRule(text: string): HopRule {
  let target = text
  let port: number | undefined
  const m = text.match(/^\[([^\]]+)\](?::(\d+))?$/) ?? (text.split(':').length === 2 ? text.match(/^([^:]+):(\d+)$/) : null)
  if (m) {
    target = m[1]
    if (m[2] !== undefined) port = Number(m[2])
  }
  if (port !== undefined && (port < 1 || port > 65535)) throw new HopRuleError(`"${text}": port out of range`)
  const rule: HopRule = {text, port}
  try {
    if (target.includes('/')) rule.cidr = ipaddr.parseCIDR(target)
    else if (isIP(target)) {
      const a = ipaddr.parse(target)
      rule.cidr = [a, a.kind() === 'ipv4' ? 32 : 128]
    } else if (/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$/.test(target)) rule.host = target.toLowerCase()
    else throw new Error('bad')
  } catch {
    throw new HopRuleError(`"${text}" is not a CIDR, address or host name`)
  }
  return rule
}

function portOk(r: HopRule, port: number): boolean {
  return r.port === undefined || r.port === port
}

/** Decide on the name first; undefined means "resolve it, then ask allowsAddress". */
export function allowsName(rules: HopRule[], host: string, port: number): boolean | undefined {
  host = host.toLowerCase()
  let needAddress = false
  for (const r of rules) {
    if (!portOk(r, port)) continue
    if (r.host && (r.host.startsWith('*.') ? host.endsWith(r.host.slice(1)) : host === r.host)) return true
    if (r.cidr) needAddress = true
  }
  return needAddress ? undefined : false
}

export function allowsAddress(rules: HopRule[], ip: string, port: number): boolean {
  let a = ipaddr.parse(ip)
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address()
  return rules.some((r) => r.cidr && portOk(r, port) && a.kind() === r.cidr[0].kind() && a.match(r.cidr))
}
