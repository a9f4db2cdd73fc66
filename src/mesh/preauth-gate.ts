/**
 * Admission of inbound mesh connections that have not finished their handshake (pre-auth): at most
 * `perAddress` per source address and `total` in all. Anyone on the underlay can open TCP
 * connections without the secret; members finish a handshake in milliseconds, so a router never
 * needs many of these at once.
 *
 *   new connection from A ─ A holds perAddress already? ─yes─ refuse it at once
 *                          └ total reached? ─yes─ evict the oldest of the address holding the most
 *                          └ admit; `release` when it is established or closed
 *
 * A source address is the IPv4 address (IPv4-mapped IPv6 counts as IPv4) or the IPv6 /64: a host
 * gets a whole /64 as easily as one address. Eviction takes from the busiest address, so a flood
 * from a few addresses never pushes out a newcomer from another; a flood from more addresses than
 * `total / perAddress` competes with newcomers, which then need a few milliseconds of luck rather
 * than a free slot (a handshake is that short). No timers here: the connection's own handshake
 * timeout ends what is admitted.
 */

export interface PreauthGateInit {
  perAddress: number;
  total: number;
}

/** The key an inbound connection's source address is limited by. */
export function sourceKey(address: string): string {
  const a = address.toLowerCase();
  if (a.startsWith('::ffff:') && a.includes('.')) return a.slice(7);
  if (!a.includes(':')) return a;
  return `${ipv6Prefix64(a)}::/64`;
}

/** The first four 16-bit groups of an IPv6 address, normalised ("2001:2:0:7"). */
function ipv6Prefix64(a: string): string {
  const zone = a.indexOf('%');
  const text = zone >= 0 ? a.slice(0, zone) : a;
  const [head = '', tail] = text.split('::', 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  // A trailing dotted quad stands for two groups; it only ever lies past the /64.
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups];
  return groups.slice(0, 4).map((g) => (g.includes('.') ? '0' : (parseInt(g, 16) || 0).toString(16))).join(':');
}

export class PreauthGate<T> {
  private readonly perAddress: number;
  private readonly total: number;
  /** Admitted connections per source key, oldest first. */
  private readonly bySource = new Map<string, T[]>();
  private readonly sourceOf = new Map<T, string>();

  constructor(init: PreauthGateInit) {
    this.perAddress = Math.max(1, init.perAddress);
    this.total = Math.max(1, init.total);
  }

  get size(): number {
    return this.sourceOf.size;
  }

  /** Whether a new connection from `address` may be admitted (its source is under `perAddress`). */
  hasRoom(address: string): boolean {
    return (this.bySource.get(sourceKey(address))?.length ?? 0) < this.perAddress;
  }

  /**
   * Admits a new connection from `address` (call `hasRoom` first). When the gate is full, returns
   * the connection to close to make room (already released), else undefined.
   */
  admit(conn: T, address: string): T | undefined {
    const key = sourceKey(address);
    let evict: T | undefined;
    if (this.sourceOf.size >= this.total) {
      evict = this.busiestOldest();
      if (evict !== undefined) this.release(evict);
    }
    const l = this.bySource.get(key);
    if (l === undefined) this.bySource.set(key, [conn]);
    else l.push(conn);
    this.sourceOf.set(conn, key);
    return evict;
  }

  /** The connection finished its handshake or closed (unknown connections are ignored). */
  release(conn: T): void {
    const key = this.sourceOf.get(conn);
    if (key === undefined) return;
    this.sourceOf.delete(conn);
    const list = this.bySource.get(key)!;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.bySource.delete(key);
  }

  /** The oldest connection of the source holding the most; ties go to the earliest-seen source. */
  private busiestOldest(): T | undefined {
    let best: T[] | undefined;
    for (const list of this.bySource.values()) if (best === undefined || list.length > best.length) best = list;
    return best?.[0];
  }
}
