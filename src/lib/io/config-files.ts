/**
 * The files a command's configuration comes from (--config, --policy, certificate, key, CA, CRL)
 * are read through here, which keeps what each path held (or that it was absent). A gate primary
 * hands that record to its workers, and a worker reads from it instead of the disk: a worker
 * started later or restarted runs the configuration the primary loaded, not whatever the files
 * hold by then (they change on disk before the SIGHUP that is meant to apply them).
 */
import {existsSync, readFileSync} from 'node:fs'
import {TunkitError} from '../errors.js'

/** Path → text, or null: the path held no file. */
export type FileSet = Record<string, string | null>

const seen = new Map<string, string | null>()
let served: FileSet | undefined

/** From now on, configuration files are read from `files` (a gate worker's, from its primary); undefined: from the disk. */
export function serveFiles(files: FileSet | undefined): void {
  served = files
}

/** Every configuration file read so far, as last read. */
export function filesRead(): FileSet {
  return Object.fromEntries(seen)
}

/**
 * The served text of `path` (null: absent), or undefined when files come from the disk. A path the
 * primary never read is a bug, not a reason to read the disk behind its back.
 */
export function servedFile(path: string): string | null | undefined {
  if (!served) return undefined
  if (!Object.hasOwn(served, path)) throw new TunkitError('TK_INTERNAL', `${path}: not among the configuration files the gate primary loaded`)
  return served[path]
}

/** Keeps what was read from the disk at `path` (null: absent). */
export function noteFile(path: string, text: string | null): void {
  seen.set(path, text)
}

export function configFileExists(path: string): boolean {
  const s = servedFile(path)
  if (s !== undefined) return s !== null
  const there = existsSync(path)
  if (!there) noteFile(path, null)
  return there
}

/** A served file that was absent fails as the disk's would: ENOENT. */
export function absent(path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), {code: 'ENOENT'})
}

/** The file's text; a read that fails throws as readFileSync does (an absent served file: ENOENT). */
export function readConfigFile(path: string): string {
  const s = servedFile(path)
  if (s === null) throw absent(path)
  if (s !== undefined) return s
  const text = readFileSync(path, 'utf8')
  noteFile(path, text)
  return text
}
