// Opens N connections through a forward, checks each with an echo, and holds them open
// until stdin closes. Prints "ready" once all are up.
import {connect} from 'node:net'
const [port, n = '1000'] = process.argv.slice(2)
const socks = []
for (let i = 0; i < Number(n); i++) {
  await new Promise((res, rej) => {
    const s = connect(Number(port), '127.0.0.1', () => s.write('x'))
    s.once('data', () => res())
    s.once('error', rej)
    socks.push(s)
  })
}
console.log('ready')
process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
