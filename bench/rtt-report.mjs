// bench/rtt.sh's results as markdown: per RTT and method, medians over the reps of p50/p90 per
// connection and of the total, round trips per connection (p50 / RTT), and how much longer each
// peer took than tunkit (issue 12's target: tunkit ahead of ssh -L and stunnel at every RTT).
import {readFileSync} from 'node:fs'
const [file, reqs, reps] = process.argv.slice(2)
const runs = {}
for (const [m, rtt, json] of readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t'))) ((runs[rtt] ??= {})[m] ??= []).push(JSON.parse(json))
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
const out = [`# Short requests over a delayed link (${new Date().toISOString()}, ${reqs} sequential connections, ${reps} reps, medians)`, '']
for (const rtt of Object.keys(runs).sort((a, b) => a - b)) {
  const r = runs[rtt]
  const m = (k, f) => med(r[k].map((x) => x[f]))
  out.push(`### RTT ${rtt} ms`, '', '| path | p50 ms | p90 ms | total s | round trips per connection | total vs tunkit |', '|---|---|---|---|---|---|')
  for (const k of ['direct', 'tunkit', 'ssh-L', 'stunnel'].filter((k) => r[k])) {
    out.push(`| ${k} | ${m(k, 'p50').toFixed(1)} | ${m(k, 'p90').toFixed(1)} | ${m(k, 'seconds').toFixed(2)} | ${(m(k, 'p50') / Number(rtt)).toFixed(2)} | ${r.tunkit ? (m(k, 'seconds') / m('tunkit', 'seconds')).toFixed(2) + '×' : 'n/a'} |`)
  }
  const ahead = ['ssh-L', 'stunnel'].filter((k) => r[k] && r.tunkit).map((k) => `${k} ${(m(k, 'seconds') / m('tunkit', 'seconds')).toFixed(2)}×`)
  out.push('', `tunkit ahead (peer's total / tunkit's; target > 1.0×): ${ahead.join(', ')}.`, '')
}
console.log(out.join('\n'))
