// UDP load generator for STUN servers: keeps WINDOW Binding requests outstanding per socket on
// SOCKETS sockets for SECS seconds and prints answered requests per second as JSON.
import {createSocket} from 'node:dgram'
import {randomBytes} from 'node:crypto'
const [host, port, secs = '5', sockets = '4', window = '32'] = process.argv.slice(2)
const request = () => {
  const b = Buffer.alloc(20)
  b.writeUInt16BE(1, 0)
  b.writeUInt32BE(0x2112a442, 4)
  randomBytes(12).copy(b, 8)
  return b
}
let answered = 0
let sent = 0
const end = Date.now() + Number(secs) * 1000
const socks = []
for (let i = 0; i < Number(sockets); i++) {
  const s = createSocket('udp4')
  socks.push(s)
  s.on('message', (m) => {
    if (m.length >= 20 && m.readUInt16BE(0) === 0x0101) answered++
    if (Date.now() < end) { s.send(request(), Number(port), host); sent++ }
  })
  s.bind(0, () => { for (let k = 0; k < Number(window); k++) { s.send(request(), Number(port), host); sent++ } })
}
// Lost requests shrink the window: top it up every 50 ms.
const refill = setInterval(() => {
  for (const s of socks) for (let k = 0; k < 4; k++) { s.send(request(), Number(port), host); sent++ }
}, 50)
setTimeout(() => {
  clearInterval(refill)
  console.log(JSON.stringify({answeredPerSec: Math.round(answered / Number(secs)), answered, sent}))
  for (const s of socks) s.close()
}, Number(secs) * 1000)
