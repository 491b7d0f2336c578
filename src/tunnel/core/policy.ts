import {matchAddress, matchName, parsePorts, parseTarget, splitTarget, type Match} from '../../lib/net/rules.js'

/**
 * Gate access rules: "IDENTITY=TARGET[:PORTS]". IDENTITY is a certificate subject name or "*";
 * TARGET is a CIDR, an address, a host name (a leading "*." matches subdomains) or "*";
 * IPv6 targets go in brackets ("[2001:db8::/32]:443"); PORTS is "*", "22", "80,443" or
 * "8000-8100". With no rules at all, every authenticated identity may open anything.
 */
export interface Rule extends Match {
  text: string
  identity: string
}

export class PolicyError extends Error {}

export function parseRule(text: string): Rule {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new PolicyError(`rule "${text}" is not IDENTITY=TARGET[:PORTS]`)
  const identity = text.slice(0, eq).trim()
  let parts
  try {
    parts = splitTarget(text.slice(eq + 1).trim())
  } catch (e) {
    throw new PolicyError(`rule "${text}": ${(e as Error).message}`)
  }
  if (!identity || !parts.target) throw new PolicyError(`rule "${text}" is not IDENTITY=TARGET[:PORTS]`)
  let ports
  try {
    ports = parsePorts(parts.ports)
  } catch (e) {
    throw new PolicyError(`${(e as Error).message} in rule "${text}"`)
  }
  try {
    return {text, identity, ports, target: parseTarget(parts.target)}
  } catch (e) {
    throw new PolicyError(`rule "${text}": ${(e as Error).message}`)
  }
}

export class Policy {
  constructor(readonly rules: Rule[]) {}

  get open(): boolean {
    return this.rules.length === 0
  }

  /** Decide on a name before resolving it; undefined means "resolve, then ask allowsAddress". */
  allowsName(identity: string, host: string, port: number): boolean | undefined {
    return this.open || matchName(this.forIdentity(identity), host, port)
  }

  allowsAddress(identity: string, ip: string, port: number): boolean {
    return this.open || matchAddress(this.forIdentity(identity), ip, port)
  }

  private forIdentity(identity: string): Rule[] {
    return this.rules.filter((r) => r.identity === '*' || r.identity === identity)
  }
}
