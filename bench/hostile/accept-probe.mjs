// A/B probe for the pre-authentication flood (issue 9, row 9): the time from connect to the gate's
// first answer (a CLOSE for a bad RELAY frame), 150 probes while preTlsIdle floods the gate from
// 30 other loopback addresses. Measures only the gate's accept path, not TLS.
// Usage: flock /tmp/tunkit-e2e.lock node bench/hostile/accept-probe.mjs [CHECKOUT]
// CHECKOUT (default: this one) is the built tree whose gate is measured, for builds side by side.
import {connect} from 'node:net'
import {resolve} from 'node:path'
import {pathToFileURL} from 'node:url'

const root = resolve(process.argv[2] ?? new URL('../..', import.meta.url).pathname)
const {attackChild, killAll, makePki, percentile, sleep, startGate} = await import(pathToFileURL(`${root}/bench/hostile/lib.mjs`).href)
const pki = await makePki()
const gate = await startGate(pki, [])

const probe = () => new Promise((res) => {
  const t0 = process.hrtime.bigint()
  const s = connect({port: gate.port, host: '127.0.0.1'}, () => s.write(Buffer.alloc(10)))
  const done = () => res(Number(process.hrtime.bigint() - t0) / 1e6)
  s.on('data', () => { done(); s.destroy() })
  s.on('close', done)
  s.on('error', () => {})
})
async function series(n) {
  const ms = []
  for (let i = 0; i < n; i++) { ms.push(await probe()); await sleep(20) }
  return ms
}
const fmt = (ms) => [50, 90, 99].map((p) => percentile(ms, p).toFixed(1)).join(' / ')
try {
  console.log(`idle p50 / p90 / p99 ms: ${fmt(await series(50))}`)
  const attack = attackChild('preTlsIdle', {gate: {host: '127.0.0.1', port: gate.port}}, 9000)
  await sleep(1500)
  const under = await series(150)
  attack.stop()
  const summary = await attack.done
  console.log(`attack p50 / p90 / p99 ms: ${fmt(under)} (${summary.connections} flood connections)`)
} finally {
  killAll()
  pki.cleanup?.()
}
process.exit(0)
