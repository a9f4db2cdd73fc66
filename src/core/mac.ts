/**
 * MAC addresses as 48-bit numbers (exact in a double), read straight from frame bytes so the hot
 * path never builds strings.
 */
const TWO32 = 4294967296;

/**
 * The most local (pod) MACs one router learns and claims: the router's switch drops frames from
 * further source MACs, and the "macs" gossip announces at most this many (peers accept 4,096 a
 * record). A node with more pods than this needs a higher value.
 */
export const MAX_LOCAL_MACS = 1024;

/** Reads the 6 bytes at `off` as a number. */
export function readMac(buf: Uint8Array, off: number): number {
  return (
    ((buf[off]! << 8) | buf[off + 1]!) * TWO32 +
    (((buf[off + 2]! << 24) | (buf[off + 3]! << 16) | (buf[off + 4]! << 8) | buf[off + 5]!) >>> 0)
  );
}

export function writeMac(buf: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / TWO32);
  const lo = mac >>> 0;
  buf[off] = (hi >>> 8) & 0xff;
  buf[off + 1] = hi & 0xff;
  buf[off + 2] = lo >>> 24;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = (lo >>> 8) & 0xff;
  buf[off + 5] = lo & 0xff;
}

/** True for broadcast and multicast destinations (I/G bit of the first octet). */
export function isGroupMac(buf: Uint8Array, off: number): boolean {
  return (buf[off]! & 1) === 1;
}

/** Link-layer address bytes as `ip` prints them: lower-case hex pairs joined by ':'. */
export function formatLinkAddress(bytes: Uint8Array): string {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export function macToString(mac: number): string {
  const b = new Uint8Array(6);
  writeMac(b, 0, mac);
  return formatLinkAddress(b);
}

export function parseMac(text: string): number | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (m === null) return undefined;
  const b = new Uint8Array(6);
  for (let i = 0; i < 6; i++) b[i] = parseInt(m[i + 1]!, 16);
  return readMac(b, 0);
}
