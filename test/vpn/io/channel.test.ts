import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {once} from 'node:events'
import type {AddressInfo} from 'node:net'
import {connect, createServer, type TLSSocket} from 'node:tls'
import {createCa, issue} from '../../../src/pki/pki.js'
import {Link} from '../../../src/tunnel/io/link.js'
import {openChannel, SEND_QUEUE_LIMIT} from '../../../src/vpn/io/channel.js'
import type {Logger} from '../../../src/lib/log.js'

// A real TLS tunnel on loopback whose gate side stops reading: the portal's VPN channel keeps
// offering 64 KiB datagrams, as a TUN device under iperf3 would.

/** An IPv4 packet of `len` bytes whose payload counts n (so a drop or reorder shows). */
function packet(len: number, n: number): Buffer {
  const p = Buffer.alloc(len)
  p[0] = 0x45
  p.writeUInt16BE(len, 2)
  p[8] = 64
  p[9] = 17
  p.writeUInt32BE(n, 20)
  return p
}

async function tunnel(): Promise<{portal: Link; gate: Link; portalTls: TLSSocket; gateTls: TLSSocket; close(): void}> {
  const ca = await createCa('tk channel CA', 1)
  const srv = await issue(ca, {cn: 'gate', role: 'server', sans: ['127.0.0.1']})
  const cli = await issue(ca, {cn: 'alice', role: 'client'})
  const server = createServer({cert: srv.certPem, key: srv.keyPem, ca: ca.certPem, requestCert: true, minVersion: 'TLSv1.3'})
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>
  const portalTls = connect({host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: ca.certPem, cert: cli.certPem, key: cli.keyPem})
  await once(portalTls, 'secureConnect')
  const [gateTls] = await accepted
  const log: Logger = {log: () => {}, event: () => {}}
  const opts = {log, keepalive: 0, deadAfter: 60, onFrame: () => {}, onClosed: () => {}}
  const portal = new Link({...opts, socket: portalTls, peer: 'gate'})
  const gate = new Link({...opts, socket: gateTls, peer: 'portal'})
  return {portal, gate, portalTls, gateTls, close: () => { portalTls.destroy(); gateTls.destroy(); server.close() }}
}

test('a peer that stops reading: the send queue stays under its limit, datagrams are dropped and counted, the tunnel survives, and what was sent arrives intact and in order', async () => {
  const t = await tunnel()
  try {
    const got: number[] = []
    openChannel(t.gate, t.gateTls, 'gate', (d) => got.push(d.readUInt32BE(20)))
    const tx = openChannel(t.portal, t.portalTls, 'portal', () => {})
    t.gateTls.pause()
    let most = 0
    const N = 2000 // 128 MiB offered: sixteen times the limit
    for (let i = 0; i < N; i++) {
      tx.send(packet(65535, i))
      most = Math.max(most, t.portal.backlog)
      if (i % 50 === 49) await new Promise((r) => setImmediate(r))
    }
    assert.ok(most <= SEND_QUEUE_LIMIT + 65535 + 64, `backlog peaked at ${most} bytes`)
    assert.ok(tx.dropped > N / 2, `only ${tx.dropped} of ${N} dropped`)
    assert.not.ok(t.portal.isClosed, 'the tunnel was torn down')
    t.gateTls.resume()
    const sent = N - tx.dropped
    const deadline = Date.now() + 20_000
    while (got.length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.is(got.length, sent)
    // Counted frames arrive in order (the digest's counter would close the tunnel otherwise).
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1])
    assert.not.ok(t.gate.isClosed)
  } finally {
    t.close()
  }
})

test.run()
