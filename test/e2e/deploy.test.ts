import {execFile} from 'node:child_process'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {BIN, freePort, stop, tmpDir, waitFor} from '../helpers/procs.js'
import {lacking, unless} from '../helpers/requires.js'
import {helloHttp, socksConnect} from '../helpers/servers.js'
import {makePki, startPortal, type Pki} from '../helpers/tunnel.js'

// docs/deploy.md's systemd units (contrib/systemd/), checked by systemd itself: where systemd is
// PID 1 the gate unit runs for real under its sandbox, elsewhere `systemd-analyze verify` reads
// them (ExecStart pointed at this checkout); `systemd-analyze security --offline` rates them.
const run = promisify(execFile)
const UNITS = 'contrib/systemd'
const names = ['tunkit-gate.service', 'tunkit-relay.service', 'tunkit-portal.service']

/** A unit with ExecStart running this checkout's CLI with this node. */
const here = (unit: string): string => readFileSync(join(UNITS, unit), 'utf8').replaceAll('/usr/bin/tunkit', `${process.execPath} ${BIN}`)

/** The man pages where `man` finds them: verify checks every Documentation=man: page. */
function manPath(dir: string): string {
  mkdirSync(join(dir, 'man1'), {recursive: true})
  for (const f of readdirSync('man')) copyFileSync(join('man', f), join(dir, 'man1', f))
  return dir
}

const docs = suite('deploy.md')

docs('docs/deploy.md shows the gate unit exactly as contrib/systemd/ ships it, and names every unit file', () => {
  const md = readFileSync('docs/deploy.md', 'utf8')
  const block = md.match(/```ini\n# tunkit gate under systemd[\s\S]*?```/)
  assert.ok(block, 'a fenced ini block with the gate unit')
  assert.is(block![0].slice('```ini\n'.length, -3), readFileSync(join(UNITS, 'tunkit-gate.service'), 'utf8'))
  for (const f of readdirSync(UNITS)) assert.ok(md.includes(`contrib/systemd/${f}`), `deploy.md names ${f}`)
})

docs.run()

const pid1 = existsSync('/run/systemd/system')
const t = unless(suite<Record<string, any>>('systemd units'), lacking(pid1 ? ['systemctl', 'journalctl', 'systemd-analyze'] : ['systemd-analyze', 'man'])) // eslint-disable-line @typescript-eslint/no-explicit-any

t(`the units pass systemd itself: ${pid1 ? 'the gate unit starts under its sandbox, serves a portal, reloads and stops' : 'systemd-analyze verify accepts gate, relay, portal and the VPN drop-in without a warning (systemd is not PID 1 here)'}`, async () => {
  if (pid1) await underSystemd()
  else await verifyUnits()
})

t('systemd-analyze security rates every unit\'s sandbox "OK" (exposure below 3 of 10)', async () => {
  const {dir, cleanup} = tmpDir('units')
  try {
    for (const u of names) {
      writeFileSync(join(dir, u), here(u))
      const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', join(dir, u)], {env: {...process.env, SYSTEMD_COLORS: '0'}, timeout: 30000})
      const m = r.stdout.match(/Overall exposure level for \S+: (\d+\.\d+) (\w+)/)
      assert.ok(m, r.stdout)
      assert.ok(Number(m![1]) < 3, `${u}: exposure ${m![1]} ${m![2]}`)
    }
  } finally {
    cleanup()
  }
})

t.run()

async function verifyUnits(): Promise<void> {
  const {dir, cleanup} = tmpDir('units')
  try {
    for (const u of names) writeFileSync(join(dir, u), here(u))
    const env = {...process.env, MANPATH: manPath(join(dir, 'man')), SYSTEMD_LOG_COLOR: '0'}
    const plain = await run('systemd-analyze', ['verify', ...names.map((u) => join(dir, u))], {env, timeout: 30000})
    assert.is(plain.stdout + plain.stderr, '', 'no warnings')
    mkdirSync(join(dir, 'tunkit-gate.service.d'))
    copyFileSync(join(UNITS, 'vpn.conf'), join(dir, 'tunkit-gate.service.d', 'vpn.conf'))
    const vpn = await run('systemd-analyze', ['verify', join(dir, 'tunkit-gate.service')], {env, timeout: 30000})
    assert.is(vpn.stdout + vpn.stderr, '', 'no warnings with the VPN drop-in')
  } finally {
    cleanup()
  }
}

/**
 * With systemd as PID 1 (not so on the machine these tests were written on: this branch has not
 * run there): the gate unit as shipped, plus a drop-in for the test only (a user made for it, its
 * configuration in /run, not under /tmp or /home, which the unit hides).
 */
async function underSystemd(): Promise<void> {
  const unit = `tk-deploy-${process.pid}`
  const etc = `/run/${unit}`
  const pki: Pki = await makePki('deploy')
  const http = await helloHttp()
  const port = await freePort()
  const systemctl = (...a: string[]): Promise<{stdout: string}> => run('systemctl', a, {timeout: 30000})
  try {
    mkdirSync(etc, {recursive: true})
    for (const f of ['ca.crt', 'gate.crt', 'gate.key']) copyFileSync(join(pki.dir, f), join(etc, f))
    // Only for the dynamic user of this test: the shipped unit runs as tunkit, the key's owner.
    chmodSync(join(etc, 'gate.key'), 0o644)
    writeFileSync(join(etc, 'gate.json'), JSON.stringify({listen: `127.0.0.1:${port}`, cert: join(etc, 'gate.crt'), key: join(etc, 'gate.key'), ca: join(etc, 'ca.crt')}))
    writeFileSync(`/run/systemd/system/${unit}.service`, here('tunkit-gate.service').replace('/etc/tunkit/gate.json', join(etc, 'gate.json')))
    mkdirSync(`/run/systemd/system/${unit}.service.d`, {recursive: true})
    writeFileSync(`/run/systemd/system/${unit}.service.d/test.conf`, '[Service]\nDynamicUser=yes\nUser=\nGroup=\n')
    await systemctl('daemon-reload')
    await systemctl('start', `${unit}.service`)
    const p = await startPortal(pki, port, ['--socks', '127.0.0.1:0'], 1)
    try {
      const s = await socksConnect(p.ports.socks, '127.0.0.1', http.port)
      s.socket.destroy()
      assert.is(s.rep, 0)
      await systemctl('reload', `${unit}.service`)
      const journal = await waitFor('the reload in the journal', async () => {
        const out = (await run('journalctl', ['-u', `${unit}.service`, '-o', 'cat', '--no-pager'], {timeout: 10000})).stdout
        return /reloaded: nothing changed/.test(out) && out
      })
      assert.match(journal, /gate listening on 127\.0\.0\.1/)
      assert.is((await systemctl('is-active', `${unit}.service`)).stdout.trim(), 'active')
    } finally {
      await stop(p)
    }
  } finally {
    await systemctl('stop', `${unit}.service`).catch(() => {})
    rmSync(`/run/systemd/system/${unit}.service`, {force: true})
    rmSync(`/run/systemd/system/${unit}.service.d`, {recursive: true, force: true})
    await systemctl('daemon-reload').catch(() => {})
    rmSync(etc, {recursive: true, force: true})
    http.close()
    pki.cleanup()
  }
}
