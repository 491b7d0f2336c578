// Builds the native addon (native/*.c -> build/Release/tunkit_tun.node); package.json "install"
// runs it in place of npm's default `node-gyp rebuild`. It lives in native/ because that folder
// is in the published package ("files"), as an install script must be.
//
// - With the running Node's own headers installed beside it (<prefix>/include/node, as a distro
//   package or an official tarball has them), node-gyp gets --nodedir=<prefix>: without it,
//   node-gyp downloads the headers (from nodejs.org, into $HOME/.cache), which fails offline or
//   with no writable home — and it said nothing about it under npm ci.
// - Without a C compiler, make or Linux, the addon is skipped with a warning and the install
//   succeeds: the relay and the gate run without it (stream pipes, the digest in JavaScript);
//   VPN mode says it needs the addon when started. TUNKIT_REQUIRE_NATIVE=1 (CI) makes that fatal.
// - A build that fails for any other reason (a compile error, say) fails the install, with the
//   reason printed.
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const required = process.env.TUNKIT_REQUIRE_NATIVE === '1'
const say = (msg) => process.stderr.write(`tunkit: ${msg}\n`)

function skip(reason) {
  say(`${required ? 'error' : 'warning'}: the native addon was not built: ${reason}.`)
  say('  Without it, VPN mode cannot run; relays and gates work (more slowly). Build it later with "npm rebuild tunkit" or "node native/build.mjs".')
  process.exit(required ? 1 : 0)
}

const onPath = (cmd) => spawnSync('sh', ['-c', `command -v "$1"`, 'sh', cmd], {stdio: 'ignore'}).status === 0

/** <prefix> when <prefix>/include/node holds the headers of this very Node, else null. */
function localHeaders() {
  const prefix = dirname(dirname(process.execPath))
  const include = join(prefix, 'include', 'node')
  if (!existsSync(join(include, 'node_api.h'))) return null
  try {
    const h = readFileSync(join(include, 'node_version.h'), 'utf8')
    const v = ['MAJOR', 'MINOR', 'PATCH'].map((p) => (h.match(new RegExp(`#define NODE_${p}_VERSION (\\d+)`)) ?? [])[1]).join('.')
    return `v${v}` === process.version ? prefix : null
  } catch {
    return null
  }
}

/** node-gyp: npm's own (npm names it for install scripts), else the one bundled with npm beside this Node. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ]
  for (const c of candidates) if (c && existsSync(c)) return [process.execPath, [c]]
  if (onPath('node-gyp')) return ['node-gyp', []]
  return null
}

if (process.platform !== 'linux') skip(`it is Linux-only (TUN/TAP, splice), and this is ${process.platform}`)
const cc = process.env.CC?.split(' ')[0] || (onPath('cc') ? 'cc' : 'gcc')
if (!onPath(cc)) skip(`no C compiler ("${cc}" is not on PATH; on Debian/Ubuntu: apt-get install build-essential)`)
if (!onPath('make')) skip('no "make" on PATH (on Debian/Ubuntu: apt-get install build-essential)')
const gyp = nodeGyp()
if (!gyp) skip('node-gyp was not found (it comes with npm)')

const args = ['rebuild']
const nodedir = process.env.npm_config_nodedir ? null : localHeaders()
if (nodedir) args.push(`--nodedir=${nodedir}`)
const run = spawnSync(gyp[0], [...gyp[1], ...args], {cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
const output = `${run.stdout ?? ''}${run.stderr ?? ''}`
if (run.status === 0) {
  say(`native addon built (build/Release/tunkit_tun.node) with ${nodedir ? `the headers in ${nodedir}/include/node` : process.env.npm_config_nodedir ? `the headers in ${process.env.npm_config_nodedir}` : "node-gyp's downloaded headers"}`)
  process.exit(0)
}

// What node-gyp said, without its "gyp info" chatter, then the reason in a sentence.
process.stderr.write(output.split('\n').filter((l) => l && !l.startsWith('gyp info')).slice(-40).join('\n') + '\n')
if (/Could not find any Python/i.test(output)) skip('node-gyp needs Python 3, and found none (apt-get install python3)')
if (!nodedir && /EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|getaddrinfo|headers\.tar|EACCES|EROFS/.test(output)) {
  skip(`node-gyp could not fetch or store Node's headers (offline, or no writable home?) and none are installed beside ${process.execPath} (expected in ${dirname(dirname(process.execPath))}/include/node); install the Node headers package or set npm_config_nodedir`)
}
say(`error: building the native addon failed (node-gyp exit ${run.status ?? run.signal ?? run.error?.message}); see above`)
process.exit(1)
