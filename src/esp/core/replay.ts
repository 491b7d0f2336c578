/**
 * The anti-replay window of an inbound SA (RFC 4303 §3.4.3), as a bitmap of 32-bit words slid a
 * word at a time (RFC 6479): a sequence number is accepted when it is above the highest accepted,
 * or less than `size` below it and not yet seen. check() comes before the ICV and update() only
 * after it verified, so a forged packet never moves the window. native/esp.c implements the same
 * decisions with 64-bit words; test/esp/io/engine.test.ts holds the two to each other.
 */
export const REPLAY_WINDOW = 1024

export class ReplayWindow {
  /** The highest sequence number accepted so far (0: none). */
  top = 0
  private readonly words: Uint32Array

  constructor(readonly size = REPLAY_WINDOW) {
    if (size % 32 || size < 32) throw new RangeError('the window size must be a multiple of 32')
    // One spare word: sliding clears whole words, and the window's oldest bits must survive it.
    this.words = new Uint32Array(size / 32 + 1)
  }

  check(seq: number): boolean {
    if (seq === 0) return false // senders start at 1
    if (seq > this.top) return true
    if (this.top - seq >= this.size) return false
    return (this.words[Math.floor(seq / 32) % this.words.length] & (1 << seq % 32)) === 0
  }

  update(seq: number): void {
    if (seq > this.top) {
      const from = Math.floor(this.top / 32)
      const n = Math.min(Math.floor(seq / 32) - from, this.words.length)
      for (let i = 1; i <= n; i++) this.words[(from + i) % this.words.length] = 0
      this.top = seq
    }
    this.words[Math.floor(seq / 32) % this.words.length] |= 1 << seq % 32
  }

  /** check() then update(): for callers that verified the packet already. */
  accept(seq: number): boolean {
    if (!this.check(seq)) return false
    this.update(seq)
    return true
  }
}
