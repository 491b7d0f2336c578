import {execFileSync} from 'node:child_process'
import {accessSync, constants} from 'node:fs'
import {delimiter, join} from 'node:path'
import {TunkitError} from '../errors.js'

/**
 * A tunnel's DNS servers through resolvconf(8): openresolv, Debian's resolvconf and
 * systemd-resolved's all take `-a IFACE` with `nameserver X` lines on stdin, and `-d IFACE`, and
 * rewrite resolv.conf (or tell resolved) themselves. Each run is bounded: a resolvconf that hangs
 * (a subscriber waiting on a daemon) is killed.
 */
const TIMEOUT_MS = 10_000

/** resolvconf's path on PATH, if any. */
export function findResolvconf(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, 'resolvconf')
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return undefined
}

export function resolvconfAdd(bin: string, dev: string, servers: readonly string[]): void {
  run(bin, ['-a', dev], servers.map((s) => `nameserver ${s}\n`).join(''))
}

export function resolvconfDelete(bin: string, dev: string): void {
  run(bin, ['-d', dev], '')
}

function run(bin: string, args: string[], input: string): void {
  try {
    execFileSync(bin, args, {input, timeout: TIMEOUT_MS, stdio: ['pipe', 'ignore', 'pipe']})
  } catch (e) {
    const err = e as {stderr?: Buffer; code?: string; signal?: string}
    const why = err.code === 'ETIMEDOUT' || err.signal ? `no result within ${TIMEOUT_MS / 1000} s` : String(err.stderr ?? e).trim().split('\n')[0]
    throw new TunkitError('TK_FAILED', `resolvconf ${args.join(' ')}: ${why}`)
  }
}
