import {request} from 'node:http'
import {connect, createServer, type Socket} from 'node:net'
import {readFileSync, writeFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, runCli, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {helloHttp, httpBody, listening, socksConnect} from '../helpers/servers.js'
import {unless} from '../helpers/requires.js'
import {makePki, startGate, startPortal, stop, type Pki} from '../helpers/tunnel.js'

// gate --workers (issue 12 item 5): real processes, real TLS; one primary, two workers.
const t = suite<Record<string, any>>('gate --workers') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('workers', 'alice') as Pki
  ctx.http = await helloHttp()
  // An echo server: sessions to it stay open as long as the client holds them.
  ctx.echo = await listening(createServer((s) => {
    s.on('error', () => {})
    s.pipe(s)
  }))
})

t.after((ctx) => {
  ctx.http?.close()
  ctx.echo?.close()
  ctx.pki?.cleanup()
})

function scrape(where: string): Promise<Record<string, number>> {
  return new Promise((res, rej) => {
    const [host, port] = where.split(':')
    const req = request({host, port: Number(port), path: '/metrics', timeout: 5000}, (r) => {
      let body = ''
      r.on('data', (d) => (body += d))
      r.on('end', () => {
        const out: Record<string, number> = {}
        for (const line of body.split('\n')) {
          const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/)
          if (m) out[m[1]] = Number(m[2])
        }
        res(out)
      })
    })
    req.on('error', rej)
    req.end()
  })
}

/** GET through a portal's SOCKS5 proxy, by hand (no curl needed): the body. */
async function getVia(socksPort: number, port: number, path: string): Promise<string> {
  const {rep, socket} = await socksConnect(socksPort, '127.0.0.1', port)
  if (rep !== 0) {
    socket.destroy()
    throw new Error(`SOCKS reply ${rep}`)
  }
  return new Promise((res, rej) => {
    let got = ''
    socket.on('data', (d) => (got += d))
    socket.on('error', rej)
    socket.on('close', () => res(got.slice(got.indexOf('\r\n\r\n') + 4)))
    socket.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`)
  })
}

function echoOnce(s: Socket, text: string): Promise<string> {
  return new Promise((res) => {
    let got = ''
    const on = (d: Buffer): void => {
      got += d
      if (got.length < text.length) return
      s.off('data', on)
      res(got)
    }
    s.on('data', on)
    s.write(text)
  })
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t('two workers: tunnels work, connections spread over both, a session limit holds across them, a killed worker is restarted, SIGTERM leaves no worker', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--workers', '2', '--metrics', '0', '--max-sessions-per-identity', '2'])
  const pids = gate.events.find((e) => e.event === 'listening')!.workers as number[]
  const at = gate.events.find((e) => e.event === 'listening')!.metrics as string
  assert.is(pids.length, 2)
  assert.ok(pids.every((p) => p !== gate.child.pid && alive(p)), 'two worker processes besides the primary')
  const portals: Proc[] = []
  const held: Socket[] = []
  try {
    for (let i = 0; i < 2; i++) portals.push(await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1))
    const [a, b] = portals as Array<Proc & {ports: Record<string, number>}>
    assert.is(await getVia(a.ports.socks, ctx.http.port, '/a'), httpBody('/a'))
    assert.is(await getVia(b.ports.socks, ctx.http.port, '/b'), httpBody('/b'))

    // Spread: one tunnel on each worker, by the workers' own events and by the primary's metrics.
    const ups = await waitFor('two tunnel-up events', () => {
      const e = gate.events.filter((x) => x.event === 'tunnel-up')
      return e.length >= 2 && e
    })
    assert.equal(new Set(ups.map((e) => e.worker)), new Set([0, 1]), 'each worker took one tunnel')
    const m = await scrape(at)
    assert.is(m['tunkit_tunnels{role="gate"}'], 2)
    assert.is(m['tunkit_worker_tunnels{worker="0",role="gate"}'], 1)
    assert.is(m['tunkit_worker_tunnels{worker="1",role="gate"}'], 1)
    assert.is(m['tunkit_worker_connections_total{worker="0",role="gate"}'], 1)
    assert.is(m['tunkit_worker_connections_total{worker="1",role="gate"}'], 1)

    // --max-sessions-per-identity 2 across workers: two held through a, the third through b
    // (the other worker) is refused.
    for (let i = 0; i < 2; i++) {
      const s = await socksConnect(a.ports.socks, '127.0.0.1', ctx.echo.port)
      assert.is(s.rep, 0)
      held.push(s.socket)
      assert.is(await echoOnce(s.socket, 'ping'), 'ping')
    }
    const over = await socksConnect(b.ports.socks, '127.0.0.1', ctx.echo.port)
    over.socket.destroy()
    assert.is(over.rep, 1, 'the third session, on the other worker, is over the limit')
    const m2 = await scrape(at)
    assert.is(m2['tunkit_sessions{role="gate"}'], 2)
    assert.is(m2['tunkit_limit_hits_total{limit="max-sessions-per-identity",role="gate"}'], 1)
    // One released: b may open one now.
    held.pop()!.destroy()
    const ok = await waitFor('a session through b once one is released', async () => {
      const s = await socksConnect(b.ports.socks, '127.0.0.1', ctx.echo.port)
      if (s.rep === 0) return s.socket
      s.socket.destroy()
      await new Promise((r) => setTimeout(r, 100))
      return undefined
    })
    assert.is(await echoOnce(ok, 'pong'), 'pong')
    ok.destroy()
    for (const s of held.splice(0)) s.destroy()

    // Kill a worker by PID: it comes back with a new PID, its portal reconnects, tunnels work.
    const victim = pids[0]
    process.kill(victim, 'SIGKILL')
    const down = await event(gate, 'worker-down', (e) => e.pid === victim)
    assert.is(down.signal, 'SIGKILL')
    const up = await event(gate, 'worker-up', (e) => e.worker === 0 && e.pid !== victim)
    assert.ok(alive(up.pid as number))
    assert.not.ok(alive(victim))
    for (const [i, p] of [a, b].entries()) {
      const body = await waitFor(`a request through portal ${i} after the restart`, () => getVia(p.ports.socks, ctx.http.port, `/after${i}`).catch(() => undefined), 20000)
      assert.is(body, httpBody(`/after${i}`))
    }
    const c = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1) as Proc & {ports: Record<string, number>}
    portals.push(c)
    assert.is(await getVia(c.ports.socks, ctx.http.port, '/new'), httpBody('/new'))
    const m3 = await scrape(at)
    assert.is(m3['tunkit_worker_restarts_total{worker="0",role="gate"}'], 1)
    assert.is(m3['tunkit_worker_up{worker="0",role="gate"}'], 1)

    // SIGTERM: the primary exits 0 and takes every worker with it.
    const workers = [up.pid as number, pids[1]]
    for (const p of portals.splice(0)) await stop(p)
    assert.is(await stop(gate), 0)
    await waitFor('no worker left', () => workers.every((p) => !alive(p)), 3000)
    assert.ok(gate.stderr.includes('stopped on SIGTERM'))
  } finally {
    for (const s of held) s.destroy()
    for (const p of portals) await stop(p)
    await stop(gate)
  }
})

t('--max-tunnels-per-identity holds across workers', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--workers', '2', '--max-tunnels-per-identity', '1'])
  const portals: Proc[] = []
  try {
    portals.push(await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1))
    // The second lands on the other worker, which has no tunnel of alice: refused all the same.
    const second = tunkit(['portal', '--gate', `127.0.0.1:${gate.port}`, '--pki-dir', ctx.pki.dir, '--json', '--socks', '127.0.0.1:0', '--retries', '1'])
    portals.push(second)
    await waitFor('the refusal', () => gate.stderr.includes('refused a tunnel for alice'))
    assert.match(gate.stderr, /alice already has 1 tunnels, the most one identity may have \(all workers\)/)
    assert.is(gate.events.filter((e) => e.event === 'tunnel-up').length, 1)
  } finally {
    for (const p of portals) await stop(p)
    await stop(gate)
  }
})

t('policy before the lease: on the other worker, an identity at its shared session cap asking for a denied target is told denied, and no lease is asked for', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--workers', '2', '--metrics', '0', '--max-sessions-per-identity', '1', '--allow', `alice=127.0.0.1:${ctx.echo.port}`])
  const at = gate.events.find((e) => e.event === 'listening')!.metrics as string
  const portals: Proc[] = []
  let held: Socket | undefined
  try {
    // Round robin: a's tunnel on one worker, b's on the other, which holds no session of alice.
    for (let i = 0; i < 2; i++) portals.push(await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1))
    const [a, b] = portals as Array<Proc & {ports: Record<string, number>}>
    await waitFor('both tunnels up', () => gate.events.filter((e) => e.event === 'tunnel-up').length >= 2)
    const s = await socksConnect(a.ports.socks, '127.0.0.1', ctx.echo.port)
    assert.is(s.rep, 0)
    held = s.socket
    const denied = await socksConnect(b.ports.socks, '127.0.0.1', ctx.http.port)
    denied.socket.destroy()
    assert.is(denied.rep, 2, 'not allowed by the ruleset, whatever the session count')
    const m = await scrape(at)
    assert.is(m['tunkit_limit_hits_total{limit="max-sessions-per-identity",role="gate"}'] ?? 0, 0)
  } finally {
    held?.destroy()
    for (const p of portals) await stop(p)
    await stop(gate)
  }
})

t('every worker runs the configuration the primary loaded: files edited on disk reach a restarted worker only through SIGHUP, and one that no longer loads keeps the running one', async (ctx) => {
  const pki = await makePki('workers-files', 'alice')
  const policyFile = join(pki.dir, 'policy')
  const allow = (port: number): void => writeFileSync(policyFile, `alice=127.0.0.1:${port}\n`)
  allow(ctx.http.port)
  const gate = await startGate(pki, ['--workers', '2', '--policy', policyFile])
  const portals: Array<Proc & {ports: Record<string, number>}> = []
  const rep = async (p: Proc & {ports: Record<string, number>}, port: number): Promise<number> => {
    const s = await socksConnect(p.ports.socks, '127.0.0.1', port)
    s.socket.destroy()
    return s.rep
  }
  /** Kills worker `index` and waits for its successor and for both portals' tunnels to be up again. */
  const restart = async (index: number): Promise<void> => {
    const old = [...gate.events].reverse().find((e) => e.event === 'worker-up' && e.worker === index)?.pid as number | undefined ??
      (gate.events.find((e) => e.event === 'listening')!.workers as number[])[index]
    const ups = gate.events.filter((e) => e.event === 'tunnel-up').length
    process.kill(old, 'SIGKILL')
    await event(gate, 'worker-up', (e) => e.worker === index && e.pid !== old)
    // The portal that was on it reconnects (to either worker).
    await waitFor('the portal back', () => gate.events.filter((e) => e.event === 'tunnel-up').length > ups || undefined, 20000)
  }
  try {
    for (let i = 0; i < 2; i++) portals.push(await startPortal(pki, gate.port, ['--socks', '127.0.0.1:0'], 1))
    await waitFor('both tunnels up', () => gate.events.filter((e) => e.event === 'tunnel-up').length >= 2)
    for (const p of portals) assert.is(await rep(p, ctx.http.port), 0)

    // Edited, not reloaded; the gate's key replaced by garbage too. A restarted worker reads neither.
    allow(ctx.echo.port)
    const key = readFileSync(join(pki.dir, 'gate.key'))
    writeFileSync(join(pki.dir, 'gate.key'), 'not a key\n')
    await restart(0)
    for (const [i, p] of portals.entries()) {
      assert.is(await waitFor(`portal ${i} through`, async () => (await rep(p, ctx.http.port).catch(() => -1)) === 0 || undefined, 20000), true, 'the running policy still allows http')
      assert.is(await rep(p, ctx.echo.port), 2, 'the edited policy is not applied yet')
    }
    // SIGHUP with the broken key: refused, the running configuration stays everywhere.
    gate.child.kill('SIGHUP')
    const failed = await event(gate, 'reload-failed')
    assert.match(failed.message as string, /--key: .*gate\.key is not a PEM private key/)
    writeFileSync(join(pki.dir, 'gate.key'), key, {mode: 0o600})
    gate.child.kill('SIGHUP')
    await event(gate, 'reloaded')
    for (const p of portals) {
      assert.is(await rep(p, ctx.echo.port), 0, 'reloaded: echo allowed')
      assert.is(await rep(p, ctx.http.port), 2, 'reloaded: http denied')
    }
    // Broken on disk again, not reloaded: the other worker, restarted, runs the reloaded policy.
    writeFileSync(policyFile, 'this is no rule\n')
    await restart(1)
    for (const [i, p] of portals.entries()) {
      assert.is(await waitFor(`portal ${i} through`, async () => (await rep(p, ctx.echo.port).catch(() => -1)) === 0 || undefined, 20000), true)
      assert.is(await rep(p, ctx.http.port), 2)
    }
    assert.not.match(gate.stderr, /not among the configuration files/)
    assert.is(gate.events.filter((e) => e.event === 'worker-down').length, 2, 'no worker failed to start')
  } finally {
    for (const p of portals) await stop(p)
    await stop(gate)
    pki.cleanup()
  }
})

/** An idle TCP connection from `src`; `closed` resolves once the gate drops it (ms after open). */
function idle(port: number, src: string): {s: Socket; closed: Promise<number>} {
  const t0 = Date.now()
  const s = connect({port, host: '127.0.0.1', localAddress: src})
  s.on('error', () => {})
  return {s, closed: new Promise((r) => s.once('close', () => r(Date.now() - t0)))}
}

/** A metric's value summed over its labels. */
const sum = (m: Record<string, number>, name: string): number => Object.entries(m).filter(([k]) => k === name || k.startsWith(`${name}{`)).reduce((n, [, v]) => n + v, 0)

const settledWithin = <T>(p: Promise<T>, ms: number): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))])

t('the default: one worker, the others once a second tunnel is up (not for connections that never authenticate); the primary screens sources (--max-startups) across workers, evicting through the worker that holds the connection', async (ctx) => {
  const cpus = availableParallelism()
  const gate = await startGate(ctx.pki, ['--max-startups', '4', '--max-startups-per-source', '3', '--handshake-timeout', '60', '--metrics', '127.0.0.1:0'])
  const at = gate.events.find((e) => e.event === 'listening')!.metrics as string
  const conns: Array<ReturnType<typeof idle>> = []
  let p: Proc | undefined
  let p2: Proc | undefined
  try {
    if (cpus > 1) assert.is((gate.events.find((e) => e.event === 'listening')!.workers as number[]).length, 1, 'one worker until a second tunnel')
    // Three idle connections from 127.0.0.2: its share; a fourth from it is reset at once.
    for (let i = 0; i < 3; i++) conns.push(idle(gate.port, '127.0.0.2'))
    await waitFor('3 in their handshake', async () => sum(await scrape(at), 'tunkit_preauth_connections') === 3 || undefined, 5000)
    const over = idle(gate.port, '127.0.0.2')
    assert.ok(await settledWithin(over.closed, 2000), 'a fourth from one source is refused at once')
    conns.push(idle(gate.port, '127.0.0.3'))
    // Full (4): a portal from 127.0.0.1 takes the oldest slot of the biggest holder, which a worker holds.
    p = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1)
    assert.ok(await settledWithin(conns[0].closed, 3000), '127.0.0.2\'s oldest connection was evicted by way of its worker')
    for (const c of conns.slice(1)) assert.not.ok(await settledWithin(c.closed, 50), 'the others wait in their handshake')
    assert.match(gate.stderr, /dropped an unauthenticated connection from 127\.0\.0\.2 to make room for 127\.0\.0\.1/)
    const m = await scrape(at)
    assert.ok((m['tunkit_limit_hits_total{limit="max-startups",role="gate"}'] ?? 0) >= 1, JSON.stringify(m))
    assert.is(sum(m, 'tunkit_worker_up'), 1, 'connections that never authenticate start no worker')
    if (cpus > 1) {
      p2 = await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1)
      await waitFor('every worker up', async () => sum(await scrape(at), 'tunkit_worker_up') === Math.min(cpus, 64) || undefined, 10000)
    }
    // Closed, their slots come back: 127.0.0.2 may hold three again.
    for (const c of conns) c.s.destroy()
    await Promise.all(conns.map((c) => c.closed))
    await waitFor('slots back', async () => sum(await scrape(at), 'tunkit_preauth_connections') === 0 || undefined, 5000)
    const again = [0, 1, 2].map(() => idle(gate.port, '127.0.0.2'))
    for (const c of again) assert.not.ok(await settledWithin(c.closed, 300), 'admitted again')
    for (const c of again) c.s.destroy()
  } finally {
    for (const c of conns) c.s.destroy()
    if (p) await stop(p)
    if (p2) await stop(p2)
    await stop(gate)
  }
})

unless(t, availableParallelism() < 2 ? 'needs 2 CPUs (on one the default gate is one process)' : null)('workers started together are waited for: connections that come while the second one starts are spread over both, not all handed to the first', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--metrics', '127.0.0.1:0'])
  const at = gate.events.find((e) => e.event === 'listening')!.metrics as string
  const portals: Proc[] = []
  const conns: Socket[] = []
  try {
    portals.push(await startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1))
    // The second tunnel starts worker 1; four connections come at once, while it boots.
    const second = startPortal(ctx.pki, gate.port, ['--socks', '127.0.0.1:0'], 1)
    await waitFor('the second tunnel', () => gate.events.filter((e) => e.event === 'tunnel-up').length >= 2 || undefined, 20000)
    for (let i = 0; i < 4; i++) conns.push(connect(gate.port, '127.0.0.1').on('error', () => {}))
    portals.push(await second)
    await event(gate, 'worker-up', (e) => e.worker === 1)
    const m = await waitFor('the four handed over', async () => {
      const x = await scrape(at)
      return sum(x, 'tunkit_worker_connections_total') >= 6 ? x : undefined
    }, 10000)
    assert.is(m['tunkit_worker_connections_total{worker="0",role="gate"}'], 4, 'the two portals and two of the four')
    assert.is(m['tunkit_worker_connections_total{worker="1",role="gate"}'], 2, 'two of the four waited for worker 1')
  } finally {
    for (const c of conns) c.destroy()
    for (const p of portals) await stop(p)
    await stop(gate)
  }
})

t('a primary killed outright leaves no worker behind', async (ctx) => {
  const gate = await startGate(ctx.pki, ['--workers', '2'])
  const pids = gate.events.find((e) => e.event === 'listening')!.workers as number[]
  await stop(gate, 'SIGKILL')
  await waitFor('the workers to go', () => pids.every((p) => !alive(p)), 5000)
})

t('usage errors: --vpn with workers, a bad --workers', async (ctx) => {
  const vpn = await runCli(['gate', '--listen', '127.0.0.1:0', '--pki-dir', ctx.pki.dir, '--workers', '2', '--vpn', '--pool', '198.18.10.0/24'])
  assert.is(vpn.code, 2)
  assert.match(vpn.stderr, /--vpn: VPN mode runs in a single process; use --workers 1/)
  for (const bad of ['0', '65', 'two', '-1', '1.5']) {
    const r = await runCli(['gate', '--listen', '127.0.0.1:0', '--pki-dir', ctx.pki.dir, '--workers', bad])
    assert.is(r.code, 2, `--workers ${bad}`)
    assert.match(r.stderr, /--workers: .* is not a number of workers from 1 to 64, or auto/)
  }
  // The worker variable without an IPC channel is no way to start a half-gate.
  const r = await runCli(['gate', '--listen', '127.0.0.1:0', '--pki-dir', ctx.pki.dir], {TUNKIT_GATE_WORKER: '0'})
  assert.is(r.code, 1)
  assert.match(r.stderr, /no IPC channel/)
})

t.run()
