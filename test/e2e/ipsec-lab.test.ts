import {spawn} from 'node:child_process'
import {existsSync, readFileSync, rmSync} from 'node:fs'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {ipsecLab, ipsecLabMissing, type IpsecLab} from '../helpers/ipsec-lab.js'
import {waitFor} from '../helpers/procs.js'
import {unless} from '../helpers/requires.js'

// strongSwan ⇄ strongSwan through the project's IPsec lab (test/lab/ipsec): proves the lab is a
// correct peer for tunkit's own IKEv2/ESP tests, in each topology and gateway variant they use.

const why = ipsecLabMissing()

/** One IKE_SA of `swanctl --list-sas` text, with its first INSTALLED CHILD_SA. */
interface Sa {name: string; spis: string[]; ike: string; esp: string; local: string; remote: string; vip?: string; spiOut: string; packetsIn: number; tsLocal: string; tsRemote: string}

function parseSas(text: string): Sa[] {
  const sas: Sa[] = []
  for (const block of text.split(/^(?=\S)/m).filter((b) => /ESTABLISHED/.test(b.split('\n')[0]))) {
    const lines = block.split('\n')
    const head = /^(\S+): #\d+, ESTABLISHED, IKEv2, ([0-9a-f]+)_i\*? ([0-9a-f]+)_r\*?/.exec(lines[0])!
    const child = block.slice(block.search(/^ {2}\S+: #\d+, reqid \d+, INSTALLED/m))
    const m = (re: RegExp, s = block) => (re.exec(s) ?? [])[1] ?? ''
    sas.push({
      name: head[1],
      spis: [head[2], head[3]],
      local: m(/^ {2}local +'([^']+)'/m),
      remote: m(/^ {2}remote +'([^']+)'/m),
      vip: m(/^ {2}(?:local|remote) .*\[(\d+\.\d+\.\d+\.\d+)\]$/m) || undefined,
      ike: lines[3].trim(),
      esp: m(/INSTALLED, TUNNEL-in-UDP, ESP:(\S+)/, child),
      spiOut: m(/^ {4}out +(\w+),/m, child),
      packetsIn: Number(m(/^ {4}in +\w+, +\d+ bytes, +(\d+) packets/m, child) || 0),
      tsLocal: m(/^ {4}local +(\S+)/m, child),
      tsRemote: m(/^ {4}remote +(\S+)/m, child),
    })
  }
  return sas
}

async function sas(lab: IpsecLab, role: 'gw' | 'cli'): Promise<Sa[]> {
  return parseSas(await lab.swanctl(role, ['--list-sas']))
}

/** Pings `target` (default the private host) from the client; gives ping's summary. */
async function ping(lab: IpsecLab, count = 3, target = lab.addresses.privateHost): Promise<{sent: number; received: number}> {
  const {stdout} = await lab.exec('cli', ['ping', '-c', String(count), '-i', '0.2', '-W', '2', '-q', target]).catch((e) => ({stdout: String(e.stdout)}))
  const m = /(\d+) packets transmitted, (\d+) received/.exec(stdout)
  return {sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0)}
}

/** Alive and not a zombie (whoever reaps it may be slow). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

interface Conn {client: string; gw: string; clientId: string; gwId: string; ike: string; esp: string}
const GCM = {ike: 'AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519', esp: 'AES_GCM_16-256'}
const CONNS: Conn[] = [
  {client: 'psk', gw: 'rw-psk', clientId: 'client-psk.ks.test', gwId: 'gw.ks.test', ...GCM},
  {client: 'cert', gw: 'rw-cert', clientId: 'client.ks.test', gwId: 'gw.ks.test', ...GCM},
  {client: 'cert-rsa', gw: 'rw-cert-rsa', clientId: 'client-rsa.ks.test', gwId: 'gw-rsa.ks.test', ike: 'AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256', esp: 'AES_CBC-256/HMAC_SHA2_256_128'},
]

/** Connects `c` alone and checks what a client of the lab must get: SAs, VIP, DNS, narrowed TS, ping. */
async function tunnel(lab: IpsecLab, c: Conn, nat: boolean): Promise<void> {
  await lab.disconnect()
  await lab.connect(c.client)
  const [cli] = await sas(lab, 'cli')
  assert.is(cli.name, c.client)
  assert.is(cli.ike, c.ike)
  assert.is(cli.esp, c.esp)
  assert.match(cli.vip ?? '', /^198\.18\.200\.\d+$/)
  assert.is(cli.tsLocal, `${cli.vip}/32`)
  assert.is(cli.tsRemote, '198.18.1.0/24')
  const gw = (await sas(lab, 'gw')).find((s) => s.spis.join() === cli.spis.join())
  assert.ok(gw, 'the gateway holds the same IKE_SA')
  assert.is(gw!.name, c.gw, 'the gateway picked the connection for this auth')
  assert.is(gw!.local, c.gwId)
  assert.is(gw!.remote, c.clientId)
  assert.is(gw!.vip, cli.vip, 'the lease the gateway gave')
  const {stdout: addr} = await lab.exec('cli', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'ipsec0'])
  assert.match(addr, `inet ${cli.vip}/32`)
  const resolv = `${lab.run}/cli/resolv.conf`
  if (existsSync(resolv)) assert.match(readFileSync(resolv, 'utf8'), 'nameserver 198.18.1.53')
  else assert.match(lab.logs('cli'), 'processing INTERNAL_IP4_DNS attribute') // no resolve plugin where /sbin/resolvconf exists
  assert.equal(await ping(lab), {sent: 3, received: 3})
  assert.equal(await ping(lab, 2, lab.addresses.dns), {sent: 2, received: 2})
  const after = (await sas(lab, 'gw')).find((s) => s.spis.join() === cli.spis.join())!
  assert.ok(after.packetsIn >= 5, `the gateway decrypted the pings (${after.packetsIn} packets in)`)
  // on UDP 4500 even without a NAT (libipsec fakes NAT-D); behind the NAT the port may change
  assert.match(await lab.swanctl('gw', ['--list-sas']), `'${c.clientId}' @ 203.0.113.2[${nat ? '' : '4500]'}`)
}

/** up, saying why when it fails (uvu reports a failed before-hook only as tests not run). */
async function start(lab: IpsecLab): Promise<void> {
  await lab.up().catch((e: Error) => {
    console.error(`ipsec lab ${lab.prefix}: up failed: ${e.message}`)
    throw e
  })
}

for (const [prefix, nat] of [['tkisd', false], ['tkisn', true]] as const) {
  const where = nat ? 'behind a NAT' : 'direct'
  const t = unless(suite<{lab: IpsecLab}>(`IPsec lab, ${where}: strongSwan client ⇄ strongSwan gateway`, {lab: ipsecLab({prefix, nat, dpdDelay: 1})}), why)
  t.before(({lab}) => start(lab))
  t.after(async ({lab}) => lab.down())

  t(`${where}: the client has no way to the private host before a tunnel is up`, async ({lab}) => {
    // direct: no route at all; behind the NAT: the router has none and says so
    const err = await lab.exec('cli', ['ping', '-c', '1', '-W', '1', lab.addresses.privateHost]).then(() => null, (e: {stdout: string; stderr: string}) => e)
    assert.ok(err, 'ping must fail')
    assert.match(err!.stdout + err!.stderr, nat ? 'Destination Net Unreachable' : 'Network is unreachable')
  })

  for (const c of CONNS) {
    t(`${where}, ${c.client}: SAs up, virtual IP and DNS pushed, TS narrowed, ping 198.18.1.10 through the tunnel`, ({lab}) => tunnel(lab, c, nat))
  }

  t(`${where}: a CHILD rekey and an IKE rekey forced by the gateway keep a ping going`, async ({lab}) => {
    await lab.disconnect()
    await lab.connect('psk')
    // 60 pings 50 ms apart span both rekeys
    const pinging = lab.exec('cli', ['ping', '-c', '60', '-i', '0.05', '-W', '1', '-q', lab.addresses.privateHost])
    await new Promise((r) => setTimeout(r, 300))
    const child = await lab.rekeyChild()
    const ike = await lab.rekeyIke()
    const {stdout} = await pinging
    assert.match(stdout, '60 packets transmitted, 60 received')
    // "rekeyed child on gw: rw-psk 1 SPI -> rw-psk 2 SPI in N ms": the client sends on the new SA
    const newIn = /-> \S+ \d+ (\w+) in/.exec(child)![1]
    const [cli] = await sas(lab, 'cli')
    assert.is(cli.spiOut, newIn, child)
    const newIke = /-> \S+ \d+ ([0-9a-f]+)_i\*?_([0-9a-f]+)_r/.exec(ike)!.slice(1)
    assert.equal(cli.spis, newIke, ike)
    assert.match(lab.logs('cli'), /parsed CREATE_CHILD_SA request \d+ \[ N\(REKEY_SA\) SA No KE TSi TSr \]/)
    assert.match(lab.logs('cli'), /parsed CREATE_CHILD_SA request \d+ \[ SA No KE \]/)
    assert.equal(await ping(lab, 2), {sent: 2, received: 2})
  })

  t(`${where}: the gateway's DPD (dpd_delay 1 s) is answered by the client`, async ({lab}) => {
    const lines = await lab.dpd(10)
    assert.match(lines, /<rw-psk\|\d+> sending DPD request/)
    assert.match(lines, /parsed INFORMATIONAL response \d+ \[ \]/)
  })

  t.run()
}

const n = unless(suite<{lab: IpsecLab}>('IPsec lab, narrowed gateway (aes128-sha1-modp2048 / aes128-sha1)', {lab: ipsecLab({prefix: 'tkisw', narrow: true})}), why)
n.before(({lab}) => start(lab))
n.after(async ({lab}) => lab.down())

n('a client offering only AES-256 proposals gets NO_PROPOSAL_CHOSEN', async ({lab}) => {
  const err = await lab.connect('psk').then(() => null, (e: Error) => e)
  assert.ok(err, 'connect must fail')
  assert.match(lab.logs('cli'), 'received NO_PROPOSAL_CHOSEN notify error')
})

n('a client offering everything settles on the one proposal after INVALID_KE_PAYLOAD: SAs up, virtual IP and DNS pushed, ping through', async ({lab}) => {
  await tunnel(lab, {client: 'psk-all', gw: 'rw-psk', clientId: 'client-psk.ks.test', gwId: 'gw.ks.test', ike: 'AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048', esp: 'AES_CBC-128/HMAC_SHA1_96'}, false)
  assert.match(lab.logs('cli'), "peer didn't accept DH group CURVE_25519, it requested MODP_2048")
})

n.run()

const iso = unless(suite<{main: IpsecLab; other: IpsecLab; initiator: IpsecLab}>('IPsec lab prefixes and modes: labs side by side, leftovers of a crash, initiator only', {
  main: ipsecLab({prefix: 'tkisp'}),
  other: ipsecLab({prefix: 'tkisq', mode: 'responder-only'}),
  initiator: ipsecLab({prefix: 'tkisr', mode: 'initiator-only'}),
}), why)
iso.before(async ({main}) => {
  await start(main)
  await main.connect('psk')
})
iso.after(async ({main, other, initiator}) => {
  await initiator.down()
  await other.down()
  await main.down()
})

iso('a second prefix comes up beside the first, and its down leaves the first alone', async ({main, other}) => {
  await other.up()
  assert.ok(existsSync(`${other.run}/gw/charon.vici`), 'the responder-only lab runs a gateway')
  assert.not.ok(existsSync(`${other.run}/cli/charon.vici`), 'and no client')
  await other.down()
  assert.not.ok(existsSync(`/run/netns/${other.ns.gw}`))
  assert.equal(await ping(main, 2), {sent: 2, received: 2})
})

iso('up over a crashed run of the same prefix (state directory lost) stops its charon and starts afresh', async ({main, other}) => {
  await other.up()
  const old = Number(readFileSync(`${other.run}/gw/charon.pid`, 'utf8'))
  assert.ok(running(old))
  rmSync(other.run, {recursive: true, force: true})
  await other.up()
  assert.not.ok(running(old), 'the old charon is gone')
  const now = Number(readFileSync(`${other.run}/gw/charon.pid`, 'utf8'))
  assert.is.not(now, old)
  assert.equal(await ping(main, 2), {sent: 2, received: 2})
})

iso("initiator only: no gateway charon, and the client charon's IKE_SA_INIT reaches 203.0.113.1:500 in the gateway namespace", async ({initiator: lab}) => {
  await lab.up()
  assert.not.ok(existsSync(`${lab.run}/gw/charon.vici`))
  // where tunkit's responder would listen: the first datagram's IKE header
  const listener = spawn('ip', ['netns', 'exec', lab.ns.gw, process.execPath, '-e', `
    const s = require('dgram').createSocket('udp4')
    s.on('message', (m) => { console.log(m.subarray(0, 28).toString('hex')); process.exit(0) })
    s.bind(500, '203.0.113.1', () => console.log('ready'))`], {stdio: ['ignore', 'pipe', 'inherit']})
  try {
    let out = ''
    listener.stdout!.on('data', (d: Buffer) => (out += d))
    const exited = new Promise((r) => listener.on('exit', r))
    await waitFor('the listener', () => out.includes('ready'))
    // --timeout 1: swanctl gives up waiting (nobody answers), charon keeps retransmitting until down
    await lab.swanctl('cli', ['--initiate', '--ike', 'psk', '--child', 'psk', '--timeout', '1']).catch(() => {})
    await waitFor('an IKE_SA_INIT', () => out.split('\n')[1])
    await exited
    const header = Buffer.from(out.split('\n')[1], 'hex')
    assert.is(header.readBigUInt64BE(8), 0n, 'responder SPI zero')
    assert.is(header[17], 0x20, 'IKEv2')
    assert.is(header[18], 34, 'IKE_SA_INIT')
  } finally {
    listener.kill()
  }
})

iso.run()
