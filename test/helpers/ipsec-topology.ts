import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

const run = promisify(execFile)

/**
 * Client, gateway and a private host in three namespaces, as the strongSwan lab has them:
 *   P-c [P-c0 203.0.113.2] == [P-g0 203.0.113.1] P-g [P-g1 198.18.1.1] == [P-p0 198.18.1.10] P-p
 * The gateway forwards, but nothing from its public side reaches the private net in clear (nft),
 * so a ping from the client to 198.18.1.10 answers only through the tunnel. Leftovers of a
 * crashed run with the same prefix are removed first.
 */
export interface Topology {
  ns: {c: string; g: string; p: string}
  down(): Promise<void>
  /** Runs a command in a namespace; rejects with its output when it fails. */
  exec(ns: string, argv: string[], timeoutMs?: number): Promise<{stdout: string; stderr: string}>
}

export async function ipsecTopology(prefix: string): Promise<Topology> {
  const ns = {c: `${prefix}-c`, g: `${prefix}-g`, p: `${prefix}-p`}
  const down = async (): Promise<void> => {
    for (const n of Object.values(ns)) await run('ip', ['netns', 'del', n]).catch(() => {})
  }
  const ip = (args: string[]): Promise<unknown> => run('ip', args)
  await down()
  for (const n of Object.values(ns)) {
    await ip(['netns', 'add', n])
    await ip(['-n', n, 'link', 'set', 'lo', 'up'])
    await run('ip', ['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'])
  }
  const link = async (a: string, ifa: string, addrA: string, b: string, ifb: string, addrB: string): Promise<void> => {
    await ip(['link', 'add', ifa, 'netns', a, 'type', 'veth', 'peer', 'name', ifb, 'netns', b])
    await ip(['-n', a, 'addr', 'add', addrA, 'dev', ifa])
    await ip(['-n', b, 'addr', 'add', addrB, 'dev', ifb])
    await ip(['-n', a, 'link', 'set', ifa, 'up'])
    await ip(['-n', b, 'link', 'set', ifb, 'up'])
  }
  try {
    await link(ns.c, `${prefix}-c0`, '203.0.113.2/24', ns.g, `${prefix}-g0`, '203.0.113.1/24')
    await link(ns.g, `${prefix}-g1`, '198.18.1.1/24', ns.p, `${prefix}-p0`, '198.18.1.10/24')
    await ip(['-n', ns.p, 'route', 'add', 'default', 'via', '198.18.1.1'])
    await run('ip', ['netns', 'exec', ns.g, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    const nft = (...args: string[]): Promise<unknown> => run('ip', ['netns', 'exec', ns.g, 'nft', ...args])
    await nft('add', 'table', 'inet', 'tkfilter')
    await nft('add', 'chain', 'inet', 'tkfilter', 'forward', '{ type filter hook forward priority 0; }')
    await nft('add', 'rule', 'inet', 'tkfilter', 'forward', 'iifname', `${prefix}-g0`, 'drop')
    await nft('add', 'rule', 'inet', 'tkfilter', 'forward', 'oifname', `${prefix}-g0`, 'drop')
  } catch (e) {
    await down()
    throw e
  }
  return {
    ns,
    down,
    exec: (n, argv, timeoutMs = 30_000) => run('ip', ['netns', 'exec', n, ...argv], {timeout: timeoutMs, maxBuffer: 16 << 20}),
  }
}
