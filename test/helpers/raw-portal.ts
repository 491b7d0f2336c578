import {spawn, type ChildProcess} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'
import {connect as tlsConnect, type TLSSocket} from 'node:tls'
import {freePort, waitFor} from './procs.js'
import {FrameSplitter} from '../../src/tunnel/codec/frame.js'
import {decodeTunnel, encodeTunnel, TunnelType} from '../../src/tunnel/codec/tunnel.js'
import {decodeUsher, isUsherType, type UsherRecord} from '../../src/tunnel/codec/usher.js'
import {EXPORTER_LABEL, requestFrame} from '../../src/tunnel/core/handshake.js'

/**
 * A hostile portal: RELAY, TLS with a client certificate `<name>.crt` from `dir`, REQUEST, then
 * whatever Usher records the test writes. Records from the gate are counted, not kept.
 */
export interface RawPortal {
  tls: TLSSocket
  /** Usher records received, by kind; refusals by the first word of their reason. */
  counts: Record<string, number>
  /** Session ids that got an UsherOpenReply or an UsherRST. */
  answered: Set<number>
  /** The CLOSE frame's status, once the gate closed the tunnel. */
  closedWith: number | null
  /** Write, waiting for the socket to drain when its buffer is full. */
  write(b: Buffer): Promise<void>
  destroy(): void
}

export async function rawPortal(gatePort: number, dir: string, name: string, user: string, earlyData = false): Promise<RawPortal> {
  const raw = connect(gatePort, '127.0.0.1')
  raw.on('error', () => {})
  await new Promise((r) => raw.once('connect', r))
  raw.write(encodeTunnel({kind: 'relay', origin: 'hostile', path: [`127.0.0.1:${gatePort}`]}))
  await new Promise((r) => raw.once('data', r)) // the RELAY echo
  raw.pause()
  const tls = tlsConnect({socket: raw, cert: readFileSync(join(dir, `${name}.crt`)), key: readFileSync(join(dir, `${name}.key`)), ca: readFileSync(join(dir, 'ca.crt')), servername: 'localhost', minVersion: 'TLSv1.3'})
  tls.on('error', () => {})
  await new Promise((r) => tls.once('secureConnect', r))
  const p: RawPortal = {
    tls, counts: {}, answered: new Set(), closedWith: null,
    write: (b) => new Promise((res) => (tls.write(b) ? res() : tls.once('drain', res))),
    destroy: () => tls.destroy(),
  }
  const count = (k: string): void => void (p.counts[k] = (p.counts[k] ?? 0) + 1)
  const splitter = new FrameSplitter(1 << 20)
  let response: () => void
  const granted = new Promise<void>((r) => (response = r))
  tls.on('data', (chunk: Buffer) => {
    for (const f of splitter.push(chunk)) {
      if (isUsherType(f.type)) {
        const r: UsherRecord = decodeUsher(f)
        if (r.kind === 'open-reply' && r.rc === -1) { count(`refused ${r.reason!.split(':')[0]}`) }
        else if (r.kind === 'rst') count(`rst ${r.reason.split(':')[0]}`)
        else count(r.kind)
        if (r.kind === 'open-reply' || r.kind === 'rst') p.answered.add(r.session)
      } else if (f.type === TunnelType.RESPONSE) response!()
      else if (f.type === TunnelType.CLOSE) {
        const c = decodeTunnel(f)
        if (c.kind === 'close') p.closedWith = c.status
        response!()
      }
    }
  })
  tls.on('close', () => response!())
  tls.write(encodeTunnel(requestFrame({user, destination: 'gate', binding: tls.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)).toString('hex'), remoteForwards: [], earlyData, vpn: false})))
  await granted
  return p
}

/**
 * A process's resident set and its peak so far, in MB, and its open descriptors (from /proc), with
 * those of its children: a gate's workers. The workers map the same binary, so file-backed pages
 * count once (the largest); `fdsMax` is the most any one process holds (each has its own limit).
 */
export function procStats(pid: number): {rss: number; peak: number; fds: number; fdsMax: number} {
  const one = (p: number): {own: number; file: number; hwm: number; fds: number} => {
    const status = readFileSync(`/proc/${p}/status`, 'utf8')
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
    return {own: kb('RssAnon') + kb('RssShmem'), file: kb('RssFile'), hwm: kb('VmHWM'), fds: readdirSync(`/proc/${p}/fd`).length}
  }
  const all = [one(pid)]
  for (const c of childPids(pid)) {
    try {
      all.push(one(c))
    } catch { /* gone */ }
  }
  const file = Math.max(...all.map((x) => x.file))
  const total = (f: (x: (typeof all)[number]) => number): number => all.reduce((n, x) => n + f(x), 0)
  return {
    rss: (total((x) => x.own) + file) / 1024,
    // Each peak less its file pages, plus the shared ones once.
    peak: (total((x) => x.hwm - x.file) + file) / 1024,
    fds: total((x) => x.fds),
    fdsMax: Math.max(...all.map((x) => x.fds)),
  }
}

/** The PIDs whose parent is `pid` (a gate's workers): forked by its main thread, so listed under it. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * A TCP port whose connects hang: a listener with a backlog of one in a process we then stop, so
 * the accept queue fills and further SYNs go unanswered until the dialer gives up.
 */
export async function hangingPort(): Promise<{port: number; child: ChildProcess; stop(): void}> {
  const port = await freePort()
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen({port: ${port}, host: '127.0.0.1', backlog: 1})`], {stdio: 'ignore'})
  // Connects that complete are the listener's (and they fill its accept queue).
  await waitFor('the hanging listener', () => new Promise<boolean>((r) => {
    const s = connect(port, '127.0.0.1', () => r(true))
    s.on('error', () => r(false))
  }))
  child.kill('SIGSTOP')
  return {port, child, stop: () => child.kill('SIGKILL')}
}
