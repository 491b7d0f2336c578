import {connect, type Socket} from 'node:net'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {issue, loadCa, writePair} from '../../src/pki/pki.js'
import {event, freePort, waitFor} from '../helpers/procs.js'
import {helloHttp, socksConnect} from '../helpers/servers.js'
import {makePki, startGate, startPortal, stop, type Pki} from '../helpers/tunnel.js'

/** Issue 9, the gate's front door over loopback: remote forwards under policy; a pre-auth flood. */
const t = suite<Record<string, any>>('gate front door: remote forwards, unauthenticated flood') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('front', 'alice') as Pki
  writePair(ctx.pki.dir, 'mallory', await issue(await loadCa(ctx.pki.dir), {cn: 'mallory', role: 'client'}))
  ctx.http = await helloHttp()
})

t.after((ctx) => {
  ctx.http?.close()
  ctx.pki?.cleanup()
})

const as = (ctx: Record<string, string & {dir: string}>, who: string): string[] =>
  who === 'alice' ? [] : ['--cert', join(ctx.pki.dir, `${who}.crt`), '--key', join(ctx.pki.dir, `${who}.key`)]

function get(port: number, host: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = connect(port, host, () => s.write('GET /fwd HTTP/1.0\r\n\r\n'))
    let body = ''
    s.on('data', (d) => (body += d))
    s.on('end', () => res(body))
    s.on('error', rej)
  })
}

t('without listen rules, -R 0.0.0.0:PORT binds loopback (and says so); outside addresses and low ports are refused', async (ctx) => {
  const gate = await startGate(ctx.pki)
  const port = await freePort()
  const p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', '--skip-unbindable', '-R', `0.0.0.0:${port}:127.0.0.1:${ctx.http.port}`, '-R', `198.51.100.1:${port}:127.0.0.1:1`, '-R', `127.0.0.1:80:127.0.0.1:1`], 1)
  try {
    const up = await event(p, 'tunnel-up')
    assert.equal(up.remoteForwards, [
      {bind: '127.0.0.1', port, asked: '0.0.0.0'},
      {bind: '198.51.100.1', port, error: 'denied'},
      {bind: '127.0.0.1', port: 80, error: 'denied'},
    ])
    assert.match(await get(port, '127.0.0.1'), /hello from behind the gate: \/fwd/)
    // 127.0.0.2 is another local address: a wildcard listener would answer there.
    await assert.not.ok(await get(port, '127.0.0.2').then(() => true, () => false), 'nothing listens beyond 127.0.0.1')
    await waitFor('gate log', () => /listening on 127\.0\.0\.1:\d+ \(asked for 0\.0\.0\.0: loopback only/.test(gate.stderr) && /refused remote forward 198\.51\.100\.1/.test(gate.stderr))
    assert.match(p.stderr, /asked for 0\.0\.0\.0/)
  } finally {
    await stop(p)
    await stop(gate)
  }
})

t('--allow-listen: the identity it names may bind the wildcard; with listen rules, others may not listen at all', async (ctx) => {
  const port = await freePort()
  const gate = await startGate(ctx.pki, ['--allow-listen', `alice=0.0.0.0:${port}`])
  const a = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', '-R', `0.0.0.0:${port}:127.0.0.1:${ctx.http.port}`], 1)
  const m = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', '--skip-unbindable', '-R', `127.0.0.1:${port + 1}:127.0.0.1:${ctx.http.port}`, ...as(ctx, 'mallory')], 1)
  try {
    assert.equal((await event(a, 'tunnel-up')).remoteForwards, [{bind: '0.0.0.0', port}])
    assert.match(await get(port, '127.0.0.2'), /hello from behind the gate/)
    assert.equal((await event(m, 'tunnel-up')).remoteForwards, [{bind: '127.0.0.1', port: port + 1, error: 'denied'}])
  } finally {
    await stop(a)
    await stop(m)
    await stop(gate)
  }
})

/**
 * 1500 idle connections from 30 loopback addresses (127.0.0.2-31), each reopened as soon as the
 * gate drops it, for at most 5 s and 40 000 connections; meanwhile a portal from 127.0.0.1 comes
 * up and carries requests, and the gate's log stays a few dozen lines.
 */
t('an idle pre-auth flood neither keeps a portal out nor floods the log', async (ctx) => {
  const gate = await startGate(ctx.pki)
  const socks = new Set<Socket>()
  let opened = 0
  let flooding = true
  const open = (src: string): void => {
    if (!flooding || opened >= 40_000) return
    opened++
    const s = connect({port: gate.port, host: '127.0.0.1', localAddress: src})
    socks.add(s)
    s.on('error', () => {})
    s.on('close', () => {
      socks.delete(s)
      open(src)
    })
  }
  for (let i = 0; i < 1500; i++) open(`127.0.0.${2 + (i % 30)}`)
  const stopFlood = setTimeout(() => (flooding = false), 5000)
  let p
  try {
    await waitFor('the flood to fill the gate', () => /--max-startups/.test(gate.stderr))
    p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0', '--backoff-max', '1'], 1)
    for (let i = 0; i < 5; i++) {
      const r = await socksConnect(p.ports.socks, '127.0.0.1', ctx.http.port)
      assert.is(r.rep, 0)
      r.socket.destroy()
    }
    const during = flooding
    clearTimeout(stopFlood)
    flooding = false
    for (const s of socks) s.destroy()
    const lines = gate.stderr.split('\n').length
    console.log(`  flood: ${opened} connections opened, portal served 5 requests ${during ? 'during' : 'after'} it; gate log ${lines} lines, ${gate.stderr.length} bytes`)
    assert.ok(during, 'the portal got in while the flood was on')
    assert.ok(lines < 200, `${lines} log lines`)
    await waitFor('suppression summary', () => /more suppressed\)/.test(gate.stderr), 15000)
  } finally {
    flooding = false
    clearTimeout(stopFlood)
    for (const s of socks) s.destroy()
    if (p) await stop(p)
    await stop(gate)
  }
})

t.run()
