import {connect} from 'node:net'
import {CLOSE_STATUS_NAMES, decodeTunnel} from '../../src/tunnel/codec/tunnel.js'
import {event, runCli, stop, tmpDir, tunkit, waitFor, type Proc} from './procs.js'

export interface Pki {
  dir: string
  cleanup(): void
}

export async function makePki(tag: string, client = 'alice'): Promise<Pki> {
  const t = tmpDir(tag)
  const r = await runCli(['pki', 'init', '--dir', t.dir, '--client', client, '--san', 'localhost', '--san', '127.0.0.1'])
  if (r.code !== 0) throw new Error(`pki init failed: ${r.stderr}`)
  return {dir: t.dir, cleanup: t.cleanup}
}

/**
 * TK_GATE_WORKERS=N runs every gate the tests start with --workers N (unless the test chose), so
 * a suite can be run against a gate with workers as it is.
 */
export async function startGate(pki: Pki, extra: string[] = [], listen = '127.0.0.1:0'): Promise<Proc & {port: number}> {
  const workers = process.env.TK_GATE_WORKERS && !extra.includes('--workers') ? ['--workers', process.env.TK_GATE_WORKERS] : []
  const g = tunkit(['gate', '--listen', listen, '--pki-dir', pki.dir, '--json', ...workers, ...extra])
  const e = await event(g, 'listening')
  return Object.assign(g, {port: e.port as number})
}

/** Starts a portal and waits until the tunnel is up and every listener is announced. */
export async function startPortal(pki: Pki, gatePort: number, extra: string[], listeners: number, env: Record<string, string> = {}): Promise<Proc & {ports: Record<string, number>}> {
  const p = tunkit(['portal', '--gate', `127.0.0.1:${gatePort}`, '--pki-dir', pki.dir, '--json', ...extra], env)
  await event(p, 'tunnel-up')
  // Listeners are named by kind in announcement order: socks, local, local1, udp, ...
  await waitFor('listeners', () => p.events.filter((e) => e.event === 'listening').length >= listeners)
  const ports: Record<string, number> = {}
  const seen: Record<string, number> = {}
  for (const e of p.events.filter((ev) => ev.event === 'listening')) {
    const kind = e.kind as string
    const n = seen[kind] ?? 0
    seen[kind] = n + 1
    ports[n === 0 ? kind : `${kind}${n}`] = e.port as number
  }
  return Object.assign(p, {ports})
}

export {stop}

/** Sends raw bytes to a relay or gate and returns the CLOSE frame it answers with. */
export function closeFor(port: number, bytes: Buffer): Promise<{status: string; reason: string}> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1', () => s.write(bytes))
    let buf = Buffer.alloc(0)
    s.on('data', (d) => (buf = Buffer.concat([buf, d])))
    s.on('error', rej)
    s.on('close', () => {
      try {
        const f = decodeTunnel({type: buf.readInt16BE(4), id: buf.readUInt16BE(6), body: buf.subarray(8, 8 + buf.readUInt32BE(0))})
        if (f.kind !== 'close') throw new Error(`got ${f.kind}`)
        res({status: CLOSE_STATUS_NAMES[f.status], reason: f.reason})
      } catch (e) {
        rej(e)
      }
    })
  })
}
