import {execFileSync} from 'node:child_process'

/**
 * Why a test that needs root and these tools (commands, or paths such as /dev/net/tun) cannot run
 * here, or null when it can. .ci/run installs every tool, so CI never skips for lack of one.
 */
export function missing(tools: string[]): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TUN/TAP, nftables)'
  for (const tool of tools) {
    const check = tool.startsWith('/') ? `test -e ${tool}` : `command -v ${tool}`
    try {
      execFileSync('sh', ['-c', check], {stdio: 'ignore'})
    } catch {
      return `needs ${tool}`
    }
  }
  return null
}
