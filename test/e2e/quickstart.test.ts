import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, realpathSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {tmpDir, waitFor} from '../helpers/procs.js'
import {lacking, unless} from '../helpers/requires.js'

/**
 * The README as a new user meets it: a clone of this checkout's committed HEAD, HOME a fresh
 * empty directory, and the commands of the README's "Quick start" code blocks run verbatim with
 * bash, in order: install and test, the main job, the global install.
 *
 * The README's `npm test` runs with TUNKIT_TEST_SUITE=unit (scripts/test.mjs): the clone's whole
 * suite would run this test again inside itself, and its end-to-end tests take minutes more; the
 * unit tests prove the fresh build works, and this very suite runs the rest.
 */
const t = suite<Record<string, any>>('README quick start') // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = execFileSync('git', ['rev-parse', '--show-toplevel'], {encoding: 'utf8'}).trim()
const MIN = 60_000

/** The registry `npm ci` needs; without it the test is reported as skipped, with the reason. */
function registry(): string | null {
  const tools = lacking(['git', 'curl', 'python3'])
  if (tools) return tools
  try {
    execFileSync('npm', ['ping'], {stdio: 'ignore', timeout: 20_000})
    return null
  } catch {
    return 'needs the npm registry (npm ping failed), for npm ci'
  }
}

/** The README's sh code blocks under "## Quick start", each as its lines. */
function quickStartBlocks(): string[][] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1))
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].split('\n').filter((l) => l.trim()))
}

interface Run { code: number | null; out: string }

/** One README line in bash, bounded in time; stdout and stderr together, as a user sees them. */
function sh(line: string, cwd: string, env: NodeJS.ProcessEnv, ms: number): Promise<Run> {
  return new Promise((res) => {
    const child = spawn('bash', ['-c', line], {cwd, env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    child.on('close', (code) => {
      clearTimeout(timer)
      res({code, out})
    })
  })
}

async function portFree(port: number): Promise<void> {
  await new Promise<void>((res, rej) => {
    const s = createServer().once('error', () => rej(new Error(`127.0.0.1:${port}, which the README's main job uses, is taken`)))
    s.listen(port, '127.0.0.1', () => s.close(() => res()))
  })
}

unless(t, registry())('the README quick start, main job and global install work verbatim from a fresh clone with an empty HOME', async () => {
  const blocks = quickStartBlocks()
  assert.is(blocks.length, 3, 'quick start, main job, global install')
  const [install, main, global] = blocks
  assert.equal(install.map((l) => l.split('#')[0].trim()), ['npm ci', 'npm test'], 'the quick start is exactly two commands')

  const {dir, cleanup} = tmpDir('quickstart')
  const clone = join(dir, 'tunkit')
  const home = join(dir, 'home')
  mkdirSync(home)
  // Nothing of ours leaks in: npm's variables (npm test sets them, its cache among them), and
  // where tunkit or other tools would look for configuration.
  const env: NodeJS.ProcessEnv = {HOME: home}
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|NPM_|INIT_CWD$|TUNKIT_|XDG_|HOME$)/.test(k)) env[k] = v
  const background: {line: string; child: ReturnType<typeof spawn>; out: string; exited: Promise<number | null>}[] = []
  try {
    execFileSync('git', ['clone', '--quiet', ROOT, clone])

    // 1. Install and build, then the tests (the unit suite: see above).
    let r = await sh(install[0], clone, env, 5 * MIN)
    assert.is(r.code, 0, `${install[0]}:\n${r.out.slice(-3000)}`)
    assert.ok(existsSync(join(clone, 'dist/src/commands/gate.js')), 'npm ci built tunkit')
    r = await sh(install[1], clone, {...env, TUNKIT_TEST_SUITE: 'unit'}, 5 * MIN)
    assert.is(r.code, 0, `${install[1]}:\n${r.out.slice(-3000)}`)
    const summary = r.out.trim().split('\n').at(-1) ?? ''
    assert.match(summary, /^[1-9]\d* passed, 0 failed, \d+ skipped$/)

    // 2. The main job. A line ending in "&" runs in the background as `exec LINE`, so the process
    // we hold (and signal) is the command itself; the others must succeed in turn.
    for (const port of [4433, 1080, 8000]) await portFree(port)
    let request: Run | undefined
    for (const line of main) {
      const bg = line.match(/^(.*?)\s&\s*(#.*)?$/)
      if (bg) {
        const child = spawn('bash', ['-c', `exec ${bg[1]}`], {cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe']})
        const p = {line, child, out: '', exited: new Promise<number | null>((res) => child.on('exit', (c) => res(c)))}
        child.stdout!.on('data', (d) => (p.out += d))
        child.stderr!.on('data', (d) => (p.out += d))
        background.push(p)
        continue
      }
      r = await sh(line, clone, env, 2 * MIN)
      assert.is(r.code, 0, `${line}:\n${r.out}\n${background.map((b) => `--- ${b.line}\n${b.out}`).join('\n')}`)
      if (line.startsWith('curl')) request = r
    }
    assert.ok(existsSync(join(home, '.config/tunkit/pki/ca.key')), 'pki init wrote to the default directory under HOME')
    assert.match(request?.out ?? '', /Directory listing for \//, 'the web server answered through the tunnel')
    const [gate, portal] = background.filter((b) => b.line.startsWith('./bin/run.js'))
    assert.match(gate.out, /tunnel up/)
    assert.match(portal.out, /socks listening on 127\.0\.0\.1:1080/)
    // tunkit runs as itself: the PID we signal is node running bin/run.js, no npm in front.
    for (const b of [gate, portal]) assert.match(readFileSync(`/proc/${b.child.pid}/cmdline`, 'utf8'), /node\0.*bin\/run\.js\0/)
    for (const b of background) b.child.kill('SIGINT')
    for (const b of background) assert.is(await b.exited, 0, `${b.line} exits 0 on SIGINT:\n${b.out}`)

    // 3. The global install, under a prefix of our own (npm_config_prefix): tunkit on PATH, its
    // man pages where man finds them from PATH, and the completions in ~/.bashrc and ~/.zshrc.
    const prefix = join(dir, 'global')
    const genv = {...env, npm_config_prefix: prefix, PATH: `${join(prefix, 'bin')}:${env.PATH}`}
    for (const line of global) {
      r = await sh(line, clone, genv, 3 * MIN)
      assert.is(r.code, 0, `${line}:\n${r.out}`)
    }
    r = await sh('tunkit -v', home, genv, MIN)
    assert.match(r.out, /^tunkit\/\d+\.\d+\.\d+ /)
    if (!lacking(['man'])) {
      r = await sh('man -w tunkit-portal', home, genv, MIN)
      // man prints the page's real path; npm links it into the prefix.
      assert.is(r.out.trim(), realpathSync(join(prefix, 'share/man/man1/tunkit-portal.1')), r.out)
    }
    r = await sh('bash -i -c "complete -p tunkit" 2>/dev/null', home, genv, MIN)
    assert.match(r.out, /complete -F _tunkit tunkit/)
    if (!lacking(['zsh'])) {
      r = await sh('zsh -i -c \'print -r -- "tunkit=$_comps[tunkit]"\' 2>/dev/null', home, genv, MIN)
      assert.match(r.out, /tunkit=_tunkit/)
    }
  } finally {
    for (const b of background) if (b.child.exitCode === null) b.child.kill('SIGKILL')
    await Promise.all(background.map((b) => b.exited))
    cleanup()
  }
})

t.run()
