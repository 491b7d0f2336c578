/**
 * A group of gates behind the last relay (seed 000: "choose an underutilized tunnel server ... or
 * an operational server where others are not operational"). Sans-I/O: health-check results and
 * tunnel counts in, an ordered list of candidates out.
 */
export type Balance = 'least-connections' | 'round-robin'

export interface Member {
  target: string
  host: string
  port: number
  up: boolean
  /** Consecutive failed / successful health checks (HAProxy's fall and rise). */
  fails: number
  oks: number
  tunnels: number
}

export const FALL = 3
export const RISE = 2

export class GateGroup {
  readonly members: Member[]
  private rr = 0

  constructor(readonly name: string, targets: {host: string; port: number}[], private readonly balance: Balance) {
    this.members = targets.map(({host, port}) => ({target: `${host}:${port}`, host, port, up: true, fails: 0, oks: 0, tunnels: 0}))
  }

  /** Healthy members in the order to try them; the rest last, in case the checks lag behind. */
  candidates(): Member[] {
    const up = this.members.filter((m) => m.up)
    const down = this.members.filter((m) => !m.up)
    let order: Member[]
    if (this.balance === 'round-robin') {
      const start = up.length ? this.rr++ % up.length : 0
      order = [...up.slice(start), ...up.slice(0, start)]
    } else order = [...up].sort((a, b) => a.tunnels - b.tunnels)
    return [...order, ...down]
  }

  /** A health check or a connection attempt succeeded or failed; returns a log line on a change. */
  report(m: Member, ok: boolean): string | null {
    if (ok) {
      m.fails = 0
      m.oks++
      if (!m.up && m.oks >= RISE) {
        m.up = true
        return `gate ${m.target} of group ${this.name} is up`
      }
    } else {
      m.oks = 0
      m.fails++
      if (m.up && m.fails >= FALL) {
        m.up = false
        return `gate ${m.target} of group ${this.name} is down (${FALL} failed checks)`
      }
    }
    return null
  }
}

/**
 * Where a tunnel ends, as a portal's --gate or a RELAY path's last entry says it: one gate, or
 * "group:NAME", a gate group the last relay picks a member of. Parsed once at the edge.
 */
export type GateTarget = {kind: 'group'; name: string} | {kind: 'host'; host: string; port: number}

const GROUP_PREFIX = 'group:'

/** "group:NAME", "host:port" or "[v6]:port"; null for anything else. */
export function parseGateTarget(entry: string): GateTarget | null {
  if (entry.startsWith(GROUP_PREFIX)) return {kind: 'group', name: entry.slice(GROUP_PREFIX.length)}
  const m = entry.match(/^\[?([^\]]+?)\]?:(\d+)$/)
  return m ? {kind: 'host', host: m[1], port: Number(m[2])} : null
}

/** The RELAY path entry for a target. */
export function formatGateTarget(t: GateTarget): string {
  if (t.kind === 'group') return GROUP_PREFIX + t.name
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`
}
