import type {Socket} from 'node:net'
import type {Session, StreamEndpoint} from '../core/mux.js'

/**
 * Binds a local TCP socket to an Usher session: socket data → session.send (paused by the
 * multiplexer when the window is full), session data → socket with completion-driven acks.
 * The socket is not read until the session is open.
 */
export class SocketEndpoint implements StreamEndpoint {
  session: Session | null = null
  private done = false

  constructor(
    private readonly socket: Socket,
    private readonly onOpened: (ok: boolean, reason?: string) => void = () => {},
  ) {
    socket.pause()
    socket.setNoDelay(true)
    socket.on('error', (err) => this.session?.localError(`${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`))
    socket.on('close', () => {
      if (!this.done) this.session?.localError('local connection closed')
    })
  }

  /** Start relaying once the session exists and is open. */
  bind(session: Session): void {
    this.session = session
    this.socket.on('data', (d: Buffer) => session.send(d))
    this.socket.on('end', () => session.localEof())
    if (session.canSendEarly()) this.socket.resume()
  }

  opened(ok: boolean, reason?: string): void {
    this.onOpened(ok, reason)
    if (ok) this.socket.resume()
    else this.socket.end() // after any reply onOpened wrote (SOCKS5)
  }

  write(data: Buffer, done: () => void, more = false): void {
    // Pieces of one record, and records that arrive in one tick, leave in one writev.
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      if (!more) process.nextTick(this.uncork)
    }
    this.socket.write(data, done)
    if (!more && this.pieces) {
      this.pieces = false
      this.uncork()
    } else if (more) this.pieces = true
  }

  private pieces = false
  private corked = false
  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  end(): void {
    this.socket.end()
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  destroy(): void {
    this.done = true
    this.socket.destroy()
  }
}
