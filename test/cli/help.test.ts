import {execFile} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join, normalize} from 'node:path'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {runCli, tmpDir} from '../helpers/procs.js'

const run = promisify(execFile)
const t = suite('help, version, typos and words')
const manifest = JSON.parse(readFileSync('oclif.manifest.json', 'utf8')) as {commands: Record<string, {id: string; summary: string; description?: string; flags: Record<string, {summary?: string; description?: string}>}>}
const ours = Object.values(manifest.commands).filter((c) => !c.id.startsWith('help'))

function usageError(r: {code: number | null; stderr: string}, line: RegExp): void {
  assert.is(r.code, 2, `exit 2: ${r.stderr}`)
  assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
  assert.match(r.stderr.trim(), line)
}

t('help: -h, --help, help, and after a command -h, --help or help COMMAND, all exit 0', async () => {
  for (const args of [['-h'], ['--help'], ['help']]) {
    const r = await runCli(args)
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stdout, /USAGE\n {2}\$ tunkit \[COMMAND\]/, args.join(' '))
  }
  for (const args of [['gate', '-h'], ['gate', '--help'], ['help', 'gate'], ['portal', '--gate', '127.0.0.1:1', '-h'], ['pki', 'init', '-h'], ['help', 'pki', 'init']]) {
    const r = await runCli(args)
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    const cmd = args.filter((a) => /^[a-z]+$/.test(a) && a !== 'help').join(' ')
    assert.match(r.stdout, new RegExp(`\\$ tunkit ${cmd} `), args.join(' '))
  }
})

t('version: version, --version and -v print the same line, exit 0; "gate -v" is not the version', async () => {
  const lines = []
  for (const args of [['version'], ['--version'], ['-v']]) {
    const r = await runCli(args)
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stdout, /^tunkit\/\d+\.\d+\.\d+ \S+ node-v\d+/, args.join(' '))
    lines.push(r.stdout)
  }
  assert.is(new Set(lines).size, 1)
  const json = JSON.parse((await runCli(['version', '--json'])).stdout)
  assert.is(json.version, JSON.parse(readFileSync('package.json', 'utf8')).version)
  assert.not.match((await runCli(['gate', '-v', '--listen', '127.0.0.1:70000'])).stdout, /^tunkit\//)
})

t('a typo in a command or a flag: one line with the nearest, exit 2', async () => {
  usageError(await runCli(['gat']), /^tunkit: error: "gat" is not a tunkit command; did you mean "tunkit gate"\?/)
  usageError(await runCli(['pki', 'ini']), /did you mean "tunkit pki init"\?/)
  usageError(await runCli(['versoin']), /did you mean "tunkit version"\?/)
  usageError(await runCli(['--hlep']), /unknown flag --hlep; did you mean "tunkit --help"\?/)
  usageError(await runCli(['portal', '--gatee', 'x']), /^tunkit portal: error: unknown flag --gatee; did you mean --gate\?$/)
  usageError(await runCli(['gate', '--lisen', '127.0.0.1:0']), /unknown flag --lisen; did you mean --listen\?$/)
  usageError(await runCli(['frobnicate']), /^tunkit: error: "frobnicate" is not a tunkit command \(see "tunkit --help"\)$/)
})

t('errors name the command as typed ("tunkit pki init:"), and pki init checks --san and --client as pki issue does', async () => {
  const {dir, cleanup} = tmpDir('names')
  try {
    usageError(await runCli(['pki', 'init', '--dir', dir, '--san', 'bad name!']), /^tunkit pki init: error: --san: "bad name!" is not a DNS name or an IP address$/)
    usageError(await runCli(['pki', 'init', '--dir', dir, '--client', 'a b']), /^tunkit pki init: error: --client: "a b" must be 1-64 letters/)
    usageError(await runCli(['pki', 'issue', 'a b', '--dir', dir]), /^tunkit pki issue: error: NAME: "a b" must be 1-64 letters/)
    assert.not.ok(existsSync(join(dir, 'ca.key')), 'nothing written on a bad name')
    const r = await runCli(['pki', 'init', '--dir', dir, '--san', 'gate.example', '--san', '203.0.113.10', '--san', '*.gate.example', '--client', 'alice@example'])
    assert.is(r.code, 0, r.stderr)
    usageError(await runCli(['pki', 'issue', 'bob', '--dir', dir, '--san', 'under_score']), /^tunkit pki issue: error: --san: "under_score" is not a DNS name or an IP address$/)
  } finally {
    cleanup()
  }
})

// Words a user of the command line does not need: seed numbers and record names (docs/protocol.md and --trace have them).
const JARGON = /\bseed \d|(?<!-)\bRELAY\b|\bREQUEST\b|\bUsher|\bSOFTWARE\b|CHANGE-REQUEST|RESPONSE-ORIGIN|OTHER-ADDRESS|repeatable/

t('help and man pages: plain words, one line per paragraph, "May be repeated." once, only commands that exist', async () => {
  for (const c of ours) {
    const texts = [c.summary, c.description ?? '', ...Object.values(c.flags).flatMap((f) => [f.summary ?? '', f.description ?? ''])]
    for (const s of texts) {
      assert.not.match(s, JARGON, `${c.id}: ${s}`)
      // A line break only between paragraphs: help and man wrap to the reader's width.
      assert.not.match(s.replace(/\n\n/g, ''), /\n/, `${c.id}: a hard line break in: ${s}`)
    }
  }
  for (const f of readdirSync('man')) {
    const page = readFileSync(join('man', f), 'utf8')
    assert.not.match(page, JARGON, f)
    assert.not.match(page, /May be repeated\.[^\n]*May be repeated/, f)
  }
  // The top-level help lists commands and topics that run, and names nothing that does not exist.
  const top = (await runCli(['--help'])).stdout
  assert.not.match(top, /L2TP/)
  const listed = [...top.matchAll(/^ {2}([a-z][a-z-]*) {2,}/gm)].map((m) => m[1])
  assert.ok(listed.length >= 6, top)
  for (const w of listed) assert.is((await runCli([w, '-h'])).code, 0, `tunkit ${w} -h`)
})

t('the README links only to files in the repository', async () => {
  const readme = readFileSync('README.md', 'utf8')
  assert.not.match(readme, /https?:\/\/(?!(127\.0\.0\.1|localhost)[:/])/, 'no web links')
  for (const [, target] of readme.matchAll(/\]\(([^)#]+)[^)]*\)/g)) {
    assert.not.ok(normalize(target).startsWith('..'), `${target} is outside the repository`)
    assert.ok(existsSync(target), `${target} exists`)
  }
  for (const [, path] of readme.matchAll(/`(\.\.\/[^`]*)`/g)) assert.unreachable(`${path} is outside the repository`)
  // Files and directories named in backquotes exist too (docs/…, man/, completions/…).
  for (const [, path] of readme.matchAll(/`((?:docs|man|completions|scripts|test|bench|native)\/[^`\s]*)`/g)) assert.ok(existsSync(path), `${path} exists`)
})

t('package.json "man" lists every man page, for a global install', async () => {
  const man = JSON.parse(readFileSync('package.json', 'utf8')).man as string[]
  assert.equal(man.map((m) => m.replace(/^\.\//, '')).sort(), readdirSync('man').map((f) => `man/${f}`).sort())
  await run(process.execPath, ['scripts/gen-docs.mjs', '--check'])
})

t.run()
