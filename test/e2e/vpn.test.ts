import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../helpers/requires.js'
import {transfer} from '../helpers/xfer.js'
import {event, runCli, stop, tmpDir, tunkit, waitFor, type Proc} from '../helpers/procs.js'

const run = promisify(execFile)
const [P, G, H, Q] = ['tkv-p', 'tkv-g', 'tkv-h', 'tkv-q']

/**
 * A portal that speaks the protocol itself from the portal namespace: RELAY, TLS, a VPN REQUEST,
 * then one DATA frame that is altered, sent twice, or carries offload flags that do not fit its
 * datagram (TSO on an ICMP packet; its digest is good). Returns the gate's CLOSE status.
 */
async function hostileVpnPortal(dir: string, attack: 'tamper' | 'replay' | 'offload'): Promise<string> {
  const script = `
    import {connect} from 'node:net'
    import {connect as tls} from 'node:tls'
    import {readFileSync} from 'node:fs'
    import {encodeTunnel, decodeTunnel, CLOSE_STATUS_NAMES} from '${process.cwd()}/dist/src/tunnel/codec/tunnel.js'
    import {FrameSplitter} from '${process.cwd()}/dist/src/tunnel/codec/frame.js'
    import {requestFrame, EXPORTER_LABEL} from '${process.cwd()}/dist/src/tunnel/core/handshake.js'
    import {DataSender, referenceMac, splitKeys, DATA_EXPORTER_LABEL} from '${process.cwd()}/dist/src/tunnel/core/data-channel.js'
    const raw = connect(4433, '203.0.113.2')
    await new Promise((r) => raw.once('connect', r))
    raw.write(encodeTunnel({kind: 'relay', origin: 'hostile', path: ['203.0.113.2:4433']}))
    await new Promise((r) => raw.once('data', r))
    raw.pause()
    const s = tls({socket: raw, cert: readFileSync('${dir}/client.crt'), key: readFileSync('${dir}/client.key'), ca: readFileSync('${dir}/ca.crt'), host: '203.0.113.2', minVersion: 'TLSv1.3'})
    await new Promise((r) => s.once('secureConnect', r))
    s.write(encodeTunnel(requestFrame({user: 'alice', destination: 'gate', binding: s.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)).toString('hex'), remoteForwards: [], earlyData: false, vpn: true})))
    const splitter = new FrameSplitter(1 << 20)
    let sent = false
    s.on('data', (chunk) => {
      for (const f of splitter.push(chunk)) {
        if (f.type === 18 && !sent) {
          sent = true
          const tx = new DataSender(referenceMac(splitKeys(s.exportKeyingMaterial(64, DATA_EXPORTER_LABEL, Buffer.alloc(0)), 'portal').send))
          // An ICMP echo from our leased address to the LAN host.
          const pkt = Buffer.from('4500001c0000000040010000c6120a02c612140508000000000000000000', 'hex').subarray(0, 28)
          const frame = tx.frame(0x0800, pkt, '${attack}' === 'offload' ? 0xc000 | 1448 : 0)
          if ('${attack}' === 'tamper') { frame[frame.length - 1] ^= 1; s.write(frame) } else if ('${attack}' === 'replay') { s.write(frame); s.write(frame) } else s.write(frame)
        }
        if (f.type === 20) { console.log(CLOSE_STATUS_NAMES[decodeTunnel(f).status]); process.exit(0) }
      }
    })
    setTimeout(() => { console.log('no CLOSE'); process.exit(1) }, 5000)
  `
  const r = await run('ip', ['netns', 'exec', P, process.execPath, '--input-type=module', '-e', script], {timeout: 15000}).catch((e) => e)
  return String(r.stdout).trim() || `no output: ${String(r.stderr ?? r.message).slice(0, 600)}`
}


async function sh(...cmds: string[][]): Promise<void> {
  for (const c of cmds) await run(c[0], c.slice(1))
}

async function down(): Promise<void> {
  for (const ns of [P, G, H, Q]) await run('ip', ['netns', 'del', ns]).catch(() => {})
}

/** portal host 203.0.113.1 — 203.0.113.2 gate 198.18.20.1 — 198.18.20.5 LAN host; VPN pool 198.18.10.0/24. */
async function up(): Promise<void> {
  await down()
  for (const ns of [P, G, H, Q]) await sh(['ip', 'netns', 'add', ns], ['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
  await sh(
    ['ip', 'link', 'add', 'tkv-p0', 'netns', P, 'type', 'veth', 'peer', 'name', 'tkv-g0', 'netns', G],
    ['ip', 'link', 'add', 'tkv-g1', 'netns', G, 'type', 'veth', 'peer', 'name', 'tkv-h0', 'netns', H],
    ['ip', '-n', P, 'addr', 'add', '203.0.113.1/24', 'dev', 'tkv-p0'], ['ip', '-n', P, 'link', 'set', 'tkv-p0', 'up'],
    ['ip', '-n', G, 'addr', 'add', '203.0.113.2/24', 'dev', 'tkv-g0'], ['ip', '-n', G, 'link', 'set', 'tkv-g0', 'up'],
    ['ip', '-n', G, 'addr', 'add', '198.18.20.1/24', 'dev', 'tkv-g1'], ['ip', '-n', G, 'link', 'set', 'tkv-g1', 'up'],
    ['ip', '-n', H, 'addr', 'add', '198.18.20.5/24', 'dev', 'tkv-h0'], ['ip', '-n', H, 'link', 'set', 'tkv-h0', 'up'],
    ['ip', '-n', H, 'route', 'add', '198.18.10.0/24', 'via', '198.18.20.1'],
    ['ip', 'netns', 'exec', G, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'],
    // A second portal host on another "public" link, for the TAP adapter.
    ['ip', 'link', 'add', 'tkv-q0', 'netns', Q, 'type', 'veth', 'peer', 'name', 'tkv-g2', 'netns', G],
    ['ip', '-n', Q, 'addr', 'add', '198.51.100.1/24', 'dev', 'tkv-q0'], ['ip', '-n', Q, 'link', 'set', 'tkv-q0', 'up'],
    ['ip', '-n', G, 'addr', 'add', '198.51.100.2/24', 'dev', 'tkv-g2'], ['ip', '-n', G, 'link', 'set', 'tkv-g2', 'up'],
    ['ip', '-n', Q, 'route', 'add', '203.0.113.0/24', 'via', '198.51.100.2'],
  )
}

const t = unless(suite<{gate?: Proc; portal?: Proc; tap?: Proc; plain?: Proc; pki?: {dir: string; cleanup(): void}}>('VPN mode: portal -> gate -> private LAN (namespaces)'), missing(['/dev/net/tun', 'ip', 'ping', 'udhcpc', 'busybox']))

t.before(async (ctx) => {
  try {
    await setUp(ctx)
  } catch (e) {
    // uvu does not report errors thrown by hooks: say it here, then fail the suite.
    console.error(`VPN suite set-up failed: ${(e as Error).stack}\n${ctx.gate?.stderr ?? ''}\n${ctx.portal?.stderr ?? ''}`)
    throw e
  }
})

const setUp = async (ctx: {gate?: Proc; portal?: Proc; pki?: {dir: string; cleanup(): void}}): Promise<void> => {
  await up()
  ctx.pki = tmpDir('vpn')
  const r = await runCli(['pki', 'init', '--dir', ctx.pki.dir, '--client', 'alice', '--san', '203.0.113.2'])
  assert.is(r.code, 0, r.stderr)
  ctx.gate = tunkit(['gate', '--listen', '203.0.113.2:4433', '--pki-dir', ctx.pki.dir, '--json', '--vpn', '--pool', '198.18.10.0/24', '--route', '198.18.20.0/24', '--dns', '198.18.20.53', '--key-lifetime', '3'], {}, G)
  await event(ctx.gate, 'listening')
  ctx.portal = tunkit(['portal', '--gate', '203.0.113.2:4433', '--pki-dir', ctx.pki.dir, '--json', '--vpn', '--dev', 'tkv-tun0'], {}, P)
  await event(ctx.portal, 'tunnel-up')
}

t.after(async (ctx) => {
  if (ctx.plain) await stop(ctx.plain)
  if (ctx.tap) await stop(ctx.tap)
  if (ctx.portal) await stop(ctx.portal)
  if (ctx.gate) await stop(ctx.gate)
  await down()
  ctx.pki?.cleanup()
})

t('the portal gets its address and the announced route on its TUN device', async () => {
  const addr = await run('ip', ['-n', P, '-4', 'addr', 'show', 'dev', 'tkv-tun0'])
  assert.match(addr.stdout, /inet 198\.18\.10\.2\/24/)
  const routes = await run('ip', ['-n', P, 'route', 'show'])
  assert.match(routes.stdout, /198\.18\.20\.0\/24 via 198\.18\.10\.1 dev tkv-tun0/)
})

t('ping from the portal host reaches a host on the gate\'s private LAN', async () => {
  const r = await run('ip', ['netns', 'exec', P, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '198.18.20.5'])
  assert.match(r.stdout, /5 packets transmitted, 5 received/)
})

t('key-lifetime expiry: the portal reconnects, keeps its device and address, and a running ping loses at most a few packets', async (ctx) => {
  const before = ctx.portal!.events.filter((e) => e.event === 'tunnel-up').length
  const r = await run('ip', ['netns', 'exec', P, 'ping', '-c', '30', '-i', '0.2', '-W', '1', '198.18.20.5']).catch((e) => e)
  const m = String(r.stdout).match(/(\d+) packets transmitted, (\d+) received/)
  assert.ok(m, r.stdout)
  assert.ok(Number(m![1]) - Number(m![2]) <= 3, `lost ${Number(m![1]) - Number(m![2])} of 30`)
  assert.ok(ctx.portal!.events.filter((e) => e.event === 'tunnel-up').length > before, 'at least one reconnect happened')
  assert.match(ctx.portal!.stderr, /key lifetime of 3 s reached: reconnecting/)
  const addr = await run('ip', ['-n', P, '-4', 'addr', 'show', 'dev', 'tkv-tun0'])
  assert.match(addr.stdout, /inet 198\.18\.10\.2\/24/, 'same address after the reconnect')
})

t('a 50 MB TCP transfer through VPN mode arrives intact (SHA-256)', async () => {
  const {sent, reply} = await transfer(P, H, '198.18.20.5', 5001, 50)
  assert.is(reply, sent)
})
t('a tampered DATA frame, and a replayed one, close the tunnel with integrity-failure', async (ctx) => {
  for (const attack of ['tamper', 'replay'] as const) {
    const status = await hostileVpnPortal(ctx.pki!.dir, attack)
    assert.is(status, 'integrity-failure', attack)
  }
  await waitFor('gate log', () => /integrity check/.test(ctx.gate!.stderr) || (ctx.gate!.stderr.match(/integrity-failure/g) ?? []).length >= 2)
})

t('a DATA frame whose offload flags do not fit its datagram closes the tunnel with protocol-error, before the device sees it', async (ctx) => {
  assert.is(await hostileVpnPortal(ctx.pki!.dir, 'offload'), 'protocol-error')
  await waitFor('gate log', () => /DATA frame: TSO .*|DATA frame: offload flags on IP protocol 1/.test(ctx.gate!.stderr))
})

/** Packets the kernel sent into (tx) and took from (rx) a device: the super-packets' count. */
async function devPackets(ns: string, dev: string): Promise<{rx: number; tx: number}> {
  const j = JSON.parse((await run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])).stdout)[0].stats64
  return {rx: j.rx.packets, tx: j.tx.packets}
}

t('offloads: a 50 MB transfer from the portal host crosses the tunnel in TCP super-packets, and one back arrives intact', async (ctx) => {
  assert.match(ctx.gate!.stderr, /device tunkit-gate with 198\.18\.10\.1\/24, offloads on/)
  assert.match(ctx.portal!.stderr, /VPN: tkv-tun0 .*offloads on/)
  const before = await devPackets(P, 'tkv-tun0')
  const {sent, reply} = await transfer(P, H, '198.18.20.5', 5002, 50)
  assert.is(reply, sent)
  const after = await devPackets(P, 'tkv-tun0')
  // 50 MB in 1500-byte packets would be over 34 000 of them.
  assert.ok(after.tx - before.tx < 34000 / 4, `the portal read ${after.tx - before.tx} packets for 50 MB: no super-packets`)
  const back = await transfer(H, P, '198.18.10.2', 5003, 20)
  assert.is(back.reply, back.sent)
})

t('TAP adapter: busybox udhcpc gets its lease from the emulator, and the LAN host answers pings through it', async (ctx) => {
  const dir = ctx.pki!.dir
  assert.is((await runCli(['pki', 'issue', 'bob', '--dir', dir])).code, 0)
  ctx.tap = tunkit(['portal', '--gate', '203.0.113.2:4433', '--cert', `${dir}/bob.crt`, '--key', `${dir}/bob.key`, '--ca', `${dir}/ca.crt`, '--json', '--vpn', '--tap', '--dev', 'tkv-tap0', '--trace', '--trace-format', 'json'], {}, Q)
  await event(ctx.tap, 'tunnel-up')
  const out = `${dir}/lease`
  await run('ip', ['netns', 'exec', Q, 'udhcpc', '-i', 'tkv-tap0', '-n', '-q', '-f', '-t', '4', '-T', '1', '-s', `${process.cwd()}/test/fixtures/udhcpc.sh`], {env: {...process.env, UDHCPC_OUT: out}, timeout: 20000})
  const lease = readFileSync(out, 'utf8')
  assert.match(lease, /ip=198\.18\.10\.3 subnet=255\.255\.255\.0 router=198\.18\.10\.1 dns=198\.18\.20\.53/)
  assert.match(lease, /staticroutes=198\.18\.20\.0\/24 198\.18\.10\.1/)
  const r = await run('ip', ['netns', 'exec', Q, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '198.18.20.5'])
  assert.match(r.stdout, /5 packets transmitted, 5 received/)
  const neigh = await run('ip', ['-n', Q, 'neigh', 'show', '198.18.10.1', 'dev', 'tkv-tap0'])
  assert.match(neigh.stdout, /lladdr 02:74:6b:00:00:01/)
})

t('--trace decodes the emulators\' DHCP and ARP exchanges and the IP/ICMP inside DATA frames', (ctx) => {
  const lines = ctx.tap!.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  const has = (what: string, pred: (l: Record<string, unknown>) => boolean): void => assert.ok(lines.some(pred), `no trace line for ${what}`)
  has('DHCP DISCOVER in', (l) => l.type === 'ETHERNET' && l.dir === 'in' && l.dhcp === 'DISCOVER' && l.dport === 67)
  has('DHCP ACK out with the address', (l) => l.type === 'ETHERNET' && l.dir === 'out' && l.dhcp === 'ACK' && l.yiaddr === '198.18.10.3')
  has('ARP request for the gateway', (l) => l.arp === 'request' && l.targetIp === '198.18.10.1')
  has('ARP reply with the reserved MAC', (l) => l.arp === 'reply' && l.senderMac === '02:74:6b:00:00:01')
  has('ICMP echo request in a DATA frame', (l) => l.type === 'DATA' && l.dir === 'out' && l.ipProto === 'icmp' && l.icmp === 'echo-request' && l.dst === '198.18.20.5')
  has('ICMP echo reply in a DATA frame', (l) => l.type === 'DATA' && l.dir === 'in' && l.icmp === 'echo-reply' && l.src === '198.18.20.5' && l.dst === '198.18.10.3')
})

t('offloads against a portal without them (--no-offload): the gate cuts its super-packets into segments, both ways intact', async (ctx) => {
  if (ctx.tap) await stop(ctx.tap)
  ctx.tap = undefined
  const dir = ctx.pki!.dir
  assert.is((await runCli(['pki', 'issue', 'carol', '--dir', dir])).code, 0)
  ctx.plain = tunkit(['portal', '--gate', '203.0.113.2:4433', '--cert', `${dir}/carol.crt`, '--key', `${dir}/carol.key`, '--ca', `${dir}/ca.crt`, '--json', '--vpn', '--no-offload', '--dev', 'tkv-tun1'], {}, Q)
  await event(ctx.plain, 'tunnel-up')
  assert.not.match(ctx.plain.stderr, /offloads on/)
  const addr = /inet (198\.18\.10\.\d+)\//.exec((await run('ip', ['-n', Q, '-4', 'addr', 'show', 'dev', 'tkv-tun1'])).stdout)![1]
  const gateDev = await devPackets(G, 'tunkit-gate')
  const portalDev = await devPackets(Q, 'tkv-tun1')
  // From the gate host itself: its TCP hands the gate's device super-packets.
  const {sent, reply} = await transfer(G, Q, addr, 5004, 20)
  assert.is(reply, sent)
  const gateAfter = await devPackets(G, 'tunkit-gate')
  const portalAfter = await devPackets(Q, 'tkv-tun1')
  assert.ok(gateAfter.tx - gateDev.tx < 13700 / 4, `the gate read ${gateAfter.tx - gateDev.tx} packets for 20 MB: no super-packets`)
  assert.ok(portalAfter.rx - portalDev.rx > 13700, `the portal's device took ${portalAfter.rx - portalDev.rx} packets for 20 MB: not segmented`)
  const back = await transfer(Q, G, '198.18.10.1', 5005, 20)
  assert.is(back.reply, back.sent)
})

t.run()
