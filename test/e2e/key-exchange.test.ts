import {spawn} from 'node:child_process'
import * as assert from 'uvu/assert'
import {espTrace, exited, kxSuite, PSK, pskClient as client, pskGateway as gateway, stopNow} from '../helpers/ipsec-topology.js'
import {event, stop, waitFor} from '../helpers/procs.js'
import {transfer} from '../helpers/xfer.js'

/** tunkit ⇄ tunkit: `key-exchange --respond` and `key-exchange --gateway` in namespaces. */
const t = kxSuite('key-exchange: tunkit client and tunkit gateway', 'tkkx')

t('the client gets an address, DNS and a route for the narrowed subnet; SIGTERM deletes the SAs and the device', async (ctx) => {
  const gw = gateway(ctx)
  await event(gw, 'listening')
  const c = client(ctx)
  const up = await event(c, 'sa-up')
  assert.is(up.vip, '198.18.200.2')
  assert.equal(up.dns, ['198.18.1.53'])
  assert.is(up.peerId, '203.0.113.1')
  assert.is((up.child as {tsR: string}).tsR, '198.18.1.0/24')
  assert.is((up.child as {tsI: string}).tsI, '198.18.200.2/32')
  const gup = await event(gw, 'sa-up')
  assert.is(gup.peerId, 'alice@tk.test')
  assert.is(gup.spiI, up.spiI)
  const addr = await ctx.topo!.exec(ctx.topo!.ns.c, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'tkkx-ct'])
  assert.match(addr.stdout, /inet 198\.18\.200\.2\/32/)
  const routes = await ctx.topo!.exec(ctx.topo!.ns.c, ['ip', 'route', 'show', 'dev', 'tkkx-ct'])
  assert.match(routes.stdout, /^198\.18\.1\.0\/24 /m)
  assert.is(await stop(c), 0)
  const down = await event(gw, 'sa-down', (e) => e.what === 'ike')
  assert.is(down.by, 'peer')
  const links = await ctx.topo!.exec(ctx.topo!.ns.c, ['ip', '-o', 'link'])
  assert.not.match(links.stdout, /tkkx-ct/)
})

t('traffic: ping and 50 MB to the private host arrive intact through ESP (and nothing in clear on the public link)', async (ctx) => {
  const {ns, exec} = ctx.topo!
  const gw = gateway(ctx)
  await event(gw, 'listening')
  const c = client(ctx)
  await event(c, 'sa-up')
  const r = await exec(ns.c, ['ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '2', '198.18.1.10'])
  assert.match(r.stdout, /3 received/)
  const x = await transfer(ns.c, ns.p, '198.18.1.10', 5001, 50)
  assert.is(x.reply, x.sent)
})

t('--export json prints the SAs without keys (keys only with --show-keys); --trace shows each ESP packet with its SPI, and IKE_AUTH decrypted on both ends without the PSK or a key', async (ctx) => {
  const {ns, exec} = ctx.topo!
  const gw = gateway(ctx, ['--trace', '--trace-format', 'json'])
  await event(gw, 'listening')
  const c = client(ctx, {args: ['--export', 'json', '--trace']})
  const x = await waitFor('export', () => c.stdout.split('\n').find((l) => l.startsWith('{')))
  const sa = JSON.parse(x) as {ike: {suite: string}; vip: string; children: {spiOut: string; spiIn: string; keys?: unknown}[]}
  assert.is(sa.vip, '198.18.200.2')
  assert.match(sa.ike.suite, /^aes256gcm16-prfsha512-x25519$/)
  assert.is(sa.children[0].keys, undefined)
  assert.not.match(c.stderr, /encI|integI/)
  await exec(ns.c, ['ping', '-n', '-q', '-c', '2', '-i', '0.2', '-W', '2', '198.18.1.10'])
  const out = await waitFor('ESP trace', () => c.stderr.split('\n').find((l) => / -> \S+ ESP /.test(l) && l.includes(`spi=0x${sa.children[0].spiOut}`)))
  assert.match(out, /src=198\.18\.200\.2 dst=198\.18\.1\.10 .*ipProto=icmp/)
  assert.ok(c.stderr.split('\n').some((l) => / <- \S+ ESP /.test(l) && l.includes(`spi=0x${sa.children[0].spiIn}`)), c.stderr)
  await stopNow(ctx, c)
  const k = client(ctx, {args: ['--export', 'json', '--show-keys', '--trace']})
  const y = await waitFor('export with keys', () => k.stdout.split('\n').find((l) => l.startsWith('{')))
  const keys = (JSON.parse(y) as {children: {keys: Record<'encI' | 'integI' | 'encR' | 'integR', string>}[]}).children[0].keys
  assert.match(keys.encI, /^[0-9a-f]{72}$/)
  // The IKE_AUTH request as the client sealed it (text trace) and as the gateway opened it (JSON trace): the same payloads.
  const sent = await waitFor('client IKE_AUTH trace', () => k.stderr.split('\n').find((l) => / -> \S+ IKE_AUTH request /.test(l)))
  assert.match(sent, /payloads="SK\{decrypted: IDi\(alice@tk\.test\) .*AUTH\(SHARED_KEY_MIC,\d+B\) CP\(REQUEST: INTERNAL_IP4_ADDRESS,INTERNAL_IP4_DNS\) SA\(.* TSi\(0\.0\.0\.0\/0\) TSr\(0\.0\.0\.0\/0\)\}"/)
  const opened = await waitFor('gateway IKE_AUTH trace', () => gw.stderr.split('\n').filter((l) => l.includes('"type":"IKE_AUTH request"')).map((l) => JSON.parse(l) as {dir: string; payloads: string})[1])
  assert.is(opened.dir, 'in')
  assert.is(opened.payloads, /payloads="(.*)"/.exec(sent)![1])
  const answer = await waitFor('client IKE_AUTH response trace', () => k.stderr.split('\n').find((l) => / <- \S+ IKE_AUTH response /.test(l)))
  assert.match(answer, /SK\{decrypted: IDr\(203\.0\.113\.1\) AUTH\(SHARED_KEY_MIC,\d+B\) CP\(REPLY: INTERNAL_IP4_ADDRESS=198\.18\.200\.2,INTERNAL_IP4_DNS=198\.18\.1\.53,.*TSi\(198\.18\.200\.2\/32\) TSr\(198\.18\.1\.0\/24\)\}/)
  const secrets = [...Object.values(keys).filter((h) => h.length), Buffer.from(PSK).toString('hex')].flatMap((h) => [h, Buffer.from(h, 'hex').toString('base64')])
  for (const s of [PSK, ...secrets]) {
    assert.not.ok(k.stderr.includes(s), `the client's trace or log shows ${s}`)
    assert.not.ok(gw.stderr.includes(s), `the gateway's trace or log shows ${s}`)
  }
})

t('two --policy subnets of different transforms: a CHILD_SA for each with exactly those transforms, both routed, each subnet\'s packets under its own SPIs both ways (--trace)', async (ctx) => {
  const {ns, exec} = ctx.topo!
  const gw = gateway(ctx, ['--policy', '198.18.9.0/24=aes256-sha512'])
  await event(gw, 'listening')
  const c = client(ctx, {args: ['--json', '--export', 'json', '--trace']})
  type Child = {esp: string; tsI: string; tsR: string; spiIn: string; spiOut: string}
  // --export json (the line without "event") is printed once the CHILD_SA of every pushed policy is up.
  const x = await waitFor('export', () => c.events.find((e) => e.event === undefined)) as {children: Child[]}
  assert.is(x.children.length, 2)
  assert.equal(x.children[0], {...x.children[0], esp: 'aes256gcm16', tsI: '198.18.200.2/32', tsR: '198.18.1.0/24'})
  assert.equal(x.children[1], {...x.children[1], esp: 'aes256-sha512', tsI: '198.18.200.2/32', tsR: '198.18.9.0/24'})
  const first = (await event(c, 'child-up', (e) => (e.child as Child).tsR === '198.18.1.0/24')).child as Child
  assert.equal([first.spiIn, first.spiOut], [x.children[0].spiIn, x.children[0].spiOut])
  const second = (await event(c, 'child-up', (e) => (e.child as Child).tsR === '198.18.9.0/24')).child as Child
  assert.equal(second, x.children[1])
  // The gateway has the same two CHILD_SAs, SPIs mirrored.
  const g2 = (await event(gw, 'child-up', (e) => (e.child as Child).tsR === '198.18.9.0/24')).child as Child
  assert.equal([g2.spiIn, g2.spiOut], [second.spiOut, second.spiIn])
  const routes = await waitFor('both routes', async () => {
    const r = await exec(ns.c, ['ip', 'route', 'show', 'dev', 'tkkx-ct'])
    return /^198\.18\.9\.0\/24 /m.test(r.stdout) ? r.stdout : undefined
  })
  assert.match(routes, /^198\.18\.1\.0\/24 /m)
  for (const host of ['198.18.1.10', '198.18.9.10']) assert.match((await exec(ns.c, ['ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '2', host])).stdout, /3 received/)
  // Each CHILD_SA carried exactly its subnet's packets: out to it, and back from it.
  await waitFor('the last echo reply traced', () => espTrace(c, second.spiIn).length >= 3)
  for (const [sa, host] of [[first, '198.18.1.10'], [second, '198.18.9.10']] as const) {
    const out = espTrace(c, sa.spiOut)
    const back = espTrace(c, sa.spiIn)
    assert.ok(out.length >= 3 && back.length >= 3, c.stderr)
    for (const r of out) assert.ok(r.dir === 'out' && r.line.includes(`src=198.18.200.2 dst=${host} `), r.line)
    for (const r of back) assert.ok(r.dir === 'in' && r.line.includes(`src=${host} dst=198.18.200.2 `), r.line)
  }
})

t('a wrong PSK: the client exits 1 with one line naming it; the gateway logs why', async (ctx) => {
  const gw = gateway(ctx)
  await event(gw, 'listening')
  const c = client(ctx, {psk: 'not-the-psk'})
  assert.is(await exited(c), 1, c.stderr)
  assert.match(c.stderr, /^tunkit key-exchange: error: .*authentication failed.*\n$/m)
  const f = await event(gw, 'sa-failed')
  assert.is(f.code, 'TK_NOT_AUTHORIZED')
  assert.match(String(f.reason), /alice@tk\.test failed authentication/)
})

t('under an IKE_SA_INIT flood of 10 000/s from 32 sources, clients still connect and half-open SAs stay bounded', async (ctx) => {
  const {ns, exec} = ctx.topo!
  const sources = Array.from({length: 32}, (_, i) => `203.0.113.${100 + i}`)
  for (const a of sources) await exec(ns.c, ['ip', 'addr', 'replace', `${a}/24`, 'dev', 'tkkx-c0'])
  const gw = gateway(ctx)
  await event(gw, 'listening')
  const flood = spawn('ip', ['netns', 'exec', ns.c, process.execPath, 'bench/ike/flood.mjs', '203.0.113.1', '--from', sources.join(','), '--rate', '10000', '--seconds', '6'], {stdio: ['ignore', 'pipe', 'inherit']})
  let out = ''
  flood.stdout.on('data', (b: Buffer) => (out += b))
  const done = new Promise((r) => flood.on('exit', r))
  try {
    await new Promise((r) => setTimeout(r, 1000))
    // Three clients one after the other, each while the flood runs.
    for (const id of ['c1@tk.test', 'c2@tk.test', 'c3@tk.test']) {
      const c = client(ctx, {args: ['--id', id]})
      await event(c, 'sa-up')
      await stopNow(ctx, c)
    }
    await done
    const f = JSON.parse(out) as {sent: number}
    assert.ok(f.sent > 40_000, out)
    assert.is(await stop(gw), 0)
    const st = await event(gw, 'stopped')
    // The default cookie threshold is 64: past it, only requests with a valid cookie make state.
    assert.ok(Number(st.halfOpen) <= 64 + 3, JSON.stringify(st))
  } finally {
    if (flood.exitCode === null) flood.kill('SIGKILL')
    for (const a of sources) await exec(ns.c, ['ip', 'addr', 'del', `${a}/24`, 'dev', 'tkkx-c0']).catch(() => {})
  }
})

t.run()
