import {execFile, spawn} from 'node:child_process'
import {promisify} from 'node:util'

const run = promisify(execFile)

/**
 * Sends `mb` MB from namespace `from` to a sink listening on `port` in namespace `to`
 * (test/fixtures/xfer.mjs), and returns the SHA-256 of what was sent and of what arrived.
 */
export async function transfer(from: string, to: string, host: string, port: number, mb: number): Promise<{sent: string; reply: string}> {
  const sink = spawn('ip', ['netns', 'exec', to, process.execPath, 'test/fixtures/xfer.mjs', 'sink', String(port)], {stdio: ['ignore', 'pipe', 'ignore']})
  try {
    await new Promise<void>((res, rej) => {
      sink.stdout!.once('data', () => res())
      sink.once('exit', (code) => rej(new Error(`the sink in ${to} exited with ${code}`)))
    })
    const r = await run('ip', ['netns', 'exec', from, process.execPath, 'test/fixtures/xfer.mjs', 'send', host, String(port), String(mb)], {timeout: 120000})
    return JSON.parse(r.stdout)
  } finally {
    sink.kill('SIGTERM')
  }
}
