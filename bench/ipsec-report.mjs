// bench/ipsec.sh's results as markdown: medians per path, with the ratios issue 11 sets targets for.
import {readFileSync} from 'node:fs'
const [file, reps, secs] = process.argv.slice(2)
const data = {}
const hs = {}
for (const [m, k, v] of readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t'))) {
  if (k === 'handshakes') (hs[m] ??= []).push(JSON.parse(v))
  else ((data[m] ??= {})[k] ??= []).push(Number(v))
}
const med = (a) => { const s = [...a].filter((x) => !Number.isNaN(x)).sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : NaN }
const cell = (a) => (a ? `${med(a).toFixed(2)} [${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}]` : 'n/a')
const ratio = (m, ref, k) => (data[m]?.[k] && data[ref]?.[k] ? (med(data[m][k]) / med(data[ref][k])).toFixed(2) : 'n/a')
const rows = ['wireguard-go', 'tunkit-tunkit', 'strongswan-strongswan', 'tunkit-strongswan']
const hsMed = (m, k) => med((hs[m] ?? []).map((r) => r[k] ?? NaN))
const hsRow = (m) => `| ${m} | ${hsMed(m, 'perSecond')} | ${hsMed(m, 'p50')} | ${hsMed(m, 'p99')} | ${(hs[m] ?? []).map((r) => `${r.ok ?? 0}/${r.count ?? '?'}`).join(', ')} |`
const out = [
  `# IPsec benchmark (${new Date().toISOString()}, ${reps} reps, iperf3 -t ${secs}, client namespace -> 198.18.1.10 behind the gateway)`, '',
  '### ESP throughput (iperf3, Gbit/s received)', '',
  '| path | 1 stream | 4 streams |', '|---|---|---|',
  ...rows.filter((m) => data[m]).map((m) => `| ${m} | ${cell(data[m].P1)} | ${cell(data[m].P4)} |`), '',
  `tunkit ⇄ tunkit vs wireguard-go (target ≥ 1.0×): ${ratio('tunkit-tunkit', 'wireguard-go', 'P1')}× (1 stream), ${ratio('tunkit-tunkit', 'wireguard-go', 'P4')}× (4 streams).`,
  `tunkit ⇄ strongSwan vs strongSwan ⇄ strongSwan (target ≥ 1.0×): ${ratio('tunkit-strongswan', 'strongswan-strongswan', 'P1')}× (1 stream), ${ratio('tunkit-strongswan', 'strongswan-strongswan', 'P4')}× (4 streams).`, '',
  '### Handshakes (IKE_SA + first CHILD_SA, bench/ike/load.mjs, PSK)', '',
  '| responder | set-ups/s | p50 ms | p99 ms | ok/count per rep |', '|---|---|---|---|---|',
  hsRow('tunkit-gateway'), hsRow('strongswan-gateway'), '',
  `tunkit gateway vs strongSwan gateway, set-ups per second (target ≥ 1.0×): ${(hsMed('tunkit-gateway', 'perSecond') / hsMed('strongswan-gateway', 'perSecond')).toFixed(2)}×.`, '',
]
const rss = data['tunkit-gateway']
if (rss) {
  const key = Object.keys(rss).find((k) => /^rss-\d+-kB$/.test(k))
  out.push(`tunkit gateway RSS: ${(rss['rss-idle-kB'][0] / 1024).toFixed(0)} MB idle after the handshake runs, ${key ? (rss[key][0] / 1024).toFixed(0) : 'n/a'} MB holding ${key?.split('-')[1]} IKE_SAs with a CHILD_SA each (target < 150 MB).`)
}
console.log(out.join('\n'))
