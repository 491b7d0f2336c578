// Hostile-load benchmark (issue 9): every attack against the real gate, relay, portal and STUN
// server on loopback, with a legitimate portal (a different identity) working alongside.
// Prints one markdown row per attack and component and writes bench/results/hostile-<time>.md.
// Knobs: TK_HOSTILE_ONLY=key,key (see SCENARIOS), TK_HOSTILE_ATTACK_MS, TK_HOSTILE_SETTLE_MS.
// Run it through bench/hostile.sh, which holds /tmp/tunkit-e2e.lock.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {ROOT, TARGETS, killAll} from './hostile/lib.mjs'
import {FULL, HEADER, SCENARIOS, row, setup, teardown} from './hostile/scenarios.mjs'

const only = process.env.TK_HOSTILE_ONLY?.split(',')
const cfg = {...FULL, attackMs: Number(process.env.TK_HOSTILE_ATTACK_MS ?? FULL.attackMs), settleMs: Number(process.env.TK_HOSTILE_SETTLE_MS ?? FULL.settleMs)}
const log = (s) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`)
const ctx = await setup()
const rows = []
const t0 = Date.now()
console.log(HEADER)
try {
  for (const s of SCENARIOS.filter((x) => !only || only.includes(x.key))) {
    log(`${s.key}: running`)
    try {
      for (const r of await s.run(ctx, cfg)) {
        rows.push(r)
        console.log(row(r))
        log(`${s.key}: notes ${JSON.stringify(r.notes)}`)
      }
    } catch (e) {
      const r = {attack: s.key, component: s.on, idleP99: NaN, attackP99: NaN, ratio: NaN, requests: 0, failures: 0, rss: [NaN, NaN, NaN], fds: [NaN, NaN, NaN], alive: false, pass: false, why: [`harness: ${e.message.slice(0, 300)}`], notes: {}}
      rows.push(r)
      console.log(row(r))
    }
  }
} finally {
  teardown(ctx)
  killAll()
}
const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
const out = join(ROOT, 'bench/results', `hostile-${stamp}.md`)
mkdirSync(join(ROOT, 'bench/results'), {recursive: true})
const passed = rows.filter((r) => r.pass).length
writeFileSync(out, [
  `# Hostile load (${new Date().toISOString()})`, '',
  `Each attack runs ${cfg.attackMs / 1000} s against fresh components on loopback while a legitimate portal (identity alice; the attacker is mallory) does sequential short requests through -L (for (9): opens new tunnels; for (13): STUN Binding requests). Idle: ${cfg.idleCount} requests first. After the attack, up to ${cfg.settleMs / 1000} s for RSS and descriptors to settle.`,
  `Targets: no exit; no failed legit request; legit p99 < ${TARGETS.p99Ratio} × max(idle p99, ${TARGETS.p99FloorMs} ms); RSS < ${TARGETS.rssMaxMB} MB; RSS after ≤ idle × 1.2 + ${TARGETS.rssSlackMB} MB a process (a gate with workers: RSS of all its processes, shared file pages once); fds after ≤ idle + ${TARGETS.fdSlack}. (4) and (5) are yes/no checks. Node ${process.version}, ${Math.round((Date.now() - t0) / 1000)} s in all. ${passed}/${rows.length} rows pass.`, '',
  HEADER, ...rows.map(row), '', '## Attack summaries', '',
  ...rows.map((r) => `- ${r.attack} (${r.component}): ${JSON.stringify(r.notes)}`), '',
].join('\n'))
log(`written ${out} (${passed}/${rows.length} pass)`)
process.exit(0)
