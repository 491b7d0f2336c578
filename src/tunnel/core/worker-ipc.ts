/**
 * The messages between a `gate --workers N` primary and its workers (io/gate-workers.ts), and
 * their validation. Each side treats the other's messages as untrusted input: parse*() returns
 * the typed message, or a sentence saying why it is dropped, and never throws.
 */
import {MAX_KEY_LENGTH} from './shares.js'

/** Pools a worker may lease (GateOptions.quota). */
export const POOLS = ['tunnels', 'sessions', 'gate'] as const
export type Pool = (typeof POOLS)[number]

/** Request ids are counters: a bound keeps them plain integers. */
const MAX_ID = 2 ** 31
/** Labels of one tally (error codes, limit names: small fixed sets) and their length. */
const MAX_LABELS = 64
const MAX_LABEL_LENGTH = 64
/** What a reload report may hold: a few lines of text. */
const MAX_LINES = 32
const MAX_LINE_LENGTH = 1000
/** A configuration's files (lib/io/config-files.ts): a handful of paths, each file a few MiB at most. */
const MAX_FILES = 64
const MAX_PATH_LENGTH = 4096
const MAX_FILE_LENGTH = 32 * 1024 * 1024

/** Path → text, or null: absent (lib/io/config-files.ts FileSet). */
export type FileSet = Record<string, string | null>

export type Tallies = Array<[string, number]>

/** A worker's EngineCounts, as plain data. */
export interface CountsData {
  tunnels: number
  preauth: number
  sessions: number
  bytes: {out: number; back: number}
  opensRefused: Tallies
  handshakeFailures: Tallies
  limitHits: Tallies
}

export type WorkerMessage =
  /** Listening: send the configuration's files (`config`). */
  | {t: 'hello'}
  | {t: 'ready'}
  /** The connection handed over as `id` has left its handshake: a tunnel now (`up`), or closed. */
  | {t: 'settled'; id: number; up: boolean}
  | {t: 'ask'; id: number; pool: Pool; key: string; n: number}
  | {t: 'give'; pool: Pool; key: string; n: number}
  | {t: 'counts'; id: number; counts: CountsData}
  | {t: 'reloaded'; id: number; changed: string[]}
  | {t: 'reload-failed'; id: number; message: string}

export type PrimaryMessage =
  /** A connection in its handshake; `id` names it in `settled` and `evict`. */
  | {t: 'conn'; id: number}
  /** Close connection `id` if it is still in its handshake (the primary's --max-startups). */
  | {t: 'evict'; id: number}
  | {t: 'grant'; id: number; granted: number; tight: boolean}
  | {t: 'recall'; pool: Pool; key: string}
  | {t: 'count'; id: number}
  /** The files of the configuration the primary runs: a worker's --config, --policy, certificates. */
  | {t: 'config'; files: FileSet}
  /** SIGHUP: load the configuration of these files (the primary has checked it). */
  | {t: 'reload'; id: number; files: FileSet}

const isObj = (m: unknown): m is Record<string, unknown> => typeof m === 'object' && m !== null && !Array.isArray(m)
const isCount = (n: unknown, max = Number.MAX_SAFE_INTEGER): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max
const isPool = (p: unknown): p is Pool => typeof p === 'string' && (POOLS as readonly string[]).includes(p)
const isKey = (k: unknown): k is string => typeof k === 'string' && k.length <= MAX_KEY_LENGTH

function tallies(v: unknown): Tallies | undefined {
  if (!Array.isArray(v) || v.length > MAX_LABELS) return undefined
  for (const e of v) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || e[0].length > MAX_LABEL_LENGTH || !/^[\w.:-]*$/.test(e[0]) || !isCount(e[1])) return undefined
  }
  return v as Tallies
}

function fileSet(v: unknown): FileSet | undefined {
  if (!isObj(v)) return undefined
  const e = Object.entries(v)
  if (e.length > MAX_FILES) return undefined
  for (const [path, text] of e) {
    if (!path || path.length > MAX_PATH_LENGTH || !(text === null || (typeof text === 'string' && text.length <= MAX_FILE_LENGTH))) return undefined
  }
  return v as FileSet
}

function counts(v: unknown): CountsData | undefined {
  if (!isObj(v) || !isObj(v.bytes)) return undefined
  const {tunnels, preauth, sessions, bytes} = v
  const [o, h, l] = [tallies(v.opensRefused), tallies(v.handshakeFailures), tallies(v.limitHits)]
  if (!isCount(tunnels) || !isCount(preauth) || !isCount(sessions) || !isCount(bytes.out) || !isCount(bytes.back) || !o || !h || !l) return undefined
  return {tunnels, preauth, sessions, bytes: {out: bytes.out, back: bytes.back}, opensRefused: o, handshakeFailures: h, limitHits: l}
}

/** A message from a worker, checked field by field; a string says why it is dropped. */
export function parseWorkerMessage(m: unknown): WorkerMessage | string {
  if (!isObj(m) || typeof m.t !== 'string') return 'not a message object'
  switch (m.t) {
    case 'hello':
    case 'ready':
      return {t: m.t}
    case 'settled':
      return isCount(m.id, MAX_ID) && typeof m.up === 'boolean' ? {t: 'settled', id: m.id, up: m.up} : 'settled: malformed'
    case 'ask':
    case 'give': {
      if (m.t === 'ask' && !isCount(m.id, MAX_ID)) return `${m.t}: bad id`
      if (!isPool(m.pool)) return `${m.t}: unknown pool`
      if (!isKey(m.key)) return `${m.t}: bad key`
      // Over-asking is the ledger's to clamp; a count that is no positive integer is malformed.
      if (!isCount(m.n) || m.n < 1) return `${m.t}: bad count`
      return m.t === 'ask' ? {t: 'ask', id: m.id as number, pool: m.pool, key: m.key, n: m.n} : {t: 'give', pool: m.pool, key: m.key, n: m.n}
    }
    case 'counts': {
      if (!isCount(m.id, MAX_ID)) return 'counts: bad id'
      const c = counts(m.counts)
      return c ? {t: 'counts', id: m.id, counts: c} : 'counts: malformed figures'
    }
    case 'reloaded': {
      const c = m.changed
      if (!isCount(m.id, MAX_ID) || !Array.isArray(c) || c.length > MAX_LINES || !c.every((l) => typeof l === 'string' && l.length <= MAX_LINE_LENGTH)) return 'reloaded: malformed'
      return {t: 'reloaded', id: m.id, changed: c as string[]}
    }
    case 'reload-failed':
      if (!isCount(m.id, MAX_ID) || typeof m.message !== 'string' || m.message.length > MAX_LINE_LENGTH) return 'reload-failed: malformed'
      return {t: 'reload-failed', id: m.id, message: m.message}
    default:
      return `unknown message type ${JSON.stringify(m.t.slice(0, 20))}`
  }
}

/** A message from the primary (the worker checks it too: a bug there must not end a worker). */
export function parsePrimaryMessage(m: unknown): PrimaryMessage | string {
  if (!isObj(m) || typeof m.t !== 'string') return 'not a message object'
  switch (m.t) {
    case 'conn':
    case 'evict':
      return isCount(m.id, MAX_ID) ? {t: m.t, id: m.id} : `${m.t}: bad id`
    case 'grant':
      if (!isCount(m.id, MAX_ID) || !isCount(m.granted) || typeof m.tight !== 'boolean') return 'grant: malformed'
      return {t: 'grant', id: m.id, granted: m.granted, tight: m.tight}
    case 'recall':
      if (!isPool(m.pool) || !isKey(m.key)) return 'recall: malformed'
      return {t: 'recall', pool: m.pool, key: m.key}
    case 'count':
      return isCount(m.id, MAX_ID) ? {t: m.t, id: m.id} : `${m.t}: bad id`
    case 'config':
    case 'reload': {
      const files = fileSet(m.files)
      if (!files) return `${m.t}: malformed files`
      if (m.t === 'config') return {t: 'config', files}
      return isCount(m.id, MAX_ID) ? {t: 'reload', id: m.id, files} : 'reload: bad id'
    }
    default:
      return `unknown message type ${JSON.stringify(m.t.slice(0, 20))}`
  }
}
