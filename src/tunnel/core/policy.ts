import {isIP} from '../../lib/net/ip.js'
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

/**
 * Listen rules ("--allow-listen", or "listen IDENTITY=…" in a policy file) govern remote
 * forwards: IDENTITY=ADDRESS[:PORTS], ADDRESS an address, a CIDR or "*" (any address, the
 * wildcard included); "0.0.0.0" or "[::]" allow the wildcard itself. No host names: a bind
 * address is an address.
 */
export function parseListenRule(text: string): Rule {
  const r = parseRule(text)
  if (r.target.kind === 'host') throw new PolicyError(`listen rule "${text}": the address must be an IP address, a CIDR or "*"`)
  return r
}

/** Where a remote forward may listen: `bind` (loopback in place of a wildcard) or why not. */
export type ListenVerdict = {bind: string; asked?: string} | {denied: string}

/** Without listen rules, as sshd's "GatewayPorts no": loopback, unprivileged ports. */
const DEFAULT_LISTEN: Rule[] = ['*=127.0.0.0/8:1024-65535', '*=[::1]:1024-65535'].map(parseRule)

export class Policy {
  constructor(readonly rules: Rule[], readonly listenRules: Rule[] = []) {}

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

  /**
   * May `identity` listen on bind:port (port 0: any free port)? A wildcard that may not be bound
   * becomes the loopback address of its family when that may be, as sshd does.
   */
  listen(identity: string, bind: string, port: number): ListenVerdict {
    const addr = bind === '' || bind === '*' ? '0.0.0.0' : bind === 'localhost' ? '127.0.0.1' : bind
    if (!isIP(addr) || addr.includes('%')) return {denied: `bind address "${bind}" is not an IP address`}
    const rules = this.listenRules.length ? forIdentity(this.listenRules, identity) : DEFAULT_LISTEN
    // Port 0 lets the kernel pick from its ephemeral range: a rule for every unprivileged port allows it.
    const anyPort = (r: Rule): boolean => r.ports === null || r.ports.some(([lo, hi]) => lo <= 1024 && hi === 65535)
    const allows = (a: string): boolean => (port === 0 ? rules.some((r) => anyPort(r) && matchAddress([{...r, ports: null}], a, 1)) : matchAddress(rules, a, port))
    if (allows(addr)) return {bind: addr}
    const wildcard = /^0+(\.0+){3}$|^[0:]+$/.test(addr)
    const loopback = isIP(addr) === 4 ? '127.0.0.1' : '::1'
    if (wildcard && allows(loopback)) return {bind: loopback, asked: addr}
    return {denied: `${identity} may not listen on ${addr.includes(':') ? `[${addr}]` : addr}:${port}${this.listenRules.length ? '' : ' (without --allow-listen rules: loopback, ports 1024-65535)'}`}
  }

  private forIdentity(identity: string): Rule[] {
    return forIdentity(this.rules, identity)
  }
}

function forIdentity(rules: Rule[], identity: string): Rule[] {
  return rules.filter((r) => r.identity === '*' || r.identity === identity)
}
