import {randomBytes} from 'node:crypto'
import {createSocket, type Socket} from 'node:dgram'
import {once} from 'node:events'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {encodeStun, StunMethod} from '../../../src/stun/codec/message.js'
import {StunServer} from '../../../src/stun/io/server.js'
import {waitFor} from '../../helpers/procs.js'

/**
 * Issue 9, item 13, on real sockets: loopback cannot be spoofed, so many local UDP sockets stand in
 * for many sources. A fixed number of requests; the budget is asserted against the time the run
 * took, never the time against a limit.
 */
const t = suite('STUN server: global answer budget (issue 9)')

const SOCKETS = 50
const EACH = 10

t('many sources: answers stay within the global burst plus its rate, every drop is counted, bytes out/in as documented', async () => {
  const log = {log: () => {}, event: () => {}}
  const server = new StunServer({primary: {address: '127.0.0.1', port: 0}, rate: 1000, burst: 1000, globalRate: 1, globalBurst: 100, log})
  const [bound] = await server.listen()
  const clients: Socket[] = []
  let received = 0
  let bytesIn = 0
  let bytesOut = 0
  try {
    for (let i = 0; i < SOCKETS; i++) {
      const s = createSocket('udp4')
      s.on('message', (m) => {
        received++
        bytesIn += m.length
      })
      s.bind(0, '127.0.0.1')
      await once(s, 'listening')
      clients.push(s)
    }
    const started = Date.now()
    for (let k = 0; k < EACH; k++) {
      for (const s of clients) {
        const q = encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId: randomBytes(12), cookie: true})
        bytesOut += q.length
        s.send(q, bound.port, '127.0.0.1')
      }
      // A round at a time, so that the kernel's socket buffer never overflows and loses some.
      await waitFor('the round handled', () => server.answered + server.dropped === (k + 1) * SOCKETS)
    }
    await waitFor('every answer received', () => received === server.answered)
    const seconds = (Date.now() - started) / 1000
    assert.ok(server.answered >= 100, `the burst is answered (${server.answered})`)
    // One address for all: from a second after its first answer it draws on the returning budget too.
    const budgets = seconds >= 1 ? 2 : 1
    assert.ok(server.answered <= budgets * (100 + Math.ceil(seconds) + 1), `${server.answered} answers in ${seconds} s`)
    assert.is(server.overBudget, SOCKETS * EACH - server.answered)
    // 20-byte requests, 32-byte answers (no --alt): at most 1.6 per answered request.
    assert.is(bytesIn, received * 32)
    assert.ok(bytesIn / bytesOut <= 1.6 * server.answered / (SOCKETS * EACH) + 1e-9)
  } finally {
    for (const s of clients) s.close()
    server.close()
  }
})

t('a client that used the server before keeps being answered while new sources exhaust the budget', async () => {
  const log = {log: () => {}, event: () => {}}
  const server = new StunServer({primary: {address: '127.0.0.1', port: 0}, rate: 1000, burst: 1000, globalRate: 5, globalBurst: 20, log})
  const [bound] = await server.listen()
  const sockets: Socket[] = []
  const open = async (address: string): Promise<Socket & {answers: number}> => {
    const s = Object.assign(createSocket('udp4'), {answers: 0})
    s.on('message', () => s.answers++)
    s.bind(0, address)
    await once(s, 'listening')
    sockets.push(s)
    return s
  }
  const ask = (s: Socket): void => s.send(encodeStun({method: StunMethod.BINDING, klass: 'request', transactionId: randomBytes(12), cookie: true}), bound.port, '127.0.0.1')
  try {
    const legit = await open('127.0.0.1')
    ask(legit)
    await waitFor('first answer', () => legit.answers === 1)
    await new Promise((r) => setTimeout(r, 1100))
    // 30 sources new to the server (loopback stands in for spoofed addresses), 3 requests each a
    // round (a round stays within the socket buffer: none is lost before the server sees it).
    const flood = await Promise.all(Array.from({length: 30}, (_, i) => open(`127.0.${2 + (i >> 4)}.${1 + (i & 15)}`)))
    const ROUNDS = 10
    for (let k = 0; k < ROUNDS; k++) {
      const before = server.answered + server.dropped
      for (const s of flood) for (let j = 0; j < 3; j++) ask(s)
      ask(legit)
      await waitFor('the round handled', () => server.answered + server.dropped === before + flood.length * 3 + 1)
    }
    await waitFor('the legit answers received', () => legit.answers === 1 + ROUNDS)
    assert.ok(server.overBudget > 0, 'the flood did exhaust the budget for new sources')
  } finally {
    for (const s of sockets) s.close()
    server.close()
  }
})

t.run()
