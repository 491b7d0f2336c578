// N sequential short connections: connect, 1-byte echo round trip, close. Prints JSON timings.
import {connect} from 'node:net'
const [port, n = '1000'] = process.argv.slice(2)
const times = []
const t0 = process.hrtime.bigint()
for (let i = 0; i < Number(n); i++) {
  const s0 = process.hrtime.bigint()
  await new Promise((res, rej) => {
    const s = connect(Number(port), '127.0.0.1', () => s.write('x'))
    s.once('data', () => { s.destroy(); res() })
    s.once('error', rej)
  })
  times.push(Number(process.hrtime.bigint() - s0) / 1e6)
}
times.sort((a, b) => a - b)
console.log(JSON.stringify({seconds: Number(process.hrtime.bigint() - t0) / 1e9, p50: times[Math.floor(times.length / 2)], p99: times[Math.floor(times.length * 0.99)]}))
