import ipaddr from 'ipaddr.js'
import {RefusedError} from '../../lib/errors.js'
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

/**
 * Decide on the name first: false when no rule could allow (name, port) whatever its address — the
 * relay then refuses without resolving; undefined means "resolve it, then ask allowsAddress".
 */
export function allowsName(rules: HopRule[], host: string, port: number): boolean | undefined {
  return matchName(rules, host, port)
}

export function allowsAddress(rules: HopRule[], ip: string, port: number): boolean {
  return matchAddress(rules, ip, port)
}

/** An address and port this relay accepts tunnels on. */
export interface Listen {
  address: string
  port: number
}

function normal(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  try {
    return ipaddr.process(ip.replace(/%.*$/, ''))
  } catch {
    return null
  }
}

/**
 * Would dialling ip:port reach one of our own listeners? A wildcard listener (0.0.0.0, ::) takes
 * any local address: `local` (the interfaces' addresses) and all of loopback; an unspecified
 * destination is the host itself. Issue 9: a relay that dialled itself did so ~3 350 times from
 * one frame, so this errs on the side of "yes" (a wildcard listener counts for both families).
 */
export function reachesSelf(ip: string, port: number, listens: readonly Listen[], local: readonly string[]): boolean {
  const a = normal(ip)
  if (!a) return false
  const same = (x: string): boolean => {
    const b = normal(x)
    return !!b && b.kind() === a.kind() && b.toNormalizedString() === a.toNormalizedString()
  }
  for (const l of listens) {
    if (l.port !== port) continue
    if (a.range() === 'unspecified' || same(l.address)) return true
    const wild = normal(l.address)?.range() === 'unspecified'
    if (wild && (a.range() === 'loopback' || local.some(same))) return true
  }
  return false
}

/**
 * Where this relay stands in a RELAY frame's path, or why it may not go on (sans-I/O). `hops` is the
 * frame's count of relays passed (absent = 0). The path is forwarded unchanged, so a relay at index
 * K has at most K relays before it: more means the frame came round a loop, through names or
 * addresses that alias a relay. Returns the index of this relay.
 */
export function placeInPath(path: readonly string[], hops: number, isMe: (entry: string) => boolean, name: string, maxHops: number): number {
  const mine = path.flatMap((e, i) => (isMe(e) ? [i] : []))
  if (!mine.length) throw new RefusedError('TK_BAD_RELAY_FRAME', `path ${path.join(' -> ')} does not name this relay (${name})`)
  if (mine.length > 1) throw new RefusedError('TK_HOP_LOOP', `path names this relay (${name}) ${mine.length} times`)
  const me = mine[0]
  if (me === path.length - 1) throw new RefusedError('TK_BAD_RELAY_FRAME', 'this relay is the last node: a path must end at a gate')
  if (path.length - 1 > maxHops) throw new RefusedError('TK_HOP_LIMIT', `path of ${path.length - 1} relays is over the limit of ${maxHops}`)
  if (hops >= maxHops) throw new RefusedError('TK_HOP_LIMIT', `the RELAY frame has passed ${hops} relays, the limit is ${maxHops}`)
  if (hops > me) throw new RefusedError('TK_HOP_LOOP', `the RELAY frame has passed ${hops} relays but this relay is node ${me + 1} of its path: it came round a loop`)
  return me
}

/** Where this relay can be reached, for matching path entries by address (entryIsSelf). */
export interface SelfAddresses {
  /** What the relay's --name resolves to, and the ports that name may carry. */
  addresses: readonly string[]
  ports: readonly number[]
  listens: readonly Listen[]
  /** The interfaces' addresses (for a wildcard listener). */
  local: readonly string[]
}

/**
 * Does a path entry name this relay by address (`127.0.0.1:4500` for a relay named `localhost`)?
 * Only an address literal counts: a name in a path is never looked up, or any peer could make the
 * relay query whatever it likes (docs/security.md). The entry's port, when it has one, must be one
 * the relay is reached on: two relays of one host differ by port.
 */
export function entryIsSelf(entry: string, self: SelfAddresses): boolean {
  const m = entry.match(/^\[([^\]]+)\](?::(\d+))?$/) ?? entry.match(/^([^:]+)(?::(\d+))?$/) ?? [entry, entry, undefined]
  const a = normal(m[1])
  if (!a) return false
  const ports = m[2] === undefined ? self.listens.map((l) => l.port) : [Number(m[2])]
  const same = (x: string): boolean => normal(x)?.toNormalizedString() === a.toNormalizedString() && normal(x)?.kind() === a.kind()
  return ports.some((port) => (reachesSelf(m[1], port, self.listens, self.local) && a.range() !== 'unspecified') ||
    (self.ports.includes(port) && self.addresses.some(same)))
}
