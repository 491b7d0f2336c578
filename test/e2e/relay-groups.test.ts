import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, freePort, stop, tunkit, waitFor, type Proc} from '../helpers/procs.js'
import {makePki, startGate, type Pki} from '../helpers/tunnel.js'

const t = suite<Record<string, any>>('gate groups: load balancing and failover at the last relay') // eslint-disable-line @typescript-eslint/no-explicit-any

const tunnelsTo = (relay: Proc, port: number): number => relay.events.filter((e) => e.event === 'tunnel-up' && e.gate === `127.0.0.1:${port}`).length

t.before(async (ctx) => {
  ctx.pki = await makePki('groups') as Pki
  ctx.g1port = await freePort()
  ctx.g2port = await freePort()
  ctx.gate1 = await startGate(ctx.pki, [], `127.0.0.1:${ctx.g1port}`)
  ctx.gate2 = await startGate(ctx.pki, [], `127.0.0.1:${ctx.g2port}`)
  ctx.rport = await freePort()
  ctx.relay = tunkit(['relay', '--listen', `127.0.0.1:${ctx.rport}`, '--name', `127.0.0.1:${ctx.rport}`, '--json',
    '--group', `gates=127.0.0.1:${ctx.g1port},127.0.0.1:${ctx.g2port}`, '--health-interval', '0.3'])
  await event(ctx.relay, 'listening')
  ctx.portals = [] as Proc[]
})

t.after(async (ctx) => {
  for (const p of [...(ctx.portals ?? []), ctx.relay, ctx.gate1, ctx.gate2]) if (p) await stop(p)
  ctx.pki?.cleanup()
})

const portal = async (ctx: Record<string, any>): Promise<Proc> => { // eslint-disable-line @typescript-eslint/no-explicit-any
  const p = tunkit(['portal', '--via', `127.0.0.1:${ctx.rport}`, '--gate', 'group:gates', '--pki-dir', ctx.pki.dir, '--socks', '127.0.0.1:0', '--json', '--backoff-max', '1'])
  ctx.portals.push(p)
  await event(p, 'tunnel-up')
  return p
}

t('least-connections spreads new tunnels over the group', async (ctx) => {
  await portal(ctx)
  await portal(ctx)
  assert.is(tunnelsTo(ctx.relay, ctx.g1port), 1)
  assert.is(tunnelsTo(ctx.relay, ctx.g2port), 1)
})

t('with gate1 stopped, a new tunnel lands on gate2 (failover at set-up), and gate1 is marked down', async (ctx) => {
  assert.is(await stop(ctx.gate1), 0)
  await portal(ctx)
  assert.is(tunnelsTo(ctx.relay, ctx.g2port), 3, 'the new tunnel and the reconnecting one went to gate2')
  await event(ctx.relay, 'gate-down', (e) => e.gate === `127.0.0.1:${ctx.g1port}`)
})

t('with gate1 back, health checks mark it up and new tunnels are balanced onto it again', async (ctx) => {
  ctx.gate1 = await startGate(ctx.pki, [], `127.0.0.1:${ctx.g1port}`)
  await event(ctx.relay, 'gate-up', (e) => e.gate === `127.0.0.1:${ctx.g1port}`)
  const before = tunnelsTo(ctx.relay, ctx.g1port)
  await portal(ctx)
  await waitFor('a tunnel on gate1', () => tunnelsTo(ctx.relay, ctx.g1port) > before)
})

t.run()
