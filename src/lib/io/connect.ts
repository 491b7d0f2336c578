import {lookup} from 'node:dns/promises'
import {isIP, Socket, connect as netConnect} from 'node:net'
import {ConnectError, fromSystemError, TunkitError} from '../errors.js'
import {Limiter, LimitFull} from '../limit.js'

/** How long a name lookup may take before its caller gets an answer (ms). */
export const RESOLVE_TIMEOUT_MS = 5000

/**
 * dns.lookup runs getaddrinfo on one of libuv's pool threads (UV_THREADPOOL_SIZE, 4 unless set;
 * bin/run.js makes it 16) and holds it until the resolver answers, which a dead resolver makes
 * 10 s or more; files, crypto and zlib share those threads. All lookups of the process share
 * this budget, kept below the pool's size so lookups alone never fill it.
 */
export const LOOKUPS = new Limiter(lookupCap(Number(process.env.UV_THREADPOOL_SIZE) || 4))

export function lookupCap(poolSize: number): number {
  return Math.max(1, poolSize - Math.max(1, Math.floor(poolSize / 4)))
}

export interface ResolveOptions {
  /** Time until the caller gets TK_HOST_NOT_FOUND; default RESOLVE_TIMEOUT_MS. */
  timeoutMs?: number
  /** The caller's own share (per tunnel or identity), taken before the process-wide one. */
  budget?: Limiter
}

/**
 * A host name or address to one address. Lookups wait for a slot of `budget` and of LOOKUPS;
 * a slot stays taken until getaddrinfo returns, even after the caller has timed out, because
 * until then its thread is still busy. Failures: TK_HOST_NOT_FOUND, TK_RESOURCE_LIMIT.
 */
export async function resolve(host: string, o: ResolveOptions = {}): Promise<{address: string; family: number}> {
  if (isIP(host)) return {address: host, family: isIP(host)}
  const hit = cache.get(host)
  if (hit && hit.until > Date.now()) return hit.answer
  const answer = await lookupBudgeted(host, o)
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!)
  cache.set(host, {answer, until: Date.now() + CACHE_MS})
  return answer
}

/**
 * Answers are kept a short while (getaddrinfo gives no TTL): the next hops and targets in use
 * are few, and while names that never resolve fill the lookup slots, the names in use keep
 * answering from here. Bounded; the oldest entry goes first. Failures are not kept.
 */
const CACHE_MS = 30_000
const CACHE_SIZE = 1024
const cache = new Map<string, {answer: {address: string; family: number}; until: number}>()

async function lookupBudgeted(host: string, o: ResolveOptions): Promise<{address: string; family: number}> {
  const ms = o.timeoutMs ?? RESOLVE_TIMEOUT_MS
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new ConnectError('TK_HOST_NOT_FOUND', `cannot resolve ${host}: no answer within ${ms / 1000} s`)), ms)
  const releases: (() => void)[] = []
  let started = false
  try {
    if (o.budget) releases.push(await o.budget.acquire(ac.signal))
    releases.push(await LOOKUPS.acquire(ac.signal))
    started = true
    const answer = lookup(host)
    const done = (): void => releases.forEach((r) => r())
    answer.then(done, done)
    return await new Promise((res, rej) => {
      answer.then(res, rej)
      ac.signal.addEventListener('abort', () => rej(ac.signal.reason), {once: true})
    })
  } catch (e) {
    if (e instanceof TunkitError) throw e
    if (e instanceof LimitFull) throw new TunkitError('TK_RESOURCE_LIMIT', `cannot resolve ${host}: too many lookups waiting (${e.message})`)
    throw fromSystemError(e, `cannot resolve ${host}`, 'TK_HOST_NOT_FOUND')
  } finally {
    clearTimeout(timer)
    // A lookup that started gives its slots back when it settles (above).
    if (!started) releases.forEach((r) => r())
  }
}

/**
 * Every address of a host name (of an address: itself) for a node's own name, looked up once at
 * start and now and then: within RESOLVE_TIMEOUT_MS and the process's lookup budget; [] when it
 * does not resolve.
 */
export async function resolveAll(host: string): Promise<string[]> {
  if (isIP(host)) return [host]
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), RESOLVE_TIMEOUT_MS)
  try {
    const release = await LOOKUPS.acquire(ac.signal)
    const answer = lookup(host, {all: true})
    answer.then(release, release)
    return await new Promise<string[]>((res) => {
      answer.then((as) => res(as.map((a) => a.address)), () => res([]))
      ac.signal.addEventListener('abort', () => res([]), {once: true})
    })
  } catch {
    return []
  } finally {
    clearTimeout(timer)
  }
}

/** The one place that dials TCP: no-delay on, bounded connect time, failures as ConnectError. */
export function dialTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({host, port, noDelay: true, allowHalfOpen: true})
    const timer = setTimeout(() => {
      s.destroy()
      reject(new ConnectError('TK_CONNECT_TIMEOUT', `connect to ${hostPort(host, port)} timed out`))
    }, timeoutMs)
    s.once('connect', () => {
      clearTimeout(timer)
      s.removeAllListeners('error')
      resolve(s)
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(fromSystemError(err, `connect to ${hostPort(host, port)}`))
    })
  })
}

export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}
