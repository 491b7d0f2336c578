import {execFileSync} from 'node:child_process'
import type {Test} from 'uvu'

/**
 * TK_TEST_FORCE_SKIP=1 makes every gated test skip, as on a machine without root or tools: the
 * way to check that skips are reported as skips.
 */
const forced = process.env.TK_TEST_FORCE_SKIP === '1'

/** Why these commands (or paths such as /dev/net/tun) are not all here, or null when they are. */
export function lacking(tools: string[]): string | null {
  if (forced) return 'TK_TEST_FORCE_SKIP=1'
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

/**
 * Why a test that needs root and these tools cannot run here, or null when it can. .ci/run
 * installs every tool, so CI never skips for lack of one.
 */
export function missing(tools: string[]): string | null {
  if (forced) return 'TK_TEST_FORCE_SKIP=1'
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TUN/TAP, nftables)'
  return lacking(tools)
}

/**
 * The suite `t` itself when `why` is null; otherwise a stand-in on which every test registered
 * is counted by uvu as skipped (its "Skipped:" total, which scripts/test.mjs reports) and named
 * with the reason when the suite runs, and hooks are not run. A test that cannot run is never
 * a pass.
 */
export function unless<T>(t: Test<T>, why: string | null): Test<T> {
  if (why === null) return t
  const names: string[] = []
  const skip = (name?: string): void => {
    names.push(name ?? '(unnamed)')
    t.skip()
  }
  const hook = Object.assign(() => {}, {each: () => {}})
  t.before(() => console.log(`\n  skipped, ${why}:\n${names.map((n) => `    ${n}`).join('\n')}`))
  return Object.assign((name: string) => skip(name), {only: skip, skip, before: hook, after: hook, run: () => t.run()})
}
