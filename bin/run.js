#!/usr/bin/env -S node --initial-old-space-size=64
// --initial-old-space-size: V8 counts every Buffer's memory, freed or not yet, towards its next full
// collection, and a tunnel moving gigabits allocates that much per second (Node's TLS hands each
// record over in a fresh Buffer): with V8's default floor it ran a full, concurrent mark every
// 50-100 ms, about a third of VPN mode's CPU. With 64 MiB as the floor (a V8 start-up flag, hence
// here) young collections free those Buffers first and full ones are rare (bench/vpn.sh).
// CommonJS (bin/package.json): an ES module entry is read through libuv's thread pool, which
// fixes the pool's size before this line could run. Name lookups (dns.lookup) each hold one of
// its threads for as long as a resolver takes; the gate bounds them below the pool's size
// (lib/io/connect.ts), so it starts with a bigger pool unless the user chose one.
process.env.UV_THREADPOOL_SIZE ??= '16'
// SIGINT/SIGTERM end tunkit with 0 at any moment; until the command's own handler is in place
// (src/cli/base.ts init), while the modules load, this one ends it at once.
const early = (sig) => {
  if (process.listenerCount(sig) > 1) return
  process.stderr.write(`info  stopped on ${sig}\n`)
  process.exit(0)
}
process.on('SIGINT', early)
process.on('SIGTERM', early)
import('@oclif/core').then(({execute}) => execute({dir: require('node:path').join(__dirname, '..', 'package.json')}))
