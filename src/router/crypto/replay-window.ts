/**
 * Anti-replay window over message counters (RFC 6479 style): accepts each counter once, and
 * counters up to WINDOW_BITS below the highest seen. `check` is side-effect free so a packet can
 * be authenticated before it is marked; `mark` records it.
 */
export const WINDOW_BITS = 4096;
const WORDS = WINDOW_BITS / 32;

export class ReplayWindow {
  private readonly bits = new Uint32Array(WORDS);
  private top = -1;

  /** True when `counter` has not been seen and is not too old. */
  check(counter: number): boolean {
    if (counter > this.top) return true;
    if (this.top - counter >= WINDOW_BITS - 32) return false;
    const bit = counter % WINDOW_BITS;
    return (this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0;
  }

  /** Records `counter` (call only after `check` returned true and the message authenticated). */
  mark(counter: number): void {
    if (counter > this.top) {
      const topWord = this.top < 0 ? -1 : Math.floor(this.top / 32);
      const newWord = Math.floor(counter / 32);
      const clear = Math.min(newWord - topWord, WORDS);
      for (let i = 1; i <= clear; i++) this.bits[(((newWord - clear + i) % WORDS) + WORDS) % WORDS] = 0;
      this.top = counter;
    }
    const bit = counter % WINDOW_BITS;
    this.bits[bit >>> 5]! |= 1 << (bit & 31);
  }

  get highest(): number {
    return this.top;
  }
}
