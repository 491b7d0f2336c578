/**
 * A concurrency budget: at most `max` holders at once; the rest wait in FIFO order, at most
 * `maxQueue` of them (one more is refused at once), each until its AbortSignal fires.
 */
export class Limiter {
  private active = 0
  private readonly waiting: {grant: () => void; fail: (e: unknown) => void}[] = []

  constructor(readonly max: number, readonly maxQueue = Infinity) {
    if (!(max >= 1)) throw new RangeError(`limit ${max} is not at least 1`)
  }

  get busy(): number {
    return this.active
  }

  get queued(): number {
    return this.waiting.length
  }

  get idle(): boolean {
    return this.active === 0 && this.waiting.length === 0
  }

  /** A release function, called once when done; rejects with LimitFull or the signal's reason. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.active < this.max) {
      this.active++
      return Promise.resolve(this.releaser())
    }
    if (this.waiting.length >= this.maxQueue) return Promise.reject(new LimitFull(this.max, this.maxQueue))
    return new Promise((resolve, reject) => {
      const w = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve(this.releaser())
        },
        fail: reject,
      }
      const onAbort = (): void => {
        const i = this.waiting.indexOf(w)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', onAbort, {once: true})
      this.waiting.push(w)
    })
  }

  private releaser(): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const next = this.waiting.shift()
      // The slot passes straight to the next waiter: `active` stays as it is.
      if (next) next.grant()
      else this.active--
    }
  }
}

export class LimitFull extends Error {
  override name = 'LimitFull'
  constructor(readonly max: number, readonly maxQueue: number) {
    super(`${max} at once and ${maxQueue} waiting already`)
  }
}
