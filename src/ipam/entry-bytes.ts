/**
 * A ring's entries encoded back to back (what follows the entries' array header in the ring's
 * encoding), kept in step with the entries: a change rewrites the bytes of the entry it touches
 * and moves those after it, so encoding a large ring after a small change copies one block instead
 * of writing every entry again. Untracked changes `reset` it; it is rebuilt when next read.
 *
 *   buf     [entry 0][entry 1]...[entry n-1][spare]
 *   starts  where each entry begins (undefined: to rebuild)
 */
import { encodeEntry, entrySize, writeEntries, writeEntry } from './ring-codec.js';
import type { RingEntry } from './ring-records.js';

const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

export class EntryBytes {
  private readonly width: number;
  private buf: Uint8Array;
  private view: DataView;
  private length = 0;
  private starts: number[] | undefined = undefined;

  /** `width`: bytes of an offset in the ring's space. */
  constructor(width: number) {
    this.width = width;
    this.buf = EMPTY;
    this.view = EMPTY_VIEW;
  }

  /** The entries changed in a way not tracked here. */
  reset(): void {
    this.starts = undefined;
  }

  /** `e` replaced entry i, or (`insert`) was inserted at i, before the entry that was there. */
  set(i: number, e: RingEntry, insert: boolean): void {
    const starts = this.starts;
    if (starts === undefined) return;
    const at = starts[i] ?? this.length;
    const old = insert ? 0 : (starts[i + 1] ?? this.length) - at;
    const fits = entrySize(e, this.width);
    const packed = fits > 0 ? undefined : encodeEntry(e, this.width);
    const size = packed?.length ?? fits;
    const delta = size - old;
    if (delta !== 0) {
      this.reserve(this.length + delta);
      this.buf.copyWithin(at + size, at + old, this.length);
      this.length += delta;
      for (let j = insert ? i : i + 1; j < starts.length; j++) starts[j]! += delta;
    }
    if (insert) starts.splice(i, 0, at);
    if (packed === undefined) writeEntry(this.buf, this.view, at, e, this.width);
    else this.buf.set(packed, at);
  }

  /** The encodings of `entries` (which must be what the changes told here led to); valid until the next change. */
  of(entries: readonly RingEntry[]): Uint8Array {
    if (this.starts === undefined) {
      const starts: number[] = [];
      const b = writeEntries(entries, this.width, starts, 256);
      this.buf = new Uint8Array(b.buffer, b.byteOffset, b.length + 256);
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      this.length = b.length;
      this.starts = starts;
    }
    return this.buf.subarray(0, this.length);
  }

  private reserve(n: number): void {
    if (n <= this.buf.length) return;
    const next = new Uint8Array(n + (n >> 2) + 256);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}
