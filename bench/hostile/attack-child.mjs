// Runs one attack of attacks.mjs in its own process: NAME TARGETS_JSON DURATION_MS.
// SIGTERM ends it early; prints the attack's summary as one JSON line.
import {runAttack} from './attacks.mjs'

const [name, targets, ms] = process.argv.slice(2)
const a = runAttack(name, JSON.parse(targets), Number(ms))
process.on('SIGTERM', () => a.stop())
const summary = await a.done
console.log(JSON.stringify(summary))
process.exit(0)
