// Runs the uvu suites from dist/test and ends with the line CI reads: "N passed, N failed".
import {spawn} from 'node:child_process'

const which = process.argv[2] // "unit" | "e2e" | undefined (all)
// End-to-end: test/e2e/ and the tests of I/O modules (real sockets and devices); unit: the rest.
const e2e = '(^|/)(e2e|io)/'
const pattern = which === 'unit' ? `^(?!.*${e2e}).*\\.test\\.js$` : which === 'e2e' ? `${e2e}.*\\.test\\.js$` : '\\.test\\.js$'
const child = spawn(process.execPath, ['node_modules/uvu/bin.js', 'dist/test', pattern], {stdio: ['ignore', 'pipe', 'inherit']})
let out = ''
child.stdout.on('data', (d) => {
  out += d
  process.stdout.write(d)
})
child.on('close', (code) => {
  const num = (label) => Number((out.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? 0)
  const total = num('Total')
  const passed = num('Passed')
  const skipped = num('Skipped')
  const failed = code === 0 ? total - passed - skipped : Math.max(1, total - passed - skipped)
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
  process.exit(code ?? 1)
})
