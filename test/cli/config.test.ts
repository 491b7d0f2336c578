import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {event, runCli, stop, tmpDir, tunkit} from '../helpers/procs.js'
import {makePki} from '../helpers/tunnel.js'

const t = suite<Record<string, any>>('config files') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('config')
  ctx.tmp = tmpDir('config-home')
  // A HOME of our own: the default files are looked for there, never in the real one.
  ctx.env = {HOME: ctx.tmp.dir, XDG_CONFIG_HOME: ''}
})
t.after((ctx) => {
  ctx.pki?.cleanup()
  ctx.tmp?.cleanup()
})

function usage(r: {code: number | null; stderr: string}, re: RegExp): void {
  assert.is(r.code, 2, r.stderr)
  assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
  assert.match(r.stderr, re)
}

t('global flags come from --config too: json, log-level, log-format, log-time, trace; a flag char names a flag', async (ctx) => {
  const cfg = join(ctx.tmp.dir, 'globals.json')
  writeFileSync(cfg, JSON.stringify({'json': true, 'log-level': 'warn', 'log-time': 'none', 'l': '127.0.0.1:0', 'pki-dir': ctx.pki.dir}))
  const g = tunkit(['gate', '--config', cfg], ctx.env)
  const e = await event(g, 'listening')
  assert.ok((e.port as number) > 0, '"l" set --listen, "json" gave events')
  assert.is(await stop(g), 0)
  assert.not.match(g.stderr, /info/, 'log-level warn: no info lines')
  writeFileSync(cfg, JSON.stringify({'json': true, 'log-format': 'json', 'trace': true, 'listen': '127.0.0.1:0', 'pki-dir': ctx.pki.dir}))
  const j = tunkit(['gate', '--config', cfg], ctx.env)
  await event(j, 'listening')
  assert.is(await stop(j), 0)
  const lines = j.stderr.trim().split('\n').map((l) => JSON.parse(l))
  assert.ok(lines.some((l) => l.level === 'info' && /listening on/.test(l.message)), j.stderr)
})

t('a JSON syntax error names the file, line and column; an error is an event with --json on the command line or in the file', async (ctx) => {
  const cfg = join(ctx.tmp.dir, 'broken.json')
  writeFileSync(cfg, '{\n  "listen": "127.0.0.1:0",\n  "json": tru\n}\n')
  usage(await runCli(['gate', '--config', cfg], ctx.env), new RegExp(`--config: ${cfg}: line 3, column 14: Unexpected token`))
  writeFileSync(cfg, '{\n  "listen": "127.0.0.1:0"\n  "json": true\n}\n')
  usage(await runCli(['gate', '--config', cfg], ctx.env), new RegExp(`--config: ${cfg}: line 3, column 3: Expected ',' or '}' after property value$`, 'm'))
  // --json from the command line still gets the error as an event.
  const r = await runCli(['gate', '--config', cfg, '--json'], ctx.env)
  assert.match(JSON.parse(r.stdout.trim()).message, /line 3, column 3/)
  // "json": true in the file: a bad value in it is an error event too.
  writeFileSync(cfg, JSON.stringify({'json': true, 'listen': '127.0.0.1:70000'}))
  const b = await runCli(['gate', '--config', cfg], ctx.env)
  assert.is(b.code, 2)
  const ev = JSON.parse(b.stdout.trim())
  assert.is(ev.event, 'error')
  assert.is(ev.code, 'TK_USAGE')
  assert.match(ev.message, /--listen: port "70000"/)
})

t('an unknown key names the nearest flag; a value of the wrong type names the key', async (ctx) => {
  const cfg = join(ctx.tmp.dir, 'typo.json')
  writeFileSync(cfg, JSON.stringify({'log-levl': 'debug'}))
  usage(await runCli(['gate', '--config', cfg], ctx.env), /unknown flag "log-levl" \(did you mean "log-level"\?\)/)
  writeFileSync(cfg, JSON.stringify({'zzzzzz': 1}))
  const r = await runCli(['gate', '--config', cfg], ctx.env)
  usage(r, /unknown flag "zzzzzz"/)
  assert.not.match(r.stderr, /did you mean/, 'nothing is near')
  writeFileSync(cfg, JSON.stringify({'json': 'yes'}))
  usage(await runCli(['gate', '--config', cfg], ctx.env), /"json" must be true or false/)
  writeFileSync(cfg, JSON.stringify({'listen': {host: 'x'}}))
  usage(await runCli(['gate', '--config', cfg], ctx.env), /"listen" must be a string, a number or a list of them/)
})

t('~/.config/tunkit/COMMAND.json is read when present ($XDG_CONFIG_HOME first); --config replaces it; the command line wins', async (ctx) => {
  const home = tmpDir('config-default')
  try {
    const dir = join(home.dir, '.config', 'tunkit')
    mkdirSync(dir, {recursive: true})
    writeFileSync(join(dir, 'gate.json'), JSON.stringify({'listen': '127.0.0.1:70000', 'pki-dir': ctx.pki.dir, 'allow': ['*=198.18.0.0/15']}))
    const env = {HOME: home.dir, XDG_CONFIG_HOME: ''}
    usage(await runCli(["gate"], env), /--listen: port "70000"/)
    const g = tunkit(['gate', '--listen', '127.0.0.1:0', '--json'], env)
    await event(g, 'listening')
    assert.match(g.stderr, /with 1 access rule/, 'the default file gave --allow')
    assert.is(await stop(g), 0)
    // --config is read instead of the default file.
    const other = join(home.dir, 'other.json')
    writeFileSync(other, JSON.stringify({'pki-dir': ctx.pki.dir}))
    const o = tunkit(['gate', '--config', other, '--listen', '127.0.0.1:0', '--json'], env)
    await event(o, 'listening')
    assert.match(o.stderr, /no access rules/, o.stderr)
    assert.is(await stop(o), 0)
    // XDG_CONFIG_HOME comes first; "pki init" reads pki-init.json.
    const xdg = join(home.dir, 'xdg')
    mkdirSync(join(xdg, 'tunkit'), {recursive: true})
    const pkiDir = join(home.dir, 'pki')
    writeFileSync(join(xdg, 'tunkit', 'pki-init.json'), JSON.stringify({'dir': pkiDir, 'client': 'carol', 'json': true}))
    const r = await runCli(['pki', 'init'], {HOME: home.dir, XDG_CONFIG_HOME: xdg})
    assert.is(r.code, 0, r.stderr)
    const ev = JSON.parse(r.stdout.trim())
    assert.is(ev.event, 'pki')
    assert.is(ev.dir, pkiDir)
    assert.is(ev.client, 'carol')
  } finally {
    home.cleanup()
  }
})

t.run()
