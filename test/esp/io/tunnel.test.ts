import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {createInterface} from 'node:readline'
import {promisify} from 'node:util'
import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {lacking, missing, unless} from '../../helpers/requires.js'
import {suites, type Case} from '../suites.js'

const run = promisify(execFile)
const A = 'tkesp-a'
const B = 'tkesp-b'
/** Outer addresses (the veth pair) and inner ones (each end's TUN, point to point). */
const OUTER = {a: '192.0.2.1', b: '192.0.2.2'}
const INNER = {a: '10.77.0.1', b: '10.77.0.2'}

/** One end: tunnel-node.ts in a namespace, driven line by line. */
class End {
  private readonly answers: ((v: unknown) => void)[] = []
  readonly ready: Promise<unknown>
  private err = ''

  constructor(readonly ns: string, readonly child: ChildProcess) {
    child.stderr!.on('data', (d) => (this.err += d))
    const lines = createInterface({input: child.stdout!})
    this.ready = new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`${ns}: the ESP node did not start: ${this.err}`)), 10000)
      this.answers.push((v) => { clearTimeout(t); res(v) })
    })
    lines.on('line', (l) => this.answers.shift()?.(JSON.parse(l)))
  }

  static start(ns: string, tun: string, local: string, peer: string, bind: string): End {
    return new End(ns, spawn('ip', ['netns', 'exec', ns, process.execPath, 'dist/test/esp/io/esp-node.js', tun, local, peer, bind], {stdio: ['pipe', 'pipe', 'pipe']}))
  }

  ask<T>(cmd: object): Promise<T> {
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`${this.ns}: no answer to ${JSON.stringify(cmd)}: ${this.err}`)), 5000)
      this.answers.push((v) => {
        clearTimeout(t)
        const e = (v as {error?: string} | null)?.error
        if (e) rej(new Error(`${this.ns}: ${e}`))
        else res(v as T)
      })
      this.child.stdin!.write(JSON.stringify(cmd) + '\n')
    })
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((r) => this.child.once('exit', r))
    this.child.kill('SIGTERM')
    await exited
  }
}

const hex = (b?: Buffer): string | undefined => b?.toString('hex')

/**
 * A CHILD_SA pair between the ends as IKE would install it: A initiator, B responder; A sends
 * with the initiator's keys to B's SPI, B with the responder's keys to A's SPI. Returns the ids
 * [A out, A in, B out, B in].
 */
async function install(a: End, b: End, c: Case, spiA: number, spiB: number): Promise<number[]> {
  const sa = (dir: 'in' | 'out', spi: number, k: Omit<Case, 'name' | 'reverse'>, peer: string | undefined, inner: string): object => ({
    op: 'add', sa: {dir, spi: spi.toString(16).padStart(8, '0'), ...c.suite, encKey: hex(k.encKey), integKey: hex(k.integKey), peer: peer && {address: peer, port: 4500}, selectors: [{from: inner, to: inner}]},
  })
  // Inbound first on both ends, so that no packet meets an end that cannot open it yet.
  const bIn = (await b.ask<{id: number}>(sa('in', spiB, c, undefined, INNER.a))).id
  const aIn = (await a.ask<{id: number}>(sa('in', spiA, c.reverse, undefined, INNER.b))).id
  const aOut = (await a.ask<{id: number}>(sa('out', spiB, c, OUTER.b, INNER.b))).id
  const bOut = (await b.ask<{id: number}>(sa('out', spiA, c.reverse, OUTER.a, INNER.a))).id
  return [aOut, aIn, bOut, bIn]
}

async function remove(a: End, b: End, ids: number[]): Promise<void> {
  await a.ask({op: 'remove', id: ids[0]})
  await b.ask({op: 'remove', id: ids[2]})
  await a.ask({op: 'remove', id: ids[1]})
  await b.ask({op: 'remove', id: ids[3]})
}

async function sh(...cmds: string[][]): Promise<void> {
  for (const c of cmds) await run(c[0], c.slice(1))
}

async function down(): Promise<void> {
  for (const ns of [A, B]) await run('ip', ['netns', 'del', ns]).catch(() => {})
}

async function up(): Promise<[End, End]> {
  await down()
  for (const ns of [A, B]) await sh(['ip', 'netns', 'add', ns], ['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
  await sh(
    ['ip', 'link', 'add', 'tkespa0', 'netns', A, 'type', 'veth', 'peer', 'name', 'tkespb0', 'netns', B],
    ['ip', '-n', A, 'addr', 'add', `${OUTER.a}/24`, 'dev', 'tkespa0'], ['ip', '-n', A, 'link', 'set', 'tkespa0', 'up'],
    ['ip', '-n', B, 'addr', 'add', `${OUTER.b}/24`, 'dev', 'tkespb0'], ['ip', '-n', B, 'link', 'set', 'tkespb0', 'up'],
  )
  const a = End.start(A, 'tkesptun', INNER.a, INNER.b, OUTER.a)
  const b = End.start(B, 'tkesptun', INNER.b, INNER.a, OUTER.b)
  await Promise.all([a.ready, b.ready])
  return [a, b]
}

const ping = (args: string[]): Promise<{stdout: string}> => run('ip', ['netns', 'exec', A, 'ping', ...args, INNER.b], {timeout: 30000})
const received = (out: string): [number, number] => {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
  return m ? [Number(m[1]), Number(m[2])] : [0, 0]
}

const t = unless(test, missing(['/dev/net/tun', 'ip', 'ping']))
let ends: [End, End] | undefined
t.before(async () => {
  ends = await up()
})
t.after(async () => {
  for (const e of ends ?? []) await e.stop()
  await down()
})

for (const c of suites()) {
  t(`namespaces, ${c.name}: ping through two engines and their TUN devices, both directions counted`, async () => {
    const [a, b] = ends!
    const base = 0x10000 + suites().indexOf(c) * 16
    const ids = await install(a, b, c, base + 1, base + 2)
    try {
      const r = await ping(['-c', '5', '-i', '0.05', '-W', '2', '-s', '1300'])
      assert.equal(received(r.stdout), [5, 5], r.stdout)
      const s = await a.ask<{packets: number; seq: number}>({op: 'stats', id: ids[0]})
      assert.is(s.packets, 5)
      assert.is(s.seq, 5)
      assert.is((await b.ask<{packets: number}>({op: 'stats', id: ids[3]})).packets, 5)
      assert.is((await a.ask<{packets: number}>({op: 'stats', id: ids[1]})).packets, 5, 'the replies came back through A\'s inbound SA')
    } finally {
      await remove(a, b, ids)
    }
  })
}

t('namespaces: a rekey under a running ping (new SAs added, old removed) loses no packet', async () => {
  const [a, b] = ends!
  const c = suites()[0]
  const old = await install(a, b, c, 0x20001, 0x20002)
  const pinging = ping(['-c', '200', '-i', '0.01', '-W', '2'])
  await new Promise((r) => setTimeout(r, 600))
  const next = await install(a, b, {...c, encKey: randomBytes(36), reverse: {...c.reverse, encKey: randomBytes(36)}}, 0x20003, 0x20004)
  await new Promise((r) => setTimeout(r, 300))
  await remove(a, b, old) // as after the DELETE exchange: the old inbound SAs once nothing is in flight
  const r = await pinging
  assert.equal(received(r.stdout), [200, 200], r.stdout)
  const s = await a.ask<{packets: number}>({op: 'stats', id: next[0]})
  assert.ok(s.packets > 0, `the new SA carried ${s.packets} packets`)
  await remove(a, b, next)
})

const perf = unless(test, missing(['/dev/net/tun', 'ip', 'ping']) ?? lacking(['iperf3']))
for (const i of [0, 3]) {
  perf(`namespaces, ${suites()[i].name}: iperf3 through the two engines (a figure, printed; no timed assertion)`, async () => {
    const [a, b] = ends!
    const c = suites()[i]
    const ids = await install(a, b, c, 0x30001 + i * 2, 0x30002 + i * 2)
    const server = spawn('ip', ['netns', 'exec', B, 'iperf3', '-s', '-1', '-B', INNER.b], {stdio: 'ignore'})
    try {
      await new Promise((r) => setTimeout(r, 300))
      const r = await run('ip', ['netns', 'exec', A, 'iperf3', '-c', INNER.b, '-t', '2', '-J'], {timeout: 20000})
      const bps = JSON.parse(r.stdout).end.sum_received.bits_per_second as number
      console.log(`\n  ESP ${c.name}, tunkit ⇄ tunkit, 1 stream: ${(bps / 1e6).toFixed(0)} Mbit/s`)
      assert.ok(bps > 0)
    } finally {
      server.kill()
      await remove(a, b, ids)
    }
  })
}

t.run() // perf's tests are registered on the same uvu suite
