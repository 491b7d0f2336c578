import {readdirSync} from 'node:fs'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {encodeTunnel, type TunnelFrame} from '../../src/tunnel/codec/tunnel.js'
import {event, freePort, stop, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {closeFor} from '../helpers/tunnel.js'

/**
 * Issue 9, item 11: a RELAY path that names a relay twice (or aliases it) made the relay dial itself
 * ~3 350 times from one frame until it ran out of descriptors. Now a relay never dials itself, and
 * the HOPS byte it increments kills loops through several relays. Loopback only; every attack is a
 * fixed number of frames.
 */
const t = suite<{a?: Proc; b?: Proc; pa: number; pb: number; dead: number}>('relay loops (issue 9)', {pa: 0, pb: 0, dead: 0})

async function startRelay(port: number): Promise<Proc> {
  // The allow-next range of the issue: all of loopback, the relay's own address included.
  const r = tunkit(['relay', '--listen', `127.0.0.1:${port}`, '--name', `127.0.0.1:${port}`, '--allow-next', '127.0.0.0/8', '--json'])
  await event(r, 'listening')
  return r
}

const fds = (p: Proc): number => readdirSync(`/proc/${p.child.pid}/fd`).length

/** Sends one RELAY frame; resolves with the status of the CLOSE that comes back. */
const answer = (port: number, f: TunnelFrame): Promise<{status: string; reason: string}> => closeFor(port, encodeTunnel(f))

t.before(async (ctx) => {
  ctx.pa = await freePort()
  ctx.pb = await freePort()
  ctx.dead = await freePort() // the "gate" at the end of every path: never reached
  ctx.a = await startRelay(ctx.pa)
  ctx.b = await startRelay(ctx.pb)
})

t.after(async (ctx) => {
  for (const p of [ctx.a, ctx.b]) if (p) await stop(p)
})

t('the issue 9 attack: a path naming the relay twice, or an alias of it, is refused with hop-loop; descriptors stay flat', async (ctx) => {
  const me = `127.0.0.1:${ctx.pa}`
  const gate = `127.0.0.1:${ctx.dead}`
  const paths = [
    [me, me, gate], // the frame of the issue
    [me, `127.1:${ctx.pa}`, gate], // an address of ours: the path names us twice
    [me, `localhost:${ctx.pa}`, gate], // a name (never matched by lookup) that resolves to us
    [me, `[::ffff:127.0.0.1]:${ctx.pa}`, gate],
    [me, `2130706433:${ctx.pa}`, gate], // 127.0.0.1 as one number (inet_aton)
    [me, `127.0.0.1:${ctx.pb}`, `127.0.0.1:${ctx.pa}`, gate], // through B and back: HOPS
  ]
  const before = fds(ctx.a!)
  let peak = before
  // 5 frames a second for 20 s broke the relay of the issue; here 100 frames in rounds of 10.
  for (let round = 0; round < 10; round++) {
    const answers = await Promise.all(Array.from({length: 10}, (_, i) => answer(ctx.pa, {kind: 'relay', origin: 'attacker', path: paths[(round + i) % paths.length], hops: 0})))
    for (const r of answers) assert.is(r.status, 'hop-loop', r.reason)
    peak = Math.max(peak, fds(ctx.a!))
  }
  // At most the round's ten connections are open at once; none to itself.
  assert.ok(peak <= before + 12, `descriptors went from ${before} to ${peak}`)
  await waitFor('descriptors back to where they were', () => fds(ctx.a!) <= before + 2)
  assert.is(ctx.a!.events.filter((e) => e.event === 'tunnel-up').length, 0, 'nothing was forwarded')
  assert.match(ctx.a!.stderr, /hop-loop: path names this relay \(127\.0\.0\.1:\d+\) 2 times/)
  assert.match(ctx.a!.stderr, /hop-loop: next hop localhost:\d+ is this relay \(127\.0\.0\.1:\d+\)/)
  // A frame from a portal that predates HOPS gets the same treatment.
  assert.is((await answer(ctx.pa, {kind: 'relay', origin: 'old', path: [me, me, gate]})).status, 'hop-loop')
})

t('a two-relay ping-pong (A -> B -> alias of A) dies on the hop count after one lap', async (ctx) => {
  const a = `127.0.0.1:${ctx.pa}`
  const b = `127.0.0.1:${ctx.pb}`
  const upA = ctx.a!.events.filter((e) => e.event === 'tunnel-up').length
  const upB = ctx.b!.events.filter((e) => e.event === 'tunnel-up').length
  // B may dial "localhost:pa" (it is not B), and A does not take that name for its own (names in a
  // path are not looked up): only HOPS, 2 when the frame comes back to A, node 1 of the path, shows the loop.
  const r = await answer(ctx.pa, {kind: 'relay', origin: 'attacker', path: [a, b, `localhost:${ctx.pa}`, `localhost:${ctx.pb}`, `127.0.0.1:${ctx.dead}`], hops: 0})
  assert.is(r.status, 'hop-loop')
  assert.match(r.reason, /passed 2 relays but this relay is node 1/)
  await waitFor('both relays report the tunnel down', () => ctx.a!.events.some((e) => e.event === 'tunnel-down') && ctx.b!.events.some((e) => e.event === 'tunnel-down'))
  assert.is(ctx.a!.events.filter((e) => e.event === 'tunnel-up').length - upA, 1, 'A forwarded once')
  assert.is(ctx.b!.events.filter((e) => e.event === 'tunnel-up').length - upB, 1, 'B forwarded once')
})

t('the hop limit on the wire: a frame that says it has passed --max-hops relays is refused', async (ctx) => {
  const path = Array.from({length: 7}, (_, i) => `relay${i}.example:4500`)
  path[6] = `127.0.0.1:${ctx.pa}`
  const r = await answer(ctx.pa, {kind: 'relay', origin: 'x', path: [...path, `127.0.0.1:${ctx.dead}`], hops: 8})
  assert.is(r.status, 'hop-limit')
})

t.run()
