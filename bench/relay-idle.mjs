// Opens N tunnels through a relay to an echo backend (the next hop), each with its RELAY frame,
// and holds them open until stdin closes. A tunnel counts once the backend's echo of the RELAY
// frame comes back, i.e. the relay has connected the next hop and spliced. Prints "ready N".
import {connect} from 'node:net'
import {encodeTunnel} from '../dist/src/tunnel/codec/tunnel.js'
const [host, port, next, n = '1000'] = process.argv.slice(2)
const frame = encodeTunnel({kind: 'relay', origin: 'bench', path: [`${host}:${port}`, next]})
const socks = []
for (let i = 0; i < Number(n); i++) {
  await new Promise((res, rej) => {
    const s = connect(Number(port), host, () => s.write(frame))
    let got = 0
    const onData = (d) => { if ((got += d.length) >= frame.length) { s.off('data', onData); res() } }
    s.on('data', onData)
    s.once('error', rej)
    socks.push(s)
  })
}
console.log(`ready ${socks.length}`)
process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
