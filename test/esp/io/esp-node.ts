// One end of the namespace tests (tunnel.test.ts), run inside a namespace: a TUN device and an
// ESP engine. Commands arrive as JSON lines on stdin, answers leave as JSON lines on stdout:
//   {"op":"add","sa":{…SaConfig, keys in hex}} → {"id":n}    {"op":"remove","id":n} → {"ok":true}
//   {"op":"stats","id":n} → SaStats                          {"op":"totals"} → EngineTotals
import {execFileSync} from 'node:child_process'
import {createInterface} from 'node:readline'
import {EspEngine, type SaConfig} from '../../../src/esp/io/engine.js'
import {nativeBinding} from '../../../src/lib/io/native.js'

const [tun, local, peerInner, bind] = process.argv.slice(2)
// The engine reads the device itself: open it without the TunDevice reader.
const [fd, name] = nativeBinding().open(tun, false, false)
execFileSync('ip', ['addr', 'add', `${local}/32`, 'peer', `${peerInner}/32`, 'dev', name])
execFileSync('ip', ['link', 'set', name, 'mtu', '1400', 'up'])
const engine = EspEngine.open({address: bind, port: 4500, tunFd: fd})
const say = (v: unknown): boolean => process.stdout.write(JSON.stringify(v) + '\n')

createInterface({input: process.stdin}).on('line', (line) => {
  const cmd = JSON.parse(line) as {op: string; id?: number; sa?: Record<string, unknown>}
  try {
    if (cmd.op === 'add') {
      const sa = cmd.sa!
      const hex = (k: string): Buffer | undefined => (typeof sa[k] === 'string' ? Buffer.from(sa[k] as string, 'hex') : undefined)
      say({id: engine.addSa({...sa, spi: hex('spi'), encKey: hex('encKey'), integKey: hex('integKey')} as unknown as SaConfig)})
    } else if (cmd.op === 'remove') say({ok: engine.removeSa(cmd.id!)})
    else if (cmd.op === 'stats') say(engine.stats(cmd.id!) ?? null)
    else if (cmd.op === 'totals') say(engine.totals())
    else say({error: `unknown op ${cmd.op}`})
  } catch (e) {
    say({error: (e as Error).message})
  }
})
say({ready: name})
process.on('SIGTERM', () => {
  engine.close()
  nativeBinding().close(fd)
  process.exit(0)
})
