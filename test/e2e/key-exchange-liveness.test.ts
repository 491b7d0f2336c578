import * as assert from 'uvu/assert'
import {espTrace, exited, ikeTrace, kxSuite, pskClient, pskGateway, type KxCtx} from '../helpers/ipsec-topology.js'
import {event, waitFor} from '../helpers/procs.js'

/**
 * tunkit ⇄ tunkit `key-exchange` over time: a CHILD_SA rekeyed before its sequence numbers run
 * out, DPD held off by ESP traffic and sent when it stops, and a frozen gateway declared dead.
 */
const t = kxSuite('key-exchange: sequence exhaustion and DPD', 'tkxl')

type Child = {esp: string; spiIn: string; spiOut: string}
const SEQ_SOFT = 2 ** 32 - 2 ** 16
const LIMIT = 2000

/** A ping from the client to the private host 198.18.1.10 (through the tunnel). */
const ping = (ctx: KxCtx, args: string[]): Promise<{stdout: string}> =>
  ctx.topo!.exec(ctx.topo!.ns.c, ['ping', '-n', '-q', '-W', '1', ...args, '198.18.1.10'], 60_000)
const received = (out: string): number => Number(/(\d+) received/.exec(out)?.[1])

t(`sequence numbers running out (TUNKIT_ESP_SEQ_LIMIT=${LIMIT}): a ping flood makes the client rekey its CHILD_SA at seq-soft, traffic goes on under the new SPI, and the gateway never sees a sequence number wrap`, async (ctx) => {
  const gw = pskGateway(ctx, ['--trace'])
  await event(gw, 'listening')
  // Each outbound SA of the client starts LIMIT numbers before seq-soft (2^32 - 2^16).
  const c = pskClient(ctx, {args: ['--trace'], env: {TUNKIT_ESP_SEQ_LIMIT: String(LIMIT)}})
  const old = (await event(c, 'sa-up')).child as Child
  const flood = await ping(ctx, ['-f', '-c', '3000'])
  assert.ok(received(flood.stdout) >= 2999, flood.stdout)
  const rekey = await event(c, 'rekey')
  assert.is(rekey.by, 'us')
  const fresh = rekey.child as Child
  assert.is((rekey.old as Child).spiOut, old.spiOut)
  assert.is.not(fresh.spiOut, old.spiOut)
  assert.is(fresh.esp, old.esp)
  await event(c, 'sa-down', (e) => e.what === 'child' && (e.spis as string[]).includes(old.spiIn))
  assert.match((await ping(ctx, ['-c', '3', '-i', '0.2'])).stdout, /3 received/)
  // The client sent under the old SPI from the first number on, one after another, to seq-soft
  // at least and never past 2^32 - 1; the new SA took over from its own first number.
  const sentOld = espTrace(c, old.spiOut).map((r) => r.seq)
  const sentNew = espTrace(c, fresh.spiOut).map((r) => r.seq)
  assert.ok(sentOld.length >= LIMIT && sentNew.length >= 3, `${sentOld.length} then ${sentNew.length}`)
  assert.equal(sentOld, sentOld.map((_, i) => SEQ_SOFT - LIMIT + 1 + i))
  assert.equal(sentNew, sentNew.map((_, i) => SEQ_SOFT - LIMIT + 1 + i))
  assert.ok(sentOld.at(-1)! < 2 ** 32)
  // The gateway received each SA's numbers only going up, none wrapped round to small ones.
  for (const spi of [old.spiOut, fresh.spiOut]) {
    const seen = espTrace(gw, spi).filter((r) => r.dir === 'in').map((r) => r.seq)
    assert.ok(seen.length > 0 && seen.every((s, i) => s > SEQ_SOFT - LIMIT && (i === 0 || s > seen[i - 1])), `${spi}: ${seen.length} packets, ${seen.slice(0, 3)}…${seen.slice(-3)}`)
  }
})

t('DPD 2 s: under a steady ping the client sends no DPD (ESP arrivals count as liveness); once traffic stops, it does, and the gateway answers', async (ctx) => {
  const gw = pskGateway(ctx)
  await event(gw, 'listening')
  const c = pskClient(ctx, {args: ['--dpd', '2', '--trace']})
  await event(c, 'sa-up')
  const r = await ping(ctx, ['-c', '30', '-i', '0.2'])
  assert.is(received(r.stdout), 30, r.stdout)
  assert.equal(ikeTrace(c, 'INFORMATIONAL'), [], 'no DPD during 6 s of traffic')
  const dpd = await waitFor('a DPD once traffic stopped', () => ikeTrace(c, 'INFORMATIONAL').find((m) => m.dir === 'out' && m.kind === 'request'), 10_000)
  // Order, not timing: the DPD follows the last ESP packet the trace shows.
  let lastEsp = -1
  c.stderr.split('\n').forEach((l, i) => {
    if (/ (->|<-) \S+ ESP /.test(l)) lastEsp = i
  })
  assert.ok(lastEsp >= 0 && dpd.line > lastEsp, `DPD at trace line ${dpd.line}, last ESP at ${lastEsp}`)
  await waitFor('its answer', () => ikeTrace(c, 'INFORMATIONAL').find((m) => m.dir === 'in' && m.kind === 'response'))
  assert.is(c.child.exitCode, null)
})

t('a frozen gateway (SIGSTOP): with --dpd 2 the client declares it dead after the DPD retransmissions, prints one line, removes its device and exits 1', async (ctx) => {
  const gw = pskGateway(ctx)
  await event(gw, 'listening')
  const c = pskClient(ctx, {args: ['--dpd', '2']})
  await event(c, 'sa-up')
  gw.child.kill('SIGSTOP')
  try {
    // DPD after 2 s of silence, then six sends 0.5, 1, 2, 4 and 8 s apart and 16 s for the last answer
    // (33.5 s); the bound only stops a hang, the error line below says the retransmissions ran out.
    assert.is(await exited(c, 60_000), 1, c.stderr)
  } finally {
    gw.child.kill('SIGCONT')
  }
  const errors = c.stderr.split('\n').filter((l) => l.startsWith('tunkit key-exchange: error:'))
  assert.equal(errors.length, 1, c.stderr)
  assert.match(errors[0], /the peer did not answer request \d+ after 6 tries/)
  const links = await ctx.topo!.exec(ctx.topo!.ns.c, ['ip', '-o', 'link'])
  assert.not.match(links.stdout, /tkxl-ct/)
})

t.run()
