import {isIP} from 'node:net'

/** Flag values that fail to parse: shown as one line naming the flag, exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2
}

/** A typed flag's parse failure; `text` survives the prefix oclif adds to the message. */
export class FlagValueError extends UsageError {
  constructor(readonly text: string) {
    super(text)
  }
}

export interface HostPort {
  host: string
  port: number
}

export interface Forward {
  bind: string
  port: number
  to: HostPort
}

export function parsePort(s: string, flag: string, allowZero = true): number {
  const n = /^\d+$/.test(s) ? Number(s) : NaN
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) throw new UsageError(`${flag}: port "${s}" is not a number from ${allowZero ? 0 : 1} to 65535`)
  return n
}

function checkHost(h: string, flag: string): string {
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1)
  if (h === '') throw new UsageError(`${flag}: missing host`)
  if (h.includes(':') && isIP(h) !== 6) throw new UsageError(`${flag}: "${h}" is not a valid IPv6 address`)
  if (!isIP(h) && !/^[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$/.test(h)) throw new UsageError(`${flag}: "${h}" is not a valid address or host name`)
  if (/^\d+(\.\d+){1,3}$/.test(h) && isIP(h) !== 4) throw new UsageError(`${flag}: "${h}" is not a valid IPv4 address`)
  return h
}

/** Splits "host:port", "[v6]:port" or "port" (with a default host). */
export function parseHostPort(s: string, flag: string, defaultHost?: string): HostPort {
  const m = s.match(/^(?:\[([^\]]*)\]|([^:]*)):(\d*)$/) ?? (defaultHost !== undefined && /^\d+$/.test(s) ? [s, undefined, defaultHost, s] : null)
  if (!m) throw new UsageError(`${flag}: "${s}" is not host:port`)
  return {host: checkHost(m[1] ?? m[2], flag), port: parsePort(m[3], flag)}
}

/** Splits "[bind:]port:host:hostport" as ssh -L/-R do; IPv6 parts go in brackets. */
export function parseForward(s: string, flag: string, defaultBind = '127.0.0.1'): Forward {
  const parts: string[] = []
  const re = /\[[^\]]*\]|[^:]+/g
  for (const m of s.matchAll(re)) parts.push(m[0])
  if (parts.length !== 3 && parts.length !== 4) throw new UsageError(`${flag}: "${s}" is not [bind:]port:host:hostport`)
  const [bind, port, host, hostport] = parts.length === 4 ? parts : [defaultBind, ...parts]
  return {bind: checkHost(bind, flag), port: parsePort(port, flag), to: {host: checkHost(host, flag), port: parsePort(hostport, flag, false)}}
}

const UNIT_SECONDS: Record<string, number> = {ms: 0.001, s: 1, m: 60, h: 3600}

/** "30s", "5m", "1h", "500ms" or a plain number of seconds; returns seconds. */
export function parseDuration(s: string, flag: string): number {
  const n = s.trim() === '' ? NaN : Number(s)
  if (Number.isFinite(n) && n >= 0) return n
  const m = s.trim().match(/^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)$/)
  if (!m) throw new UsageError(`${flag}: "${s}" is not a duration (seconds, or a number with ms, s, m or h: 500ms, 30s, 5m)`)
  return Number(m[1]) * UNIT_SECONDS[m[2]]
}

/** gate --workers: a count from 1 to max, or "auto" (one per CPU, at most max). */
export function parseWorkers(s: string, flag: string, cpus: number, max: number): number {
  if (s.trim() === 'auto') return Math.max(1, Math.min(cpus, max))
  const n = /^\d+$/.test(s.trim()) ? Number(s) : NaN
  if (!(n >= 1 && n <= max)) throw new UsageError(`${flag}: "${s}" is not a number of workers from 1 to ${max}, or auto`)
  return n
}
