// Medians per method and metric, with ratios to ssh -L (and to direct), as a markdown table.
import {readFileSync} from 'node:fs'
const [file, reps, secs] = process.argv.slice(2)
const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t'))
const data = {}
for (const [m, k, v] of rows) ((data[m] ??= {})[k] ??= []).push(Number(v))
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
const span = (a) => `[${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}]`
const methods = Object.keys(data).filter((m) => data[m]['iperf-P1'])
const ref = data['ssh-L']
const out = [`# tunkit stream benchmark (${new Date().toISOString()}, ${reps} reps, iperf3 -t ${secs})`, '',
  '| method | 1 stream Gbit/s | vs ssh -L | 8 streams Gbit/s | vs ssh -L | download, 1 stream (-R) | vs ssh -L | 1000 conns (s) | vs ssh -L (time ratio, >1 = faster) |',
  '|---|---|---|---|---|---|---|---|---|']
for (const m of methods) {
  const d = data[m]
  const r = (k, inv = false) => (ref ? (inv ? med(ref[k]) / med(d[k]) : med(d[k]) / med(ref[k])).toFixed(2) : 'n/a')
  out.push(`| ${m} | ${med(d['iperf-P1']).toFixed(2)} ${span(d['iperf-P1'])} | ${r('iperf-P1')} | ${med(d['iperf-P8']).toFixed(2)} ${span(d['iperf-P8'])} | ${r('iperf-P8')} | ${d['iperf-R1'] ? `${med(d['iperf-R1']).toFixed(2)} ${span(d['iperf-R1'])} | ${r('iperf-R1')}` : 'n/a | n/a'} | ${med(d.conn1000).toFixed(3)} ${span(d.conn1000)} | ${r('conn1000', true)} |`)
}
if (data.tunkit?.['gate-rss-1000-sessions-kB']) {
  out.push('', `Gate RSS: ${(data.tunkit['gate-rss-idle-kB'][0] / 1024).toFixed(0)} MB with the tunnel idle, ${(data.tunkit['gate-rss-1000-sessions-kB'][0] / 1024).toFixed(0)} MB with 1000 open idle sessions (target < 150 MB).`)
}
// The native data path against the TLS one (issue 12 item 2: adopted only at >= 1.5x on one stream).
const nat = data['tunkit-native'], tls = data.tunkit
if (nat && tls) {
  const x = (k) => (nat[k] && tls[k] ? (med(nat[k]) / med(tls[k])).toFixed(2) + '×' : 'n/a')
  const g = (d, k) => (d[k] ? med(d[k]).toFixed(2) : 'n/a')
  out.push('', '| tunkit-native vs tunkit (TLS) | upload 1 stream | upload 8 streams | download 1 stream | download 8 streams |', '|---|---|---|---|---|',
    `| tunkit, Gbit/s | ${g(tls, 'iperf-P1')} | ${g(tls, 'iperf-P8')} | ${g(tls, 'iperf-R1')} | ${g(tls, 'iperf-R8')} |`,
    `| tunkit-native, Gbit/s | ${g(nat, 'iperf-P1')} | ${g(nat, 'iperf-P8')} | ${g(nat, 'iperf-R1')} | ${g(nat, 'iperf-R8')} |`,
    `| ratio | ${x('iperf-P1')} | ${x('iperf-P8')} | ${x('iperf-R1')} | ${x('iperf-R8')} |`)
}
const dl8 = methods.filter((m) => data[m]['iperf-R8'])
if (dl8.length) out.push('', 'Download, 8 streams (-R -P 8), Gbit/s: ' + dl8.map((m) => `${m} ${med(data[m]['iperf-R8']).toFixed(2)} ${span(data[m]['iperf-R8'])}`).join(', ') + '.')
console.log(out.join('\n'))
