import {connect} from 'node:net'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import type {Logger} from '../../../src/lib/log.js'
import {CLOSE_STATUS_NAMES, decodeTunnel, encodeTunnel} from '../../../src/tunnel/codec/tunnel.js'
import {parseHopRule} from '../../../src/tunnel/core/next-hop.js'
import {Relay} from '../../../src/tunnel/io/relay.js'

/**
 * Issue 9, item 12: "hop-unresolvable" against "hop-not-allowed" told anyone which names resolve.
 * The relay now decides on its rules before it looks a name up, and answers a name that does not
 * resolve like one that resolves to an address no rule allows; only its own log tells them apart.
 * Lookups are faked (no DNS traffic); the relay listens on loopback.
 */
const t = suite<{relay?: Relay; port: number; lookups: string[]; lines: string[]}>('relay: no DNS oracle', {port: 0, lookups: [], lines: []})

/** Fake DNS: a.example and b.example resolve (to addresses the rules do not allow); nothing else does. */
const zone: Record<string, string> = {'a.example': '203.0.113.7', 'b.example': '198.51.100.7'}

t.before(async (ctx) => {
  const log: Logger = {log: (_l, msg) => void ctx.lines.push(msg), event: () => {}}
  ctx.relay = new Relay({
    host: '127.0.0.1', port: 0, name: 'relay', log, groups: [],
    // A name rule for the gate's port, an address range for relays on 4500.
    allowNext: ['gate.example:4433', '198.18.0.0/15:4500'].map(parseHopRule),
    lookup: async (host) => {
      ctx.lookups.push(host)
      const address = zone[host]
      if (!address) throw Object.assign(new Error(`cannot resolve ${host}`), {code: 'TK_HOST_NOT_FOUND'})
      return {address}
    },
  })
  ctx.port = (await ctx.relay.listen()).port
})

t.after(async (ctx) => void (await ctx.relay?.close()))

function ask(port: number, next: string): Promise<{status: string; reason: string}> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1', () => s.write(encodeTunnel({kind: 'relay', origin: 'probe', path: ['relay:4500', next, 'gate.example:4433'], hops: 0})))
    let buf = Buffer.alloc(0)
    s.on('data', (d) => (buf = Buffer.concat([buf, d])))
    s.on('error', rej)
    s.on('close', () => {
      const f = decodeTunnel({type: buf.readInt16BE(4), id: buf.readUInt16BE(6), body: buf.subarray(8, 8 + buf.readUInt32BE(0))})
      if (f.kind !== 'close') return rej(new Error(`got ${f.kind}`))
      res({status: CLOSE_STATUS_NAMES[f.status], reason: f.reason})
    })
  })
}

t('a name no rule could allow (wrong port for every rule) is refused without a lookup', async (ctx) => {
  ctx.lookups.length = 0
  for (const next of ['a.example:22', 'nowhere.example:22', 'other.example:4433']) {
    const r = await ask(ctx.port, next)
    assert.equal(r, {status: 'hop-not-allowed', reason: `next hop ${next} is not allowed (--allow-next)`})
  }
  assert.equal(ctx.lookups, [], 'nothing was looked up')
  assert.ok(ctx.lines.some((l) => /other\.example:4433 is not allowed .*not resolved/.test(l)), ctx.lines.join('\n'))
})

t('behind an address rule, "does not resolve" and "resolves to a disallowed address" get the same answer; the log tells them apart', async (ctx) => {
  ctx.lookups.length = 0
  const answers = []
  for (const next of ['a.example:4500', 'nowhere.example:4500', 'b.example:4500', 'nxdomain.example:4500']) {
    const r = await ask(ctx.port, next)
    answers.push({status: r.status, reason: r.reason.replace(next, 'HOP')})
  }
  assert.is(new Set(answers.map((a) => JSON.stringify(a))).size, 1, JSON.stringify(answers))
  assert.equal(answers[0], {status: 'hop-not-allowed', reason: 'next hop HOP is not allowed (--allow-next)'})
  assert.equal(ctx.lookups, ['a.example', 'nowhere.example', 'b.example', 'nxdomain.example'])
  assert.ok(ctx.lines.some((l) => /a\.example:4500 is not allowed .*resolves to 203\.0\.113\.7/.test(l)))
  assert.ok(ctx.lines.some((l) => /nowhere\.example:4500 is not allowed .*does not resolve/.test(l)))
})

t('a name the operator allowed by name may still say it does not resolve', async (ctx) => {
  const r = await ask(ctx.port, 'gate.example:4433')
  assert.is(r.status, 'hop-unresolvable')
})

t.run()
