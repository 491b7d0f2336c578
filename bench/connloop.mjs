// N sequential short connections: connect, 1-byte echo round trip, close. Prints JSON timings (ms).
//   node connloop.mjs PORT [N] [HOST]
import {connect} from 'node:net'
const [port, n = '1000', host = '127.0.0.1'] = process.argv.slice(2)
const times = []
const t0 = process.hrtime.bigint()
for (let i = 0; i < Number(n); i++) {
  const s0 = process.hrtime.bigint()
  await new Promise((res, rej) => {
    const s = connect(Number(port), host, () => s.write('x'))
    s.once('data', () => { s.destroy(); res() })
    s.once('error', rej)
    // Closed without an answer (a forwarder refused it): an error, not a hang.
    s.once('close', () => rej(new Error(`connection ${i + 1} closed without an answer`)))
  })
  times.push(Number(process.hrtime.bigint() - s0) / 1e6)
}
times.sort((a, b) => a - b)
console.log(JSON.stringify({seconds: Number(process.hrtime.bigint() - t0) / 1e9, p50: times[Math.floor(times.length / 2)], p90: times[Math.floor(times.length * 0.9)], p99: times[Math.floor(times.length * 0.99)]}))
