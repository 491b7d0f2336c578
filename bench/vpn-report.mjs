// Medians per path, with the ratios the relay/VPN issue sets targets for, as markdown.
import {readFileSync} from 'node:fs'
const [file, reps, secs] = process.argv.slice(2)
const data = {}
for (const [m, k, v] of readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split('\t'))) ((data[m] ??= {})[k] ??= []).push(Number(v))
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] }
const cell = (a) => (a ? `${med(a).toFixed(2)} [${Math.min(...a).toFixed(2)}–${Math.max(...a).toFixed(2)}]` : 'n/a')
const ratio = (m, ref, k) => (data[m]?.[k] && data[ref]?.[k] ? (med(data[m][k]) / med(data[ref][k])).toFixed(2) : 'n/a')
const table = (title, rows, ref) => [`### ${title}`, '', `| path | 1 stream Gbit/s | vs ${ref} | 4 streams Gbit/s | vs ${ref} |`, '|---|---|---|---|---|',
  ...rows.filter((m) => data[m]).map((m) => `| ${m} | ${cell(data[m].P1)} | ${ratio(m, ref, 'P1')} | ${cell(data[m].P4)} | ${ratio(m, ref, 'P4')} |`), '']
const out = [`# tunkit VPN and relay benchmark (${new Date().toISOString()}, ${reps} reps, iperf3 -t ${secs}, namespaces tkb-a -> tkb-r -> tkb-b)`, '',
  ...table('Layer 3: tunkit VPN mode (offloads on) vs wireguard-go (issue 12 target: ≥ 2.5 Gbit/s and ≥ 5×)', ['routed', 'wireguard-go', 'tunkit-vpn'], 'wireguard-go'),
  ...table('TCP forwards through two relays (target ≥ 0.8× the socat chain)', ['tunkit-L', 'tunkit-L-2-relays', 'tunkit-L-2-socat-hops', 'socat-chain'], 'tunkit-L-2-socat-hops'),
  `Two tunkit relays against two socat hops carrying the same tunnel: ${ratio('tunkit-L-2-relays', 'tunkit-L-2-socat-hops', 'P1')}× (1 stream), ${ratio('tunkit-L-2-relays', 'tunkit-L-2-socat-hops', 'P4')}× (4 streams).`,
  `The whole tunkit chain (portal, two relays, gate, TLS) against a plain two-hop socat chain (no tunnel, no crypto): ${ratio('tunkit-L-2-relays', 'socat-chain', 'P1')}× (1 stream), ${ratio('tunkit-L-2-relays', 'socat-chain', 'P4')}× (4 streams).`, '']
if (data.relay) out.push(`Relay RSS: ${(data.relay['rss-after-traffic-kB'][0] / 1024).toFixed(0)} MB after the throughput runs, ${(data.relay['rss-1000-kB'][0] / 1024).toFixed(0)} MB with 1000 spliced tunnels (target < 100 MB).`)
console.log(out.join('\n'))
