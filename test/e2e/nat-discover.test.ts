import {createSocket} from 'node:dgram'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, runCli, stop, tunkit, type Proc} from '../helpers/procs.js'

const t = suite<Record<string, any>>('nat-discover on loopback') // eslint-disable-line @typescript-eslint/no-explicit-any

async function udpPorts(n: number): Promise<number[]> {
  const socks = await Promise.all(Array.from({length: n}, () => new Promise<ReturnType<typeof createSocket>>((res) => {
    const s = createSocket('udp4')
    s.bind(0, '127.0.0.1', () => res(s))
  })))
  const ports = socks.map((s) => s.address().port)
  socks.forEach((s) => s.close())
  return ports
}

t.before(async (ctx) => {
  const [p1, p2] = await udpPorts(2)
  ctx.p1 = p1
  ctx.server = tunkit(['nat-discover', '--serve', '--listen', `127.0.0.1:${p1}`, '--alt', `127.0.0.2:${p2}`, '--json'])
  await event(ctx.server as Proc, 'listening')
})

t.after(async (ctx) => {
  if (ctx.server) assert.is(await stop(ctx.server), 0)
})

t('no NAT on loopback: every key of the JSON schema, recommendation "direct", exit 0, well under 1.5 s', async (ctx) => {
  const r = await runCli(['nat-discover', '--server', `127.0.0.1:${ctx.p1}`, '--json'])
  assert.is(r.code, 0, r.stderr)
  const d = JSON.parse(r.stdout)
  for (const k of ['schema', 'localAddress', 'mappedAddress', 'natPresent', 'mapping', 'filtering', 'hairpinning', 'portPreserved', 'bindingLifetimeSec', 'recommendation', 'server']) assert.ok(k in d, k)
  assert.is(d.schema, 1)
  assert.is(d.natPresent, false)
  assert.is(d.mapping, 'endpoint-independent')
  assert.is(d.filtering, 'endpoint-independent')
  assert.is(d.recommendation, 'direct')
  assert.is(d.mappedAddress, d.localAddress)
  assert.is(d.server.rfc5780, true)
  assert.is(d.server.otherAddress, `127.0.0.2:${d.server.otherAddress.split(':')[1]}`)
  assert.type(d.durationMs, 'number') // a figure, not a limit: speed is for bench/, not tests
})

t('--bind: a local address works; one not on this machine is one line naming it and the errno, exit 2', async (ctx) => {
  const good = await runCli(['nat-discover', '--server', `127.0.0.1:${ctx.p1}`, '--bind', '127.0.0.1', '--json'])
  assert.is(good.code, 0, good.stderr)
  assert.match(JSON.parse(good.stdout).localAddress, /^127\.0\.0\.1:\d+$/)
  const bad = await runCli(['nat-discover', '--server', `127.0.0.1:${ctx.p1}`, '--bind', '198.18.99.99'])
  assert.is(bad.code, 2, bad.stderr)
  assert.equal(bad.stderr.trim().split('\n'), ['tunkit nat-discover: error: --bind: cannot listen on 198.18.99.99:0: EADDRNOTAVAIL'])
})

t('the human summary names every finding', async (ctx) => {
  const r = await runCli(['nat-discover', '--server', `127.0.0.1:${ctx.p1}`])
  assert.is(r.code, 0)
  for (const w of ['mapped address', 'NAT present      no', 'mapping          endpoint-independent', 'filtering', 'hairpinning', 'port preserved', 'recommendation   direct']) assert.ok(r.stdout.includes(w), w)
})

t('silence means UDP blocked: exit 3 and "wrap"', async () => {
  const sink = createSocket('udp4')
  await new Promise<void>((res) => sink.bind(0, '127.0.0.1', () => res()))
  try {
    const r = await runCli(['nat-discover', '--server', `127.0.0.1:${sink.address().port}`, '--timeout', '1', '--json'])
    assert.is(r.code, 3)
    const d = JSON.parse(r.stdout)
    assert.is(d.mappedAddress, null)
    assert.is(d.recommendation, 'wrap')
  } finally {
    sink.close()
  }
})

t('a closed port (ICMP unreachable) is "server unreachable": exit 4; bad arguments: exit 2', async () => {
  const [dead] = await udpPorts(1)
  const r = await runCli(['nat-discover', '--server', `127.0.0.1:${dead}`, '--timeout', '2', '--json'])
  assert.is(r.code, 4)
  assert.is(JSON.parse(r.stdout).error, 'server-unreachable')
  assert.is((await runCli(['nat-discover'])).code, 2)
  assert.is((await runCli(['nat-discover', '--serve', '--listen', '127.0.0.1:3478', '--alt', '127.0.0.1:3479'])).code, 2)
  assert.is((await runCli(['nat-discover', '--server', '127.0.0.1:99999'])).code, 2)
})

t('the server shrugs off garbage and truncated STUN and keeps answering', async (ctx) => {
  const s = createSocket('udp4')
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()))
  for (const junk of ['not stun at all', '\x00\x01\x00\x08\x21\x12\xa4\x42short', '\x00\x01\xff\xfc\x21\x12\xa4\x42' + 'x'.repeat(12)]) s.send(Buffer.from(junk, 'latin1'), ctx.p1, '127.0.0.1')
  s.close()
  const r = await runCli(['nat-discover', '--server', `127.0.0.1:${ctx.p1}`, '--json'])
  assert.is(r.code, 0)
})

t('--trace shows every request and response with its attributes', async (ctx) => {
  const r = await runCli(['nat-discover', '--server', `127.0.0.1:${ctx.p1}`, '--trace', '--trace-format', 'json', '--json'])
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  const change = lines.find((l) => l.dir === 'out' && l.changeRequest === 'ip+port')
  assert.ok(change, 'a CHANGE-REQUEST went out')
  const resp = lines.find((l) => l.dir === 'in' && l.type === 'Binding success' && l.otherAddress)
  assert.match(resp.xorMapped, /^127\.0\.0\.1:\d+$/)
  assert.ok(resp.txid && resp.len > 20)
  // The answering address comes back only to requests that use RFC 5780's attributes (issue 9).
  assert.ok(lines.some((l) => l.dir === 'in' && l.type === 'Binding success' && l.responseOrigin), 'RESPONSE-ORIGIN in the CHANGE-REQUEST answers')
})

t('several --server: an unreachable one is skipped and the next answers', async (ctx) => {
  const [dead] = await udpPorts(1)
  const r = await runCli(['nat-discover', '--server', `127.0.0.1:${dead}`, '--server', `127.0.0.1:${ctx.p1}`, '--json', '--timeout', '2'])
  assert.is(r.code, 0, r.stderr)
  assert.is(JSON.parse(r.stdout).server.address, `127.0.0.1:${ctx.p1}`)
  assert.match(r.stderr, /unreachable/)
})

t('a server without RFC 5780 (no --alt): the client reports what it can and says why', async () => {
  const [p] = await udpPorts(1)
  const plain = tunkit(['nat-discover', '--serve', '--listen', `127.0.0.1:${p}`, '--json'])
  try {
    await event(plain, 'listening')
    const r = await runCli(['nat-discover', '--server', `127.0.0.1:${p}`, '--json'])
    assert.is(r.code, 0)
    const d = JSON.parse(r.stdout)
    assert.is(d.server.rfc5780, false)
    assert.is(d.mappedAddress, d.localAddress)
    assert.is(d.filtering, 'unknown')
  } finally {
    await stop(plain)
  }
})

t('--lifetime: an idle binding is probed through RESPONSE-PORT after the wait', async (ctx) => {
  const r = await runCli(['nat-discover', '--server', `127.0.0.1:${ctx.p1}`, '--lifetime', '2', '--json'])
  assert.is(r.code, 0)
  assert.is(JSON.parse(r.stdout).bindingLifetimeSec, 2)
})

t.run()
