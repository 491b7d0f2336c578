// Reference, not a product: the least a Node.js TCP forwarder can do (accept, connect, pipe both
// ways; no TLS, no multiplexing, one process). Shows the per-connection floor of Node's net module.
import {connect, createServer} from 'node:net'
const [listen, target] = process.argv.slice(2).map(Number)
createServer((c) => {
  const t = connect(target, '127.0.0.1')
  c.pipe(t).on('error', () => {})
  t.pipe(c).on('error', () => {})
  c.on('error', () => t.destroy())
  t.on('error', () => c.destroy())
}).listen(listen, '127.0.0.1')
