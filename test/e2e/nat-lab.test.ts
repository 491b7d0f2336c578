import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {missing, unless} from '../helpers/requires.js'
import {BIN, stop, tunkit, waitFor, type Proc} from '../helpers/procs.js'

const run = promisify(execFile)
const LAB = 'test/nat/natlab.sh'


// Ground truth: the same nftables rules, verified by ../shared/lab/nat's independent probes.
const expected: [string, {natPresent: boolean; mapping: string; filtering: string; hairpinning: boolean | null; portPreserved: boolean; recommendation: string}][] = [
  ['none', {natPresent: false, mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: true, portPreserved: true, recommendation: 'direct'}],
  ['eim-eif', {natPresent: true, mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: false, portPreserved: true, recommendation: 'nat-t'}],
  ['eim-adf', {natPresent: true, mapping: 'endpoint-independent', filtering: 'address-dependent', hairpinning: false, portPreserved: true, recommendation: 'nat-t'}],
  ['eim-apdf', {natPresent: true, mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', hairpinning: false, portPreserved: true, recommendation: 'nat-t'}],
  ['apdm-apdf', {natPresent: true, mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', hairpinning: false, portPreserved: false, recommendation: 'nat-t'}],
  ['eim-eif+hairpin', {natPresent: true, mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: true, portPreserved: true, recommendation: 'nat-t'}],
]

const t = unless(suite<{server?: Proc}>('nat-discover against NATs of each behaviour (namespaces)'), missing(['ip', 'nft']))

t.before(async (ctx) => {
  await run('bash', [LAB, 'up', 'none'])
  ctx.server = tunkit(['nat-discover', '--serve', '--listen', '203.0.113.10:3478', '--alt', '198.51.100.10:3479', '--json'], {}, 'tkn-srv')
  await waitFor('STUN server', () => ctx.server!.events.find((e) => e.event === 'listening'))
})

t.after(async (ctx) => {
  if (ctx.server) await stop(ctx.server)
  await run('bash', [LAB, 'down'])
})

for (const [type, want] of expected) {
  t(`${type}: reported as the lab verified it`, async () => {
    await run('bash', [LAB, 'up', type])
    const r = await run('ip', ['netns', 'exec', 'tkn-cli', process.execPath, BIN, 'nat-discover', '--server', '203.0.113.10', '--json', '--timeout', '3'])
    const d = JSON.parse(r.stdout)
    const got = {natPresent: d.natPresent, mapping: d.mapping, filtering: d.filtering, hairpinning: d.hairpinning, portPreserved: d.portPreserved, recommendation: d.recommendation}
    assert.equal(got, want, r.stdout)
    assert.type(d.durationMs, 'number') // a figure, not a limit: speed is for bench/, not tests
    if (d.natPresent) assert.match(d.mappedAddress, /^203\.0\.113\.1:/)
  })
}

t('eim-apdf+t6: --lifetime measures bindings that die after 6 idle seconds, and recommends wrapping', async () => {
  await run('bash', [LAB, 'up', 'eim-apdf+t6'])
  const r = await run('ip', ['netns', 'exec', 'tkn-cli', process.execPath, BIN, 'nat-discover', '--server', '203.0.113.10', '--json', '--lifetime', '10'])
  const d = JSON.parse(r.stdout)
  assert.is(d.bindingLifetimeSec, 5, 'alive after 5 s, gone after 10 s')
  assert.is(d.recommendation, 'wrap')
})

t('udp-blocked: exit 3, no mapped address, recommendation "wrap"', async () => {
  await run('bash', [LAB, 'up', 'udp-blocked'])
  const r = await run('ip', ['netns', 'exec', 'tkn-cli', process.execPath, BIN, 'nat-discover', '--server', '203.0.113.10', '--json', '--timeout', '2']).then(
    () => ({code: 0, stdout: '{}'}),
    (e: {code: number; stdout: string}) => e,
  )
  assert.is(r.code, 3)
  const d = JSON.parse(r.stdout)
  assert.is(d.mappedAddress, null)
  assert.is(d.recommendation, 'wrap')
})

t.run()
