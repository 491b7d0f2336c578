// Runs the uvu suites from dist/test and ends with the line CI reads: "N passed, N failed, N skipped".
// uvu's "Total:" counts the tests that ran; the skipped ones (test.skip, test/helpers/requires.ts
// unless()) are only in "Skipped:", so failed = total - passed.
import {spawn} from 'node:child_process'

// "unit" | "e2e" | undefined (all). TUNKIT_TEST_SUITE=unit does the same for `npm test` as typed: the
// quick-start test (test/e2e/quickstart.test.ts) runs the README's `npm test` in a fresh clone
// with it, so that the clone runs its unit tests and not, recursively, the end-to-end suite.
const which = process.argv[2] ?? process.env.TUNKIT_TEST_SUITE
// End-to-end: test/e2e/ and the tests of I/O modules (real sockets and devices); unit: the rest.
const e2e = '(^|/)(e2e|io)/'
const pattern = which === 'unit' ? `^(?!.*${e2e}).*\\.test\\.js$` : which === 'e2e' ? `${e2e}.*\\.test\\.js$` : '\\.test\\.js$'
// One fuzz seed for the run, printed first: a run that fails, or hangs, replays with it.
const seed = process.env.TK_FUZZ_SEED ?? String((Math.random() * 2 ** 32) >>> 0)
console.log(`fuzz seed ${seed} (replay: TK_FUZZ_SEED=${seed})`)
const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'dist/test', pattern], {stdio: ['ignore', 'pipe', 'inherit'], env: {...process.env, TK_FUZZ_SEED: seed}})
let out = ''
child.stdout.on('data', (d) => {
  out += d
  process.stdout.write(d)
})
child.on('close', (code) => {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '') // kleur colours the numbers on a terminal
  const num = (label) => Number((plain.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? 0)
  const total = num('Total')
  const passed = num('Passed')
  const skipped = num('Skipped')
  const failed = code === 0 ? total - passed : Math.max(1, total - passed)
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
  process.exit(code ?? 1)
})
