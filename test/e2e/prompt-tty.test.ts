import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
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
  const tmux = (...args: string[]): Promise<{stdout: string}> => run('tmux', ['-L', socket, ...args], {env, timeout: 10000})
  // A terminal session as a user has it: not CI (which turns prompts off).
  const env: NodeJS.ProcessEnv = {...process.env, TUNKIT_PKI: ctx.pki.dir, NO_COLOR: '1'}
  delete env.CI
  delete env.FORCE_COLOR
  delete env.TMUX
  const screen = async (): Promise<string> => (await tmux('capture-pane', '-p', '-J', '-S', '-100', '-t', 'tk')).stdout
  try {
    await tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'tk', '-x', '200', '-y', '50',
      `exec ${process.execPath} ${BIN} portal --socks 127.0.0.1:0`)
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
    const status = await waitFor('the portal to exit', async () => {
      const {stdout} = await tmux('display-message', '-p', '-t', 'tk', '#{pane_dead} status=#{pane_dead_status} signal=#{pane_dead_signal}')
      // The pane is dead when the terminal closes; its status comes when tmux has reaped the process.
      return /^1 (status=\d|.*signal=\d)/.test(stdout) && stdout.trim()
    }).catch(async (e) => { console.log('SCREEN:\n' + (await screen()), (await tmux('display-message', '-p', '-t', 'tk', '#{pane_dead} status=#{pane_dead_status} signal=#{pane_dead_signal} pid=#{pane_pid}')).stdout); throw e })
    assert.is(status, '1 status=0 signal=', 'Ctrl-C: exit status 0')
    assert.match(await screen(), /SIGINT: closing the tunnel/)
  } finally {
    await tmux('kill-server').catch(() => {})
    await stop(gate)
  }
})

t.run()
