#!/usr/bin/env node
// An IKE_SA_INIT flood as from spoofed sources: well-formed requests (a real offer, an x25519 KE,
// a fresh SPI and nonce each) sent from the given local addresses at a fixed rate, whose answers
// (COOKIE, or a half-open SA's IKE_SA_INIT response) are never read, as a spoofer never sees them.
//
//   node bench/ike/flood.mjs GATEWAY --from 203.0.113.100,203.0.113.101,... [--rate 10000] [--seconds 5]
//
// Prints {sent, seconds, rate} as one JSON line.
import {randomFillSync} from 'node:crypto'
import {createSocket} from 'node:dgram'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const {IkeInitiator} = await import(join(root, 'dist/src/ike/core/initiator.js'))
const {idFromString} = await import(join(root, 'dist/src/ike/codec/id.js'))

const {values: o, positionals} = parseArgs({allowPositionals: true, options: {from: {type: 'string'}, rate: {type: 'string', default: '10000'}, seconds: {type: 'string', default: '5'}}})
const gateway = positionals[0]
if (!gateway || !o.from) {
  process.stderr.write('usage: flood.mjs GATEWAY --from ADDR[,ADDR...] [--rate N] [--seconds S]\n')
  process.exit(2)
}
const sources = o.from.split(',')
const socks = await Promise.all(sources.map((a) => new Promise((r) => {
  const s = createSocket('udp4')
  s.on('error', () => {})
  // Answers are dropped unread: a spoofed source never sees them.
  s.bind(0, a, () => {
    s.setRecvBufferSize?.(4096)
    r(s)
  })
})))

// One real request; each copy gets a new SPI (bytes 0-7) and a new nonce.
const m = new IkeInitiator({local: {address: sources[0], port: 0}, gateway: {address: gateway, port: 500}, id: idFromString('flood.tk.test'), auth: {psk: Buffer.from('x')}})
const template = m.start(Date.now()).find((a) => a.type === 'send').data
const ni = template.indexOf(m.ni ?? Buffer.alloc(0))
const nonceAt = ni > 0 ? ni : -1

const rate = Number(o.rate)
const end = performance.now() + Number(o.seconds) * 1000
const t0 = performance.now()
let sent = 0
const tickMs = 5
const timer = setInterval(() => {
  const now = performance.now()
  if (now >= end) {
    clearInterval(timer)
    const s = (now - t0) / 1000
    process.stdout.write(JSON.stringify({sent, seconds: Math.round(s * 1000) / 1000, rate: Math.round(sent / s)}) + '\n')
    for (const x of socks) x.close()
    return
  }
  const due = Math.floor(((now - t0) / 1000) * rate) - sent
  for (let i = 0; i < due; i++) {
    const d = Buffer.from(template)
    randomFillSync(d, 0, 8)
    if (nonceAt > 0) randomFillSync(d, nonceAt, 32)
    socks[sent % socks.length].send(d, 500, gateway)
    sent++
  }
}, tickMs)
