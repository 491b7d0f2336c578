// CPU of a 1-byte round trip on a connection that is already open: TLS 1.3 against plain TCP,
// both ends in this one process. Usage: node bench/tls-pingpong.mjs PKI_DIR (from `tunkit pki init
// --san localhost`). Shows what TLS itself adds per small record, apart from socket set-up.
import {readFileSync} from 'node:fs'
import * as net from 'node:net'
import * as tls from 'node:tls'
const dir = process.argv[2]
const N = 20000

async function measure(name, server, client) {
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const c = await client(server.address().port)
  const u0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) await new Promise((r) => { c.once('data', r); c.write('x') })
  const u = process.cpuUsage(u0)
  console.log(`${name}: round trip ${(Number(process.hrtime.bigint() - t0) / N / 1000).toFixed(1)} µs, CPU ${((u.user + u.system) / N).toFixed(1)} µs (both ends)`)
  c.destroy()
  server.close()
}

const echo = (s) => s.on('data', (b) => s.write(b))
await measure('tcp', net.createServer(echo), (port) => new Promise((r) => { const c = net.connect(port, '127.0.0.1', () => r(c)) }))
await measure('tls 1.3', tls.createServer({cert: readFileSync(`${dir}/gate.crt`), key: readFileSync(`${dir}/gate.key`)}, echo),
  (port) => new Promise((r) => { const c = tls.connect({port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(`${dir}/ca.crt`)}, () => r(c)) }))
