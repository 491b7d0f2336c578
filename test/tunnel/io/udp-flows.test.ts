import {test} from 'uvu'
import * as assert from 'uvu/assert'
import type {DatagramEndpoint, Session} from '../../../src/tunnel/core/mux.js'
import {MAX_QUEUED, UdpFlows} from '../../../src/tunnel/io/udp-flows.js'

/** A session that opens when told and records what it is sent. */
function fake(): {open: (ep: DatagramEndpoint) => Session; ep?: DatagramEndpoint; sent: Buffer[]; closed: string[]; session: Session} {
  const f = {sent: [] as Buffer[], closed: [] as string[], ep: undefined as DatagramEndpoint | undefined, session: undefined as unknown as Session, open: (_: DatagramEndpoint) => f.session}
  f.session = {state: 'pending', sendDatagram: (d: Buffer) => f.sent.push(d), close: (why: string) => { f.closed.push(why); f.ep?.destroy(why) }} as unknown as Session
  f.open = (ep) => { f.ep = ep; return f.session }
  return f
}
const from = {addr: '127.0.0.1', port: 5000}

test('one session per key; datagrams queue (bounded) until it opens, then flow', () => {
  const flows = new UdpFlows({idle: 0, failed: () => {}})
  const a = fake()
  for (let i = 0; i < MAX_QUEUED + 5; i++) flows.send('k', Buffer.from([i]), from, a.open, () => {})
  flows.send('k', Buffer.from('x'), from, () => { assert.unreachable('opened twice'); return null }, () => {})
  assert.is(flows.size, 1)
  ;(a.session as {state: string}).state = 'active'
  a.ep!.opened(true)
  assert.is(a.sent.length, MAX_QUEUED)
  flows.send('k', Buffer.from('y'), from, a.open, () => {})
  assert.is(a.sent.at(-1)!.toString(), 'y')
})

test('a failed open is reported and forgotten; the oldest flow gives way past the limit; closeAll ends all', () => {
  const failures: string[] = []
  const flows = new UdpFlows({idle: 0, max: 2, failed: (k, why) => failures.push(`${k}: ${why}`)})
  const bad = fake()
  flows.send('bad', Buffer.alloc(1), from, bad.open, () => {})
  bad.ep!.opened(false, 'denied')
  assert.equal(failures, ['bad: denied'])
  assert.is(flows.size, 0)
  const [x, y, z] = [fake(), fake(), fake()]
  flows.send('x', Buffer.alloc(1), from, x.open, () => {})
  flows.send('y', Buffer.alloc(1), from, y.open, () => {})
  flows.send('x', Buffer.alloc(1), from, x.open, () => {})
  flows.send('z', Buffer.alloc(1), from, z.open, () => {})
  assert.is(flows.size, 2)
  assert.equal(y.closed, ['too many UDP flows'], 'the idlest flow (y) ended')
  flows.closeAll('bye')
  assert.equal([x.closed, z.closed], [['bye'], ['bye']])
  assert.is(flows.size, 0)
})

test.run()
