// One scenario per attack of issue 9: start the real components, measure idle, attack while a
// legitimate portal (identity alice) keeps working, stop, let things settle, judge the targets.
// The attacker is identity mallory, so per-identity limits on the gate can tell them apart.
import {createSocket} from 'node:dgram'
import {
  TARGETS, alive, attackChild, echoRequest, echoServer, event, freePort, helper, makePki, silentDns,
  sampler, sleep, startGate, startPortal, startRelay, stats, stopProc, tk, tlsArgs, waitFor, wildcardTaken, workload,
} from './lib.mjs'
import {bindingRequest, openTunnel} from './attacks.mjs'

export const FULL = {attackMs: 12000, settleMs: 20000, idleCount: 150}
export const SHORT = {attackMs: 8000, settleMs: 20000, idleCount: 60}

/** Idle → attack (legit workload alongside) → settle → rows, one per monitored component. */
export async function measure({label, procs, request, attack, targets, cfg, gapMs = 5, extra = () => ({}), judge = () => []}) {
  await sleep(500)
  const idleWork = await workload(request, {count: cfg.idleCount, gapMs})
  await sleep(300)
  const idle = Object.fromEntries(procs.map((p) => [p.tag, stats(p.pid)]))
  const logBefore = Object.fromEntries(procs.map((p) => [p.tag, p.stderrBytes]))
  const a = attackChild(attack, targets, cfg.attackMs)
  const smp = sampler(procs)
  const end = Date.now() + cfg.attackMs
  const attackWork = await workload(request, {stop: () => Date.now() >= end, gapMs})
  const summary = await a.done
  const peak = smp.stop()
  const logBytes = Object.fromEntries(procs.map((p) => [p.tag, p.stderrBytes - logBefore[p.tag]]))
  // Settle: poll until every component is back within the targets, or the time is up.
  const back = (p, s) => s && s.rss <= idle[p.tag].rss * (1 + TARGETS.rssReturnFrac) + TARGETS.rssSlackMB * (s.procs ?? 1) && s.fds <= idle[p.tag].fds + TARGETS.fdSlack
  const settleEnd = Date.now() + cfg.settleMs
  let after
  for (;;) {
    after = Object.fromEntries(procs.map((p) => [p.tag, stats(p.pid)]))
    if (procs.every((p) => back(p, after[p.tag])) || Date.now() >= settleEnd) break
    await sleep(250)
  }
  const settled = Math.round((cfg.settleMs - Math.max(0, settleEnd - Date.now())) / 100) / 10
  const ratio = cfg.p99Ratio ?? TARGETS.p99Ratio
  const limit = ratio * Math.max(idleWork.p99, TARGETS.p99FloorMs)
  const extraWhy = judge(summary)
  return procs.map((p) => {
    const why = []
    const up = alive(p)
    const i = idle[p.tag] ?? {rss: NaN, fds: NaN}
    const af = after[p.tag] ?? {rss: NaN, fds: NaN}
    const pk = peak[p.tag]
    if (!up) why.push(`${p.tag} exited (${p.exitCode}): ${(p.stderrTail.split('\n').filter((l) => /Error|error:/.test(l)).pop() ?? p.stderrTail.slice(-200)).trim().slice(0, 200)}`)
    if (attackWork.failures > 0 || attackWork.ok === 0) why.push(`legit requests: ${attackWork.failures} of ${attackWork.n} failed (${attackWork.errors.join(', ')})`)
    if (!(attackWork.p99 < limit)) why.push(`legit p99 ${fmt(attackWork.p99)} ms ≥ ${fmt(limit)} ms (${ratio} × max(idle p99 ${fmt(idleWork.p99)}, floor ${TARGETS.p99FloorMs}))`)
    if (!(pk.rss < TARGETS.rssMaxMB)) why.push(`${p.tag} RSS peak ${fmt(pk.rss)} MB ≥ ${TARGETS.rssMaxMB} MB`)
    const slack = TARGETS.rssSlackMB * (af.procs ?? 1)
    if (!(af.rss <= i.rss * (1 + TARGETS.rssReturnFrac) + slack)) why.push(`${p.tag} RSS ${fmt(af.rss)} MB ${cfg.settleMs / 1000} s after the attack, idle ${fmt(i.rss)} MB (limit +20 % +${slack} MB: ${TARGETS.rssSlackMB} MB a process)`)
    if (!(af.fds <= i.fds + TARGETS.fdSlack)) why.push(`${p.tag} ${af.fds} descriptors ${cfg.settleMs / 1000} s after the attack, idle ${i.fds} (slack ${TARGETS.fdSlack})`)
    why.push(...extraWhy)
    return {
      attack: label, component: p.tag, idleP99: idleWork.p99, idleP50: idleWork.p50, attackP99: attackWork.p99, attackP50: attackWork.p50,
      ratio: attackWork.p99 / idleWork.p99, requests: attackWork.n, failures: attackWork.failures,
      rss: [i.rss, pk.rss, af.rss], fds: [i.fds, pk.fds, af.fds], alive: up, settled,
      pass: why.length === 0, why, notes: {...summary, logKB: Math.round(logBytes[p.tag] / 1024), ...extra()},
    }
  })
}

export const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–')

const echoVia = (portal) => () => echoRequest(portal.ports.local)

async function withAll(list, fn) {
  try {
    return await fn()
  } finally {
    for (const x of list.filter(Boolean).reverse()) {
      if (x.child) await stopProc(x)
      else x.close?.()
    }
  }
}

/** Gate-side scenarios: one gate, a legit portal with -L to the echo server, and an attack. */
function gateScenario(label, attack, {targets = async () => ({}), gateArgs = [], dns = false, legitHost = '127.0.0.1', judge} = {}) {
  return async (ctx, cfg) => {
    const own = []
    return withAll(own, async () => {
      const resolver = dns ? await silentDns() : null
      own.push(resolver)
      const extra = await targets(ctx, own)
      const gate = await startGate(ctx.pki, gateArgs, {resolv: resolver?.resolv})
      own.push(gate)
      const portal = await startPortal(ctx.pki.alice, `127.0.0.1:${gate.port}`, ['-L', `127.0.0.1:0:${legitHost}:${ctx.echo.port}`], 1)
      own.push(portal)
      return measure({label, procs: [gate], request: extra.request?.(gate) ?? echoVia(portal), attack, cfg, judge,
        targets: {gate: {host: '127.0.0.1', port: gate.port}, id: ctx.pki.mallory, ...extra, request: undefined, ...(cfg.counts?.[attack] ?? {})}})
    })
  }
}

/** A fresh tunnel each time, as a new portal would open one (for the front-door attack). */
const newTunnel = (ctx) => (gate) => async () => {
  const t0 = process.hrtime.bigint()
  try {
    const t = await openTunnel({host: '127.0.0.1', port: gate.port}, ctx.pki.alice, {timeoutMs: 5000})
    t.tls.destroy()
    return {ok: true, ms: Number(process.hrtime.bigint() - t0) / 1e6}
  } catch (e) {
    return {ok: false, ms: 0, err: e.message.slice(0, 60)}
  }
}

function relayScenario(label, attack, {dns = false, gateByName = false, counts = {}, newTunnels = false} = {}) {
  return async (ctx, cfg) => {
    const own = []
    return withAll(own, async () => {
      const resolver = dns ? await silentDns() : null
      own.push(resolver)
      const gate = await startGate(ctx.pki)
      own.push(gate)
      const relay = await startRelay(['127.0.0.1', 'localhost'], [], {resolv: resolver?.resolv})
      own.push(relay)
      const portal = await startPortal(ctx.pki.alice, `${gateByName ? 'localhost' : '127.0.0.1'}:${gate.port}`, ['--via', `127.0.0.1:${relay.port}`, '-L', `127.0.0.1:0:127.0.0.1:${ctx.echo.port}`], 1)
      own.push(portal)
      // newTunnels: each legit request is a fresh tunnel through the relay (its next-hop lookup included).
      const gateAddr = {host: gateByName ? 'localhost' : '127.0.0.1', port: gate.port}
      const fresh = async () => {
        const t0 = process.hrtime.bigint()
        try {
          const t = await openTunnel(gateAddr, ctx.pki.alice, {via: [{host: '127.0.0.1', port: relay.port}], timeoutMs: 5000})
          t.tls.destroy()
          return {ok: true, ms: Number(process.hrtime.bigint() - t0) / 1e6}
        } catch (e) {
          return {ok: false, ms: 0, err: e.message.slice(0, 60)}
        }
      }
      return measure({label, procs: [relay, gate], request: newTunnels ? fresh : echoVia(portal), attack, cfg,
        targets: {gate: {host: '127.0.0.1', port: gate.port}, relay: {host: '127.0.0.1', port: relay.port}, id: ctx.pki.mallory, ...counts, ...(cfg.counts?.[attack] ?? {})}})
    })
  }
}

function stunRequest(port) {
  return () => new Promise((res) => {
    const s = createSocket('udp4')
    const t0 = process.hrtime.bigint()
    const t = setTimeout(() => { s.close(); res({ok: false, ms: 0, err: 'no STUN answer in 2 s'}) }, 2000)
    s.on('message', () => { clearTimeout(t); s.close(); res({ok: true, ms: Number(process.hrtime.bigint() - t0) / 1e6}) })
    s.send(bindingRequest(), port, '127.0.0.1')
  })
}

async function stunScenario(ctx, cfg) {
  const own = []
  return withAll(own, async () => {
    const port = await freePort()
    const srv = tk(['nat-discover', '--serve', '--listen', `127.0.0.1:${port}`, '--json'], {tag: 'stun'})
    own.push(srv)
    await event(srv, 'listening')
    return measure({label: '(13) STUN from 100 000 sources', procs: [srv], request: stunRequest(port), attack: 'stunAmplify', cfg, gapMs: 50,
      targets: {stun: {host: '127.0.0.1', port}, ...(cfg.counts?.stunAmplify ?? {})},
      judge: (s) => (s.ratio > 1 ? [`answers ${s.ratio}× the bytes of the requests (amplification)`] : [])})
  })
}

function portalScenario(label, attack) {
  return async (ctx, cfg) => {
    const own = []
    return withAll(own, async () => {
      const gate = await startGate(ctx.pki)
      own.push(gate)
      const portal = await startPortal(ctx.pki.alice, `127.0.0.1:${gate.port}`, ['--socks', '127.0.0.1:0', '-L', `127.0.0.1:0:127.0.0.1:${ctx.echo.port}`], 2)
      own.push(portal)
      return measure({label, procs: [portal], request: echoVia(portal), attack, cfg,
        targets: {socks: portal.ports.socks, ...(cfg.counts?.[attack] ?? {})}})
    })
  }
}

const blank = (label, component, pass, why, notes) => ({attack: label, component, idleP99: NaN, attackP99: NaN, ratio: NaN, requests: 0, failures: 0, rss: [NaN, NaN, NaN], fds: [NaN, NaN, NaN], alive: true, pass, why, notes})

/** (4) A portal pointed at something that is not a gate must give up or retry within its timeout. */
async function badGateScenario(ctx) {
  const own = []
  return withAll(own, async () => {
    const notes = {}
    const why = []
    for (const kind of ['http', 'silent', 'ssh']) {
      const h = await helper(kind)
      own.push(h)
      const t0 = Date.now()
      const p = tk(['portal', '--gate', `127.0.0.1:${h.port}`, ...tlsArgs(ctx.pki.alice), '--socks', '127.0.0.1:0', '--connect-timeout', '2', '--backoff-max', '1', '--json'], {tag: `portal-${kind}`})
      own.push(p)
      const said = await waitFor('a failure', () => p.exitCode !== undefined || /fail|refus|timed out|time out|not a|error/i.test(p.stderrTail), 8000).then(() => true, () => false)
      notes[kind] = said ? `gave up or retried after ${((Date.now() - t0) / 1000).toFixed(1)} s` : 'silent for 8 s (hangs)'
      if (!said) why.push(`portal at a ${kind} server: no failure reported within 8 s (connect-timeout 2 s)`)
      await stopProc(p)
    }
    return [blank('(4) portal → HTTP / silent / SSH server', 'portal', why.length === 0, why, notes)]
  })
}

/** (5) -R 0.0.0.0:PORT from an identity no rule grants a remote forward to. */
async function remoteBindScenario(ctx) {
  const own = []
  return withAll(own, async () => {
    const gate = await startGate(ctx.pki, ['--allow', `alice=127.0.0.1:${ctx.echo.port}`, '--allow', `mallory=127.0.0.1:${ctx.echo.port}`])
    own.push(gate)
    const port = await freePort()
    const p = tk(['portal', '--gate', `127.0.0.1:${gate.port}`, ...tlsArgs(ctx.pki.mallory), '--json', '-R', `0.0.0.0:${port}:127.0.0.1:${ctx.echo.port}`], {tag: 'portal-mallory'})
    own.push(p)
    await waitFor('tunnel-up or exit', () => p.exitCode !== undefined || p.events.some((e) => e.event === 'tunnel-up'), 10000).catch(() => {})
    await sleep(500)
    const taken = await wildcardTaken(port)
    await stopProc(p)
    const why = taken ? [`the gate listens on 0.0.0.0:${port} for mallory, whom no rule allows a remote forward`] : []
    return [blank('(5) -R 0.0.0.0 without policy', 'gate', !taken, why, {wildcardListener: taken})]
  })
}

/** Every scenario: key, which process it targets, and how to run it. */
export const SCENARIOS = [
  {key: 'socks-malformed', on: 'portal', run: portalScenario('(1) SOCKS5 NUL / 0xE9 / scoped IPv6 domains', 'socksMalformed')},
  {key: 'udp-assoc', on: 'portal', run: portalScenario('(2) UDP ASSOCIATE then close ×2000', 'udpAssocLeak')},
  {key: 'bad-gate', on: 'portal', run: badGateScenario},
  {key: 'remote-bind', on: 'gate', run: remoteBindScenario},
  {key: 'early-data', on: 'gate', run: gateScenario('(6) 1200 opens to a hanging target + 2 MiB early data', 'earlyDataHang', {
    targets: async (ctx, own) => { const h = await helper('hang'); own.push(h); return {hangPort: h.port} },
  })},
  {key: 'tarpit', on: 'gate', run: gateScenario('(7) 5 tunnels × 4096 sessions to tarpits', 'tarpitSessions', {
    targets: async (ctx, own) => { const h = await helper('tarpit'); own.push(h); return {tarpitPort: h.port} },
  })},
  {key: 'silent-dns', on: 'gate', run: gateScenario('(8) 40 opens by name, resolver never answers', 'silentDnsOpens', {dns: true, legitHost: 'localhost'})},
  {key: 'pre-tls', on: 'gate', run: gateScenario('(9) 3000 idle pre-TLS connections (legit: new tunnels)', 'preTlsIdle', {
    targets: async (ctx) => ({request: newTunnel(ctx)}),
  })},
  {key: 'open-flood', on: 'gate', run: gateScenario('(10) UsherOpen flood on one tunnel', 'openFlood', {
    targets: async () => ({closedPort: await freePort()}),
  })},
  {key: 'relay-self', on: 'relay', run: relayScenario('(11) RELAY path naming the relay twice', 'relaySelfLoop')},
  {key: 'relay-unresolvable', on: 'relay', run: relayScenario('(12) unresolvable next hops (legit: new tunnels, gate by name)', 'relayUnresolvable', {dns: true, gateByName: true, newTunnels: true})},
  {key: 'stun', on: 'stun', run: stunScenario},
]

export async function setup() {
  return {pki: await makePki(), echo: await echoServer()}
}

export function teardown(ctx) {
  ctx.echo?.close()
  ctx.pki?.cleanup()
}

export const HEADER = '| attack | component | idle p99 ms | attack p99 ms | ratio | failures | RSS MB idle/peak/after | fds idle/peak/after | alive | result |\n|---|---|---|---|---|---|---|---|---|---|'

export function row(r) {
  const res = r.pass ? 'PASS' : `FAIL: ${r.why.join('; ')}`
  return `| ${r.attack} | ${r.component} | ${fmt(r.idleP99)} | ${fmt(r.attackP99)} | ${fmt(r.ratio)} | ${r.failures}/${r.requests} | ${r.rss.map((x) => fmt(x, 0)).join('/')} | ${r.fds.map((x) => (Number.isFinite(x) ? x : '–')).join('/')} | ${r.alive ? 'yes' : 'NO'} | ${res.replace(/\|/g, '/')} |`
}
