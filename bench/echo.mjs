// Echo backend for the connection test and the idle-session test.
import {createServer} from 'node:net'
createServer((s) => { s.on('error', () => {}); s.pipe(s) }).listen(Number(process.argv[2]), process.argv[3] ?? '127.0.0.1')
