import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {tmpDir, waitFor} from '../helpers/procs.js'
import {missing, unless} from '../helpers/requires.js'

/**
 * bench/delaylink.c, the userspace delay link bench:rtt runs over (this kernel has no netem): two
 * namespaces joined only by it see the round trip they asked for, both ways, and it stops cleanly.
 * Namespaces tkdl-a/tkdl-b, 203.0.113.1 and .2 on its TUN devices.
 */
const A = 'tkdl-a'
const B = 'tkdl-b'
const sh = (...args: string[]): string => execFileSync(args[0], args.slice(1), {encoding: 'utf8'})
const down = (): void => {
  for (const ns of [A, B]) {
    try {
      sh('ip', 'netns', 'del', ns)
    } catch { /* not there */ }
  }
}

/** min/avg/max of `count` pings from ns to addr (ms). */
function ping(ns: string, addr: string, count = 5): number[] {
  const out = sh('ip', 'netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '2', addr)
  assert.match(out, new RegExp(`${count} received`), out)
  return out.match(/= ([\d.]+)\/([\d.]+)\/([\d.]+)/)!.slice(1, 4).map(Number)
}

const t = unless(suite<{dir?: {dir: string; cleanup(): void}; link?: ChildProcess}>('bench delay link'), missing(['gcc', 'ip', 'ping', '/dev/net/tun']))

t.before((ctx) => {
  down()
  ctx.dir = tmpDir('dl')
  sh('gcc', '-O2', '-o', join(ctx.dir.dir, 'delaylink'), 'bench/delaylink.c')
  sh('ip', 'netns', 'add', A)
  sh('ip', 'netns', 'add', B)
})

t.after((ctx) => {
  if (ctx.link?.exitCode === null) ctx.link.kill('SIGKILL')
  down()
  ctx.dir?.cleanup()
})

t('a 15 ms link each way: pings both ways take at least 30 ms, and SIGTERM ends it with its drop count', async (ctx) => {
  const link = (ctx.link = spawn(join(ctx.dir!.dir, 'delaylink'), [A, 'tkdl-a0', B, 'tkdl-b0', '15'], {stdio: ['ignore', 'pipe', 'pipe']}))
  let out = ''
  let err = ''
  link.stdout!.on('data', (b: Buffer) => (out += b))
  link.stderr!.on('data', (b: Buffer) => (err += b))
  await waitFor('ready', () => out.includes('ready'))
  sh('ip', '-n', A, 'addr', 'add', '203.0.113.1', 'peer', '203.0.113.2', 'dev', 'tkdl-a0')
  sh('ip', '-n', A, 'link', 'set', 'tkdl-a0', 'up')
  sh('ip', '-n', B, 'addr', 'add', '203.0.113.2', 'peer', '203.0.113.1', 'dev', 'tkdl-b0')
  sh('ip', '-n', B, 'link', 'set', 'tkdl-b0', 'up')
  for (const [ns, addr] of [[A, '203.0.113.2'], [B, '203.0.113.1']]) {
    // A lower bound only: the link holds each packet at least 15 ms by construction; an upper
    // bound would be a wall-clock assertion on a shared machine (ping -W 2 bounds a hang).
    const [min] = ping(ns, addr)
    assert.ok(min >= 30, `a round trip of ${min} ms is shorter than the link's 30`)
  }
  link.kill('SIGTERM')
  const code = await new Promise((r) => link.on('exit', r))
  assert.is(code, 0)
  assert.match(err, /dropped 0 a->b, 0 b->a/)
})

t.run()
