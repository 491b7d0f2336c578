#!/usr/bin/env node
// IKEv2 load generator: N initiators (tunkit's sans-I/O IkeInitiator) against one responder, each
// with its own identity (so INITIAL_CONTACT replaces nothing), all on one UDP socket per local
// address, demultiplexed by initiator SPI. Port 4500 traffic carries the non-ESP marker.
//
//   node bench/ike/load.mjs GATEWAY --psk-file F [--count N] [--parallel P] [--bind ADDR] [--hold]
//        [--id-prefix load | --id ID] [--no-initial-contact] [--child-spi HEX] [--delete-child]
//
// Without --hold, each IKE_SA is deleted once up (a set-up rate); with --hold they stay up until
// SIGINT/SIGTERM (for the responder's memory with N SAs), answering the responder's DPDs.
// --id gives every initiator the same identity; with --no-initial-contact they test the
// responder's limit per identity, without it each replaces the ones before. --child-spi makes every
// initiator offer that inbound ESP SPI, and --delete-child deletes each first CHILD_SA once up (tests:
// a client that takes another's SPI).
// Prints {count, ok, failed, seconds, perSecond, p50, p90, p99, errors} as one JSON line.
import {randomBytes} from 'node:crypto'
import {createSocket} from 'node:dgram'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const {IkeInitiator} = await import(join(root, 'dist/src/ike/core/initiator.js'))
const {idFromString} = await import(join(root, 'dist/src/ike/codec/id.js'))

const {values: o, positionals} = parseArgs({
  allowPositionals: true,
  options: {
    'psk-file': {type: 'string'},
    count: {type: 'string', default: '100'},
    parallel: {type: 'string', default: '16'},
    bind: {type: 'string', default: '0.0.0.0'},
    hold: {type: 'boolean', default: false},
    'id-prefix': {type: 'string', default: 'load'},
    id: {type: 'string'},
    'no-initial-contact': {type: 'boolean', default: false},
    'child-spi': {type: 'string'},
    'delete-child': {type: 'boolean', default: false},
    'timeout': {type: 'string', default: '60'},
  },
})
const gateway = positionals[0]
if (!gateway || !o['psk-file']) {
  process.stderr.write('usage: load.mjs GATEWAY --psk-file F [--count N] [--parallel P] [--bind ADDR] [--hold]\n')
  process.exit(2)
}
const psk = Buffer.from(readFileSync(o['psk-file'], 'utf8').split(/\r?\n/)[0])
const count = Number(o.count)
const parallel = Number(o.parallel)

// Every 4-byte random draw is the child SPI (the only other one, lifetime jitter, does not matter here).
const spi = o['child-spi'] && Buffer.from(o['child-spi'], 'hex')
const deps = spi ? {random: (n) => (n === 4 ? Buffer.from(spi) : randomBytes(n))} : {}
const sock = createSocket('udp4')
await new Promise((r) => sock.bind(0, o.bind, r))
const local = sock.address()
const bySpi = new Map()
const times = []
const errors = {}
let started = 0
let ok = 0
let failed = 0
let active = 0
/** IKE_SAs the responder deleted (with --hold: printed as {deletedByPeer} when we end). */
let deletedByPeer = 0
const t0 = performance.now()

function send(to, data) {
  sock.send(to.port === 4500 ? Buffer.concat([Buffer.alloc(4), data]) : data, to.port, to.address)
}

sock.on('message', (d, r) => {
  if (r.port === 4500) {
    if (d.length < 5 || d.readUInt32BE(0) !== 0) return
    d = d.subarray(4)
  }
  const e = bySpi.get(d.subarray(0, 8).toString('hex'))
  if (e) run(e, e.m.receive(d, Date.now()))
})

function run(e, actions) {
  for (const a of actions) {
    if (a.type === 'send') send(a.to, a.data)
    else if (a.type === 'timer') {
      clearTimeout(e.timer)
      e.timer = setTimeout(() => run(e, e.m.tick(Date.now())), Math.max(0, a.at - Date.now()))
    } else if (a.type === 'established') {
      times.push(performance.now() - e.t)
      ok++
      if (o['delete-child']) run(e, e.m.ikeSa.deleteChild(a.sa.child, Date.now()))
      if (!o.hold) run(e, e.m.ikeSa.close(Date.now()))
      else finish(e, false)
    } else if (a.type === 'failed') {
      failed++
      errors[a.error.message] = (errors[a.error.message] ?? 0) + 1
      finish(e, true)
    } else if (a.type === 'deleted' && a.what === 'ike') {
      if (a.by === 'peer') deletedByPeer++
      finish(e, true)
    }
  }
}

function finish(e, forget) {
  if (e.done) return
  e.done = true
  if (forget) {
    clearTimeout(e.timer)
    bySpi.delete(e.spi)
  }
  active--
  next()
}

function next() {
  while (active < parallel && started < count) {
    const n = started++
    active++
    // Our NAT_DETECTION_SOURCE_IP names port 0: the responder sees a NAT, both float to 4500 (as key-exchange does).
    const m = new IkeInitiator({local: {address: local.address === '0.0.0.0' ? '127.0.0.1' : local.address, port: 0}, gateway: {address: gateway, port: 500}, id: idFromString(o.id ?? `${o['id-prefix']}-${n}.tk.test`), auth: {psk}, initialContact: !o['no-initial-contact']}, deps)
    const e = {m, t: performance.now(), done: false, timer: undefined, spi: ''}
    const actions = m.start(Date.now())
    e.spi = actions.find((a) => a.type === 'send').data.subarray(0, 8).toString('hex')
    bySpi.set(e.spi, e)
    run(e, actions)
  }
  if (active === 0 && started >= count) report()
}

let reported = false
function report() {
  if (reported) return
  reported = true
  const s = (performance.now() - t0) / 1000
  const sorted = times.slice().sort((a, b) => a - b)
  const q = (p) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] * 100) / 100 : null)
  process.stdout.write(JSON.stringify({count, ok, failed, seconds: Math.round(s * 1000) / 1000, perSecond: Math.round((ok / s) * 10) / 10, p50: q(0.5), p90: q(0.9), p99: q(0.99), errors}) + '\n')
  if (!o.hold) {
    sock.close()
    process.exit(0)
  }
}

setTimeout(() => {
  process.stderr.write(`load.mjs: timed out with ${active} in flight\n`)
  report()
  if (!o.hold) process.exit(1)
}, Number(o.timeout) * 1000).unref()
const end = () => {
  if (o.hold) process.stdout.write(JSON.stringify({deletedByPeer}) + '\n')
  process.exit(0)
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, end)
// bench/lib.sh's rss_while holds the SAs until it closes our stdin.
if (o.hold) process.stdin.on('end', end).resume()
next()
