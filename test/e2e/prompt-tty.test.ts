import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'
import {BIN, stop, waitFor} from '../helpers/procs.js'
import {lacking, unless} from '../helpers/requires.js'
import {makePki, startGate} from '../helpers/tunnel.js'

const run = promisify(execFile)
const t = suite<Record<string, any>>('prompt on a terminal') // eslint-disable-line @typescript-eslint/no-explicit-any

t.before(async (ctx) => {
  ctx.pki = await makePki('tty')
})
t.after((ctx) => ctx.pki?.cleanup())

/**
 * A user at a real terminal: tmux (a private server, -L tk…) runs the portal in a detached
 * session; we type into it with send-keys and read the screen with capture-pane.
 */
unless(t, lacking(['tmux']))('a missing --gate is asked for on a terminal, a wrong answer is explained, the right one used; Ctrl-C exits 0', async (ctx) => {
  const gate = await startGate(ctx.pki)
  const socket = `tk${process.pid}`
  const statusFile = join(ctx.pki.dir, 'portal.status')
  const tmux = (...args: string[]): Promise<{stdout: string}> => run('tmux', ['-L', socket, ...args], {env, timeout: 10000})
  // A terminal session as a user has it: not CI (which turns prompts off).
  const env: NodeJS.ProcessEnv = {...process.env, TUNKIT_PKI: ctx.pki.dir, NO_COLOR: '1'}
  delete env.CI
  delete env.FORCE_COLOR
  delete env.TMUX
  const screen = async (): Promise<string> => (await tmux('capture-pane', '-p', '-J', '-S', '-100', '-t', 'tk')).stdout
  try {
    // tmux sometimes marks the pane dead without ever reporting its exit status: the shell around
    // the portal writes it to a file instead (Ctrl-C reaches the portal, the foreground process).
    await tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'tk', '-x', '200', '-y', '50',
      `${process.execPath} ${BIN} portal --socks 127.0.0.1:0; echo "status=$?" > ${statusFile}`)
    await tmux('set-option', '-t', 'tk', 'remain-on-exit', 'on')
    await waitFor('the prompt', async () => (await screen()).includes('Gate address (host:port):'))
    await tmux('send-keys', '-t', 'tk', '-l', 'no-port-here')
    await tmux('send-keys', '-t', 'tk', 'Enter')
    await waitFor('the reason the answer is refused', async () => /--gate: .*no-port-here/.test(await screen()))
    await tmux('send-keys', '-t', 'tk', 'C-u')
    await tmux('send-keys', '-t', 'tk', '-l', `127.0.0.1:${gate.port}`)
    await tmux('send-keys', '-t', 'tk', 'Enter')
    await waitFor('the tunnel through the gate typed in', async () => (await screen()).includes(`tunnel up to 127.0.0.1:${gate.port}`))
    await tmux('send-keys', '-t', 'tk', 'C-c')
    const status = await waitFor('the portal to exit', () => existsSync(statusFile) && readFileSync(statusFile, 'utf8').trim())
      .catch(async (e) => {
        console.log(`screen:\n${await screen()}`)
        throw e
      })
    assert.is(status, 'status=0', 'Ctrl-C: exit status 0')
    assert.match(await screen(), /SIGINT: closing the tunnel/)
  } finally {
    await tmux('kill-server').catch(() => {})
    await stop(gate)
  }
})

t.run()
