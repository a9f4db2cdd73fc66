/**
 * Canonical msgpack for gossip records: a writer that always picks the shortest encoding (so
 * equal values have equal bytes on every peer) and a walker that finds value boundaries without
 * building values. Used by the topology codec; nothing here knows about topology.
 */
/** Writes canonical msgpack into one growable scratch buffer (the module's only one). */
export class Writer {
  buf = Buffer.allocUnsafe(4096);
  at = 0;

  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  header(n: number, fix: number, fixMax: number, c8: number, c16: number, c32: number): void {
    this.room(5);
    const b = this.buf;
    if (n <= fixMax) b[this.at++] = fix | n;
    else if (c8 !== 0 && n < 0x100) {
      b[this.at++] = c8;
      b[this.at++] = n;
    } else if (n < 0x10000) {
      b[this.at++] = c16;
      b.writeUInt16BE(n, this.at);
      this.at += 2;
    } else {
      b[this.at++] = c32;
      b.writeUInt32BE(n, this.at);
      this.at += 4;
    }
  }

  array(n: number): void {
    this.header(n, 0x90, 15, 0, 0xdc, 0xdd);
  }

  byte(v: number): void {
    this.room(1);
    this.buf[this.at++] = v;
  }

  str(s: string): void {
    // ASCII (names, endpoints) byte by byte; anything else through the UTF-8 encoder.
    const len = s.length;
    let ascii = len < 0x100;
    for (let i = 0; ascii && i < len; i++) ascii = s.charCodeAt(i) < 0x80;
    if (ascii) {
      this.room(2 + len);
      const b = this.buf;
      let at = this.at;
      if (len < 32) b[at++] = 0xa0 | len;
      else {
        b[at++] = 0xd9;
        b[at++] = len;
      }
      for (let i = 0; i < len; i++) b[at++] = s.charCodeAt(i);
      this.at = at;
      return;
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.header(n, 0xa0, 31, 0xd9, 0xda, 0xdb);
    this.room(n);
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  bin(v: Uint8Array): void {
    this.room(2 + v.length);
    this.buf[this.at++] = 0xc4;
    this.buf[this.at++] = v.length;
    this.buf.set(v, this.at);
    this.at += v.length;
  }

  uint(v: number): void {
    this.room(9);
    const b = this.buf;
    if (v < 0x80) b[this.at++] = v;
    else if (v < 0x100) {
      b[this.at++] = 0xcc;
      b[this.at++] = v;
    } else if (v < 0x10000) {
      b[this.at++] = 0xcd;
      b.writeUInt16BE(v, this.at);
      this.at += 2;
    } else if (v < 0x100000000) {
      b[this.at++] = 0xce;
      b.writeUInt32BE(v, this.at);
      this.at += 4;
    } else {
      b[this.at++] = 0xcf;
      b.writeUInt32BE(Math.floor(v / 0x100000000), this.at);
      b.writeUInt32BE(v >>> 0, this.at + 4);
      this.at += 8;
    }
  }

  /** A copy of what was written (small copies share Node's pooled slabs). */
  take(): Uint8Array {
    const out = Buffer.allocUnsafe(this.at);
    this.buf.copy(out, 0, 0, this.at);
    return out;
  }
}

export function arrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >>> 8, n & 0xff);
  return Uint8Array.of(0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** Count and first element of the array at `at`, or undefined when it is not an array header. */
export function containerAt(b: Uint8Array, at: number): { count: number; next: number } | undefined {
  const t = b[at];
  if (t === undefined) return undefined;
  if (t >= 0x90 && t <= 0x9f) return { count: t & 0x0f, next: at + 1 };
  if (t === 0xdc && at + 3 <= b.length) return { count: (b[at + 1]! << 8) | b[at + 2]!, next: at + 3 };
  if (t === 0xdd && at + 5 <= b.length) return { count: be32(b, at + 1), next: at + 5 };
  return undefined;
}

export function be32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

const MAX_DEPTH = 8;

/** Offset just past the msgpack value at `at`; -1 when truncated, invalid or nested too deep. */
export function skip(b: Uint8Array, at: number, depth: number): number {
  const t = b[at];
  if (t === undefined || depth > MAX_DEPTH) return -1;
  if (t <= 0x7f || t >= 0xe0) return at + 1; // fixint
  if (t <= 0x8f) return skipMany(b, at + 1, (t & 0x0f) * 2, depth); // fixmap
  if (t <= 0x9f) return skipMany(b, at + 1, t & 0x0f, depth); // fixarray
  if (t <= 0xbf) return within(b, at + 1 + (t & 0x1f)); // fixstr
  const left = b.length - at;
  switch (t) {
    case 0xc0: // nil, false, true
    case 0xc2:
    case 0xc3:
      return at + 1;
    case 0xc4: // bin8, str8
    case 0xd9:
      return left < 2 ? -1 : within(b, at + 2 + b[at + 1]!);
    case 0xc5: // bin16, str16
    case 0xda:
      return left < 3 ? -1 : within(b, at + 3 + ((b[at + 1]! << 8) | b[at + 2]!));
    case 0xc6: // bin32, str32
    case 0xdb:
      return left < 5 ? -1 : within(b, at + 5 + be32(b, at + 1));
    case 0xc7: // ext8/16/32
      return left < 2 ? -1 : within(b, at + 3 + b[at + 1]!);
    case 0xc8:
      return left < 3 ? -1 : within(b, at + 4 + ((b[at + 1]! << 8) | b[at + 2]!));
    case 0xc9:
      return left < 5 ? -1 : within(b, at + 6 + be32(b, at + 1));
    case 0xcc: // 1-byte numbers
    case 0xd0:
      return within(b, at + 2);
    case 0xcd:
    case 0xd1:
      return within(b, at + 3);
    case 0xca:
    case 0xce:
    case 0xd2:
      return within(b, at + 5);
    case 0xcb:
    case 0xcf:
    case 0xd3:
      return within(b, at + 9);
    case 0xd4: // fixext 1, 2, 4, 8, 16
      return within(b, at + 3);
    case 0xd5:
      return within(b, at + 4);
    case 0xd6:
      return within(b, at + 6);
    case 0xd7:
      return within(b, at + 10);
    case 0xd8:
      return within(b, at + 18);
    case 0xdc: // array16/32, map16/32
      return left < 3 ? -1 : skipMany(b, at + 3, (b[at + 1]! << 8) | b[at + 2]!, depth);
    case 0xdd:
      return left < 5 ? -1 : skipMany(b, at + 5, be32(b, at + 1), depth);
    case 0xde:
      return left < 3 ? -1 : skipMany(b, at + 3, ((b[at + 1]! << 8) | b[at + 2]!) * 2, depth);
    case 0xdf:
      return left < 5 ? -1 : skipMany(b, at + 5, be32(b, at + 1) * 2, depth);
    default: // 0xc1: never used
      return -1;
  }
}

function skipMany(b: Uint8Array, at: number, values: number, depth: number): number {
  if (values > b.length - at) return -1; // each value takes at least a byte
  let p = at;
  for (let i = 0; i < values && p >= 0; i++) p = skip(b, p, depth + 1);
  return p;
}

function within(b: Uint8Array, end: number): number {
  return end <= b.length ? end : -1;
}
