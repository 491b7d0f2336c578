// Socket holders for the hostile-load harness, each in its own process (descriptor limit, CPU):
//   tarpit  accepts every connection and never reads or answers
//   http    a plain HTTP server (a portal pointed at the wrong service)
//   silent  accepts and says nothing
//   ssh     sends an SSH banner
// Prints the loopback port it listens on, then runs until killed.
import {createServer} from 'node:net'
import {createServer as httpServer} from 'node:http'

const kind = process.argv[2]
const held = []
const srv = kind === 'http'
  ? httpServer((req, res) => res.end('not a gate\n'))
  : createServer((s) => {
    s.on('error', () => {})
    if (kind === 'ssh') s.write('SSH-2.0-OpenSSH_9.6\r\n')
    if (kind === 'tarpit' || kind === 'silent') s.pause()
    held.push(s)
  })
srv.on('error', () => {}) // EMFILE on accept: the kernel keeps the connection queued, fine for a tarpit
srv.listen(0, '127.0.0.1', 4096, () => console.log(srv.address().port))
