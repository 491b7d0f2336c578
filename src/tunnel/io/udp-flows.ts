import type {DatagramEndpoint, Session} from '../core/mux.js'

/** Datagrams held for a flow whose session is still opening. */
export const MAX_QUEUED = 64
/** Flows kept at once; a new flow past it ends the one idle longest. */
export const MAX_FLOWS = 1024

interface Flow {
  session: Session | null
  queue: Buffer[]
  timer: NodeJS.Timeout | null
}

export interface UdpFlowsOptions {
  /** Seconds of silence after which a flow's session ends (0 = never). */
  idle: number
  max?: number
  /** The session could not be opened. */
  failed(key: string, reason: string): void
}

/**
 * One UDP session through the tunnel per local flow (a -U client's address, a SOCKS5 UDP
 * target), so replies find their way back: bounded in number, ended after `idle` seconds.
 */
export class UdpFlows {
  private flows = new Map<string, Flow>()

  constructor(private readonly o: UdpFlowsOptions) {}

  get size(): number {
    return this.flows.size
  }

  /**
   * Sends `data` on the flow `key`, opening its session with `open` the first time; `deliver`
   * takes the datagrams that come back.
   */
  send(key: string, data: Buffer, from: {addr: string; port: number}, open: (ep: DatagramEndpoint) => Session | null, deliver: (data: Buffer) => void): void {
    let f = this.flows.get(key)
    if (f) {
      f.timer?.refresh()
      // Map order is insertion order: moving a used flow to the end keeps the idlest first.
      this.flows.delete(key)
      this.flows.set(key, f)
    } else f = this.start(key, from, open, deliver)
    if (f.session?.state === 'active') f.session.sendDatagram(data, from)
    else if (f.queue.length < MAX_QUEUED) f.queue.push(data)
  }

  closeAll(reason: string): void {
    for (const f of [...this.flows.values()]) f.session?.close(reason)
    this.flows.clear()
  }

  private start(key: string, from: {addr: string; port: number}, open: (ep: DatagramEndpoint) => Session | null, deliver: (data: Buffer) => void): Flow {
    if (this.flows.size >= (this.o.max ?? MAX_FLOWS)) {
      const [oldest, f] = this.flows.entries().next().value as [string, Flow]
      this.end(oldest, f)
      f.session?.close('too many UDP flows')
    }
    const f: Flow = {session: null, queue: [], timer: null}
    if (this.o.idle > 0) {
      f.timer = setTimeout(() => f.session?.close(`UDP flow idle for ${this.o.idle} s`), this.o.idle * 1000)
      f.timer.unref()
    }
    this.flows.set(key, f)
    f.session = open({
      opened: (ok, reason) => {
        if (!ok) {
          this.end(key, f)
          return this.o.failed(key, reason ?? 'failed')
        }
        for (const m of f.queue) f.session!.sendDatagram(m, from)
        f.queue = []
      },
      deliver: (d) => deliver(d),
      destroy: () => this.end(key, f),
    })
    return f
  }

  private end(key: string, f: Flow): void {
    if (f.timer) clearTimeout(f.timer)
    if (this.flows.get(key) === f) this.flows.delete(key)
  }
}
