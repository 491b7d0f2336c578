// Shared parts of the hostile-load harness (bench/hostile.mjs, test/e2e/hostile.test.ts): start the
// real CLI, read RSS and descriptor counts from /proc, the legitimate workload and its figures.
// Loopback only. Every process here is started by us and stopped by its PID.
import {spawn, spawnSync} from 'node:child_process'
import {readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync} from 'node:fs'
import {createServer, connect} from 'node:net'
import {createSocket} from 'node:dgram'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const BIN = join(ROOT, 'bin/run.js')
export const HERE = dirname(fileURLToPath(import.meta.url))
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** The targets of issue 9 (apply to each row). */
export const TARGETS = {
  p99Ratio: 10,
  /** Idle p99 below this counts as this (loopback idle p99 can be ~1 ms; scheduler noise is not an attack). */
  p99FloorMs: Number(process.env.TK_HOSTILE_P99_FLOOR_MS ?? 5),
  rssMaxMB: 300,
  rssReturnFrac: 0.2,
  rssSlackMB: Number(process.env.TK_HOSTILE_RSS_SLACK_MB ?? 15),
  fdSlack: Number(process.env.TK_HOSTILE_FD_SLACK ?? 4),
}

const started = new Set()
export function killAll() {
  for (const c of started) try { c.kill('SIGKILL') } catch { /* gone */ }
}
process.on('exit', killAll)

/**
 * Start `node bin/run.js ARGS --json`. With resolv, inside a private mount namespace whose
 * /etc/resolv.conf is that file (so name lookups go to our own silent resolver, never off the host);
 * `unshare` and `sh` exec in place, so the PID is node's.
 */
export function tk(args, {resolv, tag = args[0]} = {}) {
  const argv = [BIN, ...args]
  const [cmd, full] = resolv
    ? ['unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv, process.execPath, ...argv]]
    : [process.execPath, argv]
  const child = spawn(cmd, full, {env: {...process.env, NO_COLOR: '1', CI: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
  started.add(child)
  const p = {tag, child, pid: child.pid, events: [], stderrTail: '', stderrBytes: 0, stdout: '', exitCode: undefined}
  p.exited = new Promise((r) => child.on('exit', (c, s) => { started.delete(child); p.exitCode = c ?? s; r(c ?? s) }))
  let line = ''
  child.stdout.on('data', (d) => {
    line += d
    let i
    while ((i = line.indexOf('\n')) >= 0) {
      const l = line.slice(0, i)
      line = line.slice(i + 1)
      try { p.events.push(JSON.parse(l)) } catch { /* not JSON */ }
    }
  })
  child.stderr.on('data', (d) => {
    p.stderrBytes += d.length
    p.stderrTail = (p.stderrTail + d).slice(-8000)
  })
  return p
}

export async function waitFor(what, fn, ms = 15000) {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

export function event(p, name, ms = 15000) {
  return waitFor(`${p.tag}: event ${name} (exit ${p.exitCode}; stderr: ${p.stderrTail.slice(-600)})`, () => p.events.find((e) => e.event === name), ms)
}

export function alive(p) {
  if (p.exitCode !== undefined) return false
  try { process.kill(p.pid, 0); return true } catch { return false }
}

export async function stopProc(p, sig = 'SIGTERM') {
  if (!p || p.exitCode !== undefined) return p?.exitCode
  try { p.child.kill(sig) } catch { /* gone */ }
  const t = setTimeout(() => { try { p.child.kill('SIGKILL') } catch { /* gone */ } }, 4000)
  const c = await p.exited
  clearTimeout(t)
  return c
}

/** Child PIDs of a PID (a gate's workers): forked by its main thread, so listed under it. */
function children(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * RSS in MB and open descriptors of a PID and its children (a gate's workers), from /proc; null
 * once it is gone. For one process RSS is VmRSS. The workers map the same node binary and
 * libraries: their file-backed pages are counted once (the largest), their own (anonymous and
 * shared memory) pages each. `procs`: how many processes that is (each heap keeps its own slack
 * after a burst: the RSS slack of the targets is per process).
 */
export function stats(pid) {
  const one = (p) => {
    const kb = (name, text) => Number(text.match(new RegExp(`${name}:\\s+(\\d+) kB`))?.[1] ?? 0)
    const t = readFileSync(`/proc/${p}/status`, 'utf8')
    return {own: kb('RssAnon', t) + kb('RssShmem', t), file: kb('RssFile', t), fds: readdirSync(`/proc/${p}/fd`).length}
  }
  try {
    const all = [one(pid)]
    for (const c of children(pid)) {
      try {
        all.push(one(c))
      } catch { /* gone */ }
    }
    const own = all.reduce((n, x) => n + x.own, 0)
    return {rss: (own + Math.max(...all.map((x) => x.file))) / 1024, fds: all.reduce((n, x) => n + x.fds, 0), procs: all.length}
  } catch {
    return null
  }
}

export function freePort() {
  return new Promise((res) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => { const {port} = s.address(); s.close(() => res(port)) })
  })
}

export function listen(server, host = '127.0.0.1', port = 0) {
  return new Promise((res) => server.listen(port, host, () => res(server.address().port)))
}

/** Echo backend: each request is one short line answered at once. */
export async function echoServer() {
  const sockets = new Set()
  const s = createServer((c) => { sockets.add(c); c.on('close', () => sockets.delete(c)); c.on('error', () => {}); c.pipe(c) })
  const port = await listen(s)
  return {port, close: () => { for (const c of sockets) c.destroy(); s.close() }}
}

/** A DNS server that never answers: every lookup through it waits out the resolver's timeouts. */
export async function silentDns(address = '127.0.0.153') {
  const s = createSocket('udp4')
  let queries = 0
  s.on('message', () => queries++)
  await new Promise((res, rej) => { s.once('error', rej); s.bind(53, address, res) })
  const dir = mkdtempSync(join(tmpdir(), 'tkh-dns-'))
  const resolv = join(dir, 'resolv.conf')
  writeFileSync(resolv, `nameserver ${address}\n`)
  return {resolv, get queries() { return queries }, close: () => { s.close(); rmSync(dir, {recursive: true, force: true}) }}
}

/** Two client identities under one CA: alice (legitimate) and mallory (the attacker). */
export async function makePki() {
  const dir = mkdtempSync(join(tmpdir(), 'tkh-pki-'))
  const run = (args) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1', CI: '1'}})
    if (r.status !== 0) throw new Error(`tunkit ${args.join(' ')}: ${r.stderr}`)
  }
  run(['pki', 'init', '--dir', dir, '--client', 'alice', '--san', 'localhost', '--san', '127.0.0.1'])
  run(['pki', 'issue', 'mallory', '--dir', dir])
  const f = (n) => join(dir, n)
  return {
    dir,
    alice: {identity: 'alice', cert: f('client.crt'), key: f('client.key'), ca: f('ca.crt')},
    mallory: {identity: 'mallory', cert: f('mallory.crt'), key: f('mallory.key'), ca: f('ca.crt')},
    cleanup: () => rmSync(dir, {recursive: true, force: true}),
  }
}

export const tlsArgs = (id) => ['--cert', id.cert, '--key', id.key, '--ca', id.ca]

/**
 * A gate as deployed: one worker per CPU (TK_HOSTILE_WORKERS overrides), all started at once so
 * the idle figures include every worker (by default the others start at the second connection,
 * which would read as growth under the attack). stats() adds the workers to the primary.
 */
export async function startGate(pki, extra = [], opts = {}) {
  const workers = extra.includes('--workers') ? [] : ['--workers', process.env.TK_HOSTILE_WORKERS ?? 'auto']
  const g = tk(['gate', '--listen', '127.0.0.1:0', '--pki-dir', pki.dir, '--json', ...workers, ...extra], {...opts, tag: 'gate'})
  const e = await event(g, 'listening')
  return Object.assign(g, {port: e.port})
}

export async function startRelay(allow, extra = [], opts = {}) {
  const port = await freePort()
  const r = tk(['relay', '--listen', `127.0.0.1:${port}`, '--name', `127.0.0.1:${port}`, '--json', ...allow.flatMap((a) => ['--allow-next', a]), ...extra], {...opts, tag: 'relay'})
  await event(r, 'listening')
  return Object.assign(r, {port})
}

/** A portal with the given identity and flags; waits for tunnel-up and its listeners. */
export async function startPortal(id, gate, extra, listeners, tag = 'portal') {
  const p = tk(['portal', '--gate', gate, ...tlsArgs(id), '--json', '--backoff-max', '1', ...extra], {tag})
  await event(p, 'tunnel-up')
  await waitFor(`${tag} listeners`, () => p.events.filter((e) => e.event === 'listening').length >= listeners)
  const ports = {}
  const seen = {}
  for (const e of p.events.filter((x) => x.event === 'listening')) {
    const n = seen[e.kind] ?? 0
    seen[e.kind] = n + 1
    ports[n === 0 ? e.kind : `${e.kind}${n}`] = e.port
  }
  return Object.assign(p, {ports})
}

/** One legitimate short request: connect to the portal's -L port, send a line, read it back. */
export function echoRequest(port, timeoutMs = 5000) {
  return new Promise((res) => {
    const t0 = process.hrtime.bigint()
    const msg = `hello ${Math.random()}\n`
    const s = connect(port, '127.0.0.1')
    let got = ''
    const done = (err) => {
      clearTimeout(timer)
      s.destroy()
      res({ok: !err, ms: Number(process.hrtime.bigint() - t0) / 1e6, err})
    }
    const timer = setTimeout(() => done('timeout'), timeoutMs)
    s.on('connect', () => s.write(msg))
    s.on('data', (d) => { got += d; if (got.length >= msg.length) done(got === msg ? null : 'wrong reply') })
    s.on('error', (e) => done(e.code ?? e.message))
    s.on('close', () => done('closed early'))
  })
}

export function percentile(xs, p) {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}

/**
 * Run `request` sequentially until `stop()` is true (or `count` reached), with `gapMs` between
 * requests; returns successes, failures (with the first few reasons) and latency percentiles.
 */
export async function workload(request, {count = Infinity, stop = () => false, gapMs = 5} = {}) {
  const lat = []
  const errs = []
  let n = 0
  while (n < count && !stop()) {
    const r = await request()
    n++
    if (r.ok) lat.push(r.ms)
    else errs.push(r.err)
    if (gapMs) await sleep(gapMs)
  }
  return {n, ok: lat.length, failures: errs.length, errors: [...new Set(errs)].slice(0, 3), p50: percentile(lat, 50), p99: percentile(lat, 99)}
}

/** Sample stats of several processes every `ms` until stopped; keeps the peaks. */
export function sampler(procs, ms = 200) {
  const peak = Object.fromEntries(procs.map((p) => [p.tag, {rss: 0, fds: 0}]))
  const tick = () => {
    for (const p of procs) {
      const s = stats(p.pid)
      if (!s) continue
      peak[p.tag].rss = Math.max(peak[p.tag].rss, s.rss)
      peak[p.tag].fds = Math.max(peak[p.tag].fds, s.fds)
    }
  }
  tick()
  const t = setInterval(tick, ms)
  return {peak, stop: () => { clearInterval(t); tick(); return peak }}
}

/**
 * Run one attack (bench/hostile/attacks.mjs) in its own process, so that its CPU does not stall
 * the legitimate workload's own event loop. Resolves with the attack's summary.
 */
export function attackChild(name, targets, durationMs) {
  const child = spawn(process.execPath, [join(HERE, 'attack-child.mjs'), name, JSON.stringify(targets), String(durationMs)], {stdio: ['ignore', 'pipe', 'pipe']})
  started.add(child)
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err = (err + d).slice(-2000)))
  const done = new Promise((res) => child.on('exit', (code) => {
    started.delete(child)
    const last = out.trim().split('\n').pop()
    try { res(JSON.parse(last)) } catch { res({error: `attack exited ${code}: ${err.slice(-400)}`}) }
  }))
  const timer = setTimeout(() => child.kill('SIGKILL'), durationMs + 15000)
  done.finally(() => clearTimeout(timer))
  return {pid: child.pid, done, stop: () => child.kill('SIGTERM')}
}

/** A helper process that holds sockets (tarpit, hanging listener) with a higher descriptor limit. */
export async function helper(kind) {
  // hang: a listener with a backlog of 0 that never accepts; the kernel drops further SYNs, so a
  // connect to it neither succeeds nor fails until the dialer gives up (Node always accepts).
  const hang = 'import socket,time\ns=socket.socket();s.bind(("127.0.0.1",0));s.listen(0)\nprint(s.getsockname()[1],flush=True)\nwhile True: time.sleep(3600)'
  const child = kind === 'hang'
    ? spawn('python3', ['-c', hang], {stdio: ['ignore', 'pipe', 'inherit']})
    : spawn('sh', ['-c', 'ulimit -n 20000 2>/dev/null; exec "$0" "$@"', process.execPath, join(HERE, 'helper.mjs'), kind], {stdio: ['ignore', 'pipe', 'inherit']})
  started.add(child)
  const port = await new Promise((res, rej) => {
    child.stdout.once('data', (d) => res(Number(String(d).trim())))
    child.once('exit', (c) => rej(new Error(`helper ${kind} exited ${c}`)))
  })
  return {port, pid: child.pid, close: () => { child.kill('SIGKILL'); started.delete(child) }}
}

/** Whether a wildcard listener holds the port: it answers on 127.0.0.2, which a listener bound to
 * 127.0.0.1 (the gate's loopback default for remote forwards) does not. */
export function wildcardTaken(port) {
  return new Promise((res) => {
    const s = connect({port, host: '127.0.0.2'})
    s.once('connect', () => { s.destroy(); res(true) })
    s.once('error', () => res(false))
  })
}
