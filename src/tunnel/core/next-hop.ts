import {matchAddress, matchName, parseTarget, type Match} from '../../lib/net/rules.js'

/**
 * `relay --allow-next` rules: a CIDR, an address or a host name (a leading "*." matches
 * subdomains), optionally with ":port" ("[v6]:port" for IPv6). A relay forwards only to next hops
 * some rule allows: it is not an open proxy.
 */
export interface HopRule extends Match {
  text: string
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
  try {
    return {text, target: parseTarget(target, true), ports: port === undefined ? null : [[port, port]]}
  } catch {
    throw new HopRuleError(`"${text}" is not a CIDR, address or host name`)
  }
}

/** Decide on the name first; undefined means "resolve it, then ask allowsAddress". */
export function allowsName(rules: HopRule[], host: string, port: number): boolean | undefined {
  return matchName(rules, host, port)
}

export function allowsAddress(rules: HopRule[], ip: string, port: number): boolean {
  return matchAddress(rules, ip, port)
}
