import {Flags} from '@oclif/core'
import type {FlagDefinition} from '@oclif/core/interfaces'
import ipaddr from 'ipaddr.js'
import {identityProblem, sanProblem} from '../pki/names.js'
import {parseGateTarget, type GateTarget} from '../tunnel/core/gate-group.js'
import {availableParallelism} from 'node:os'
import {FlagValueError, parseDuration, parseForward, parseHostPort, parseWorkers, type Forward, type HostPort} from './parse.js'

/**
 * Typed flags, validated when oclif parses the command line (or --config): a bad value is one
 * line naming the flag, exit 2, before the command runs.
 */
/** A flag's value parser; `label` is how error messages name the flag. */
function typed<T>(parse: (s: string, label: string) => T, label?: (name: string, char?: string) => string): FlagDefinition<T> {
  // Flags.custom's overloads cannot see through a generic T; the definition is the same.
  const custom = Flags.custom as (defaults: object) => FlagDefinition<T>
  return custom({
    parse: async (s: string, _ctx: unknown, opts: {name: string; char?: string}): Promise<T> => {
      try {
        return parse(s, label ? label(opts.name, opts.char) : `--${opts.name}`)
      } catch (e) {
        // oclif prefixes the message of a parse error; FlagValueError keeps ours to restore it.
        throw new FlagValueError((e as Error).message)
      }
    },
  })
}

/** Seconds: "30s", "5m", "1h", "500ms", or a plain number of seconds ("10", "0.5"). */
export const duration = typed(parseDuration)

/** A number of processes from 1 to `max`, or "auto": one per CPU this process may use. */
export const workers = (max: number): FlagDefinition<number> => typed((s, flag) => parseWorkers(s, flag, availableParallelism(), max))

/** "host:port" or "[v6]:port". */
export const hostPort = typed((s, flag) => parseHostPort(s, flag))

/** "[host:]port", the host 127.0.0.1 when left out. */
export const localHostPort = typed((s, flag) => parseHostPort(s, flag, '127.0.0.1'))

/** The default of a host:port flag, shown in help as host:port. */
export function hostPortDefault(host: string, port: number): {default: HostPort; defaultHelp: () => Promise<string>} {
  return {default: {host, port}, defaultHelp: async () => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)}
}

/** "host[:port]", port 3478 (STUN) when left out. */
export const stunServer = typed((s, flag) => parseHostPort(/:\d+$/.test(s) || ipaddr.IPv6.isValid(s) ? s : `${s}:3478`, flag))

/** A comma-separated list of host:port, in order. */
export const hostPortList = typed((s, flag) => s.split(',').filter((x) => x.trim()).map((x) => parseHostPort(x.trim(), flag)))

/** ssh-style "[bind:]port:host:hostport" (-L, -U, -R); messages name the short flag. */
export const forward = typed<Forward>(parseForward, (name, char) => (char ? `-${char}` : `--${name}`))

/** A gate, host:port, or "group:NAME" (a gate group of the last relay). */
export const gateTarget = typed<GateTarget>((s, flag) => {
  const t = parseGateTarget(s)
  if (t?.kind !== 'group') return {kind: 'host', ...parseHostPort(s, flag)}
  if (!t.name) throw new Error(`${flag}: group:NAME needs a name`)
  return t
})

export const cidr = typed((s, flag) => {
  if (!ipaddr.isValidCIDR(s)) throw new Error(`${flag}: "${s}" is not a CIDR`)
  return s
})

export const ipv4Cidr = typed((s, flag) => {
  if (!ipaddr.IPv4.isValidCIDR(s)) throw new Error(`${flag}: "${s}" is not an IPv4 CIDR`)
  return s
})

/** A name for a certificate: a DNS name or an IP address (pki init and pki issue check it alike). */
export const san = typed((s, flag) => {
  const why = sanProblem(s)
  if (why) throw new Error(`${flag}: ${why}`)
  return s
})

/** A client identity (the certificate's CN). */
export const identity = typed((s, flag) => {
  const why = identityProblem(s)
  if (why) throw new Error(`${flag}: ${why}`)
  return s
})
