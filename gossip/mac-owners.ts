/**
 * Which router owns which pod MAC, gossiped on the "macs" channel, so the kernel fast path can
 * send each MAC straight to its owner's VXLAN endpoint (issue 5; not wired into the router yet).
 *
 * State: one record per owner, { owner, version, macs } with `macs` sorted and unique. Merge per
 * owner: the higher version wins; at equal versions the larger encoding wins (a total order, so
 * merge is commutative, associative and idempotent). Only the owner writes its record; a record
 * received for ourselves never replaces ours.
 *
 * A MAC claimed by two owners (a pod that moved) belongs to the record with the higher version;
 * at equal versions to the smaller owner name. Every peer with the same state decides the same.
 *
 * Wire (msgpack): [1, [[owner, version, [mac, ...]], ...]], records ascending by owner. Limits:
 * 4 MiB a message, 100,000 records, 4,096 MACs a record. Anything else is refused whole
 * (GossipDecodeError) and changes nothing.
 */
import { Packr } from 'msgpackr';
import type { Clock } from '../src/core/clock.js';
import { isPeerName } from '../src/core/ids.js';
import type { GossipData, Gossiper, PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';

export const MACS_CHANNEL = 'macs';
const FORMAT = 1;
export const MAC_LIMITS = { maxMessageBytes: 4 * 1024 * 1024, maxRecords: 100_000, maxMacsPerRecord: 4096 };
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export interface MacRecord {
  readonly owner: PeerName;
  readonly version: number;
  readonly macs: readonly string[];
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

function encodeRecords(records: readonly MacRecord[]): Uint8Array {
  return packr.pack([FORMAT, records.map((r) => [r.owner, r.version, r.macs])]);
}

function recordBytes(r: MacRecord): Buffer {
  return packr.pack([r.owner, r.version, r.macs]);
}

/** Total order of two records of one owner: version, then encoding. */
function wins(a: MacRecord, b: MacRecord): boolean {
  if (a.version !== b.version) return a.version > b.version;
  return Buffer.compare(recordBytes(a), recordBytes(b)) > 0;
}

function fail(reason: string, cause?: unknown): never {
  throw new GossipDecodeError(MACS_CHANNEL, reason, cause === undefined ? undefined : { cause });
}

export class MacOwnersState implements GossipData {
  private readonly records = new Map<PeerName, MacRecord>();

  static of(records: Iterable<MacRecord>): MacOwnersState {
    const s = new MacOwnersState();
    for (const r of records) {
      const cur = s.records.get(r.owner);
      if (cur === undefined || wins(r, cur)) s.records.set(r.owner, r);
    }
    return s;
  }

  /** Decodes and validates a whole message; throws GossipDecodeError naming the first problem. */
  static decode(data: Uint8Array): MacOwnersState {
    if (data.length > MAC_LIMITS.maxMessageBytes) fail(`message of ${data.length} bytes exceeds ${MAC_LIMITS.maxMessageBytes}`);
    let v: unknown;
    try {
      v = packr.unpack(data);
    } catch (err) {
      fail('not msgpack', err);
    }
    if (!Array.isArray(v) || v.length !== 2 || v[0] !== FORMAT || !Array.isArray(v[1])) fail('not a [1, [records]] message');
    const raw = v[1] as unknown[];
    if (raw.length > MAC_LIMITS.maxRecords) fail(`${raw.length} records exceed ${MAC_LIMITS.maxRecords}`);
    const out: MacRecord[] = [];
    let prev = '';
    raw.forEach((r, i) => {
      if (!Array.isArray(r) || r.length !== 3) fail(`record ${i} is not [owner, version, macs]`);
      const [owner, version, macs] = r as unknown[];
      if (typeof owner !== 'string' || !isPeerName(owner)) fail(`record ${i}: owner is not a peer name`);
      if (owner <= prev) fail(`record ${i}: owners not strictly ascending`);
      prev = owner;
      if (typeof version !== 'number' || !Number.isSafeInteger(version) || version <= 0) fail(`record ${i}: version must be a positive integer`);
      if (!Array.isArray(macs) || macs.length > MAC_LIMITS.maxMacsPerRecord) fail(`record ${i}: macs must be a list of at most ${MAC_LIMITS.maxMacsPerRecord}`);
      let last = '';
      for (const m of macs as unknown[]) {
        if (typeof m !== 'string' || !MAC.test(m)) fail(`record ${i}: ${JSON.stringify(m)} is not a lowercase MAC`);
        if (m <= last) fail(`record ${i}: macs not strictly ascending`);
        last = m;
      }
      out.push({ owner, version, macs: macs as string[] });
    });
    return MacOwnersState.of(out);
  }

  get(owner: PeerName): MacRecord | undefined {
    return this.records.get(owner);
  }

  all(): MacRecord[] {
    return [...this.records.values()].sort((a, b) => (a.owner < b.owner ? -1 : 1));
  }

  encode(): Uint8Array {
    return encodeRecords(this.all());
  }

  /** Merges `other` in; returns what changed here (undefined: nothing). */
  merge(other: this): this | undefined {
    const changed: MacRecord[] = [];
    for (const r of other.records.values()) {
      const cur = this.records.get(r.owner);
      if (cur === undefined || wins(r, cur)) {
        this.records.set(r.owner, r);
        changed.push(r);
      }
    }
    return changed.length === 0 ? undefined : (MacOwnersState.of(changed) as this);
  }

  /** Sets a record unconditionally (the owner's own, or a removal). */
  put(r: MacRecord): void {
    this.records.set(r.owner, r);
  }

  delete(owner: PeerName): boolean {
    return this.records.delete(owner);
  }
}

export interface MacOwnersComponents {
  clock: Clock;
}

/** The "macs" gossiper of one router. */
export class MacOwners implements Gossiper {
  readonly self: PeerName;
  private readonly state = new MacOwnersState();
  private readonly clock: Clock;
  private readonly changeListeners = new Set<() => void>();
  private readonly localListeners = new Set<(delta: Uint8Array) => void>();
  private byMac = new Map<string, PeerName>();
  /** Our own record is announced only once we know our MACs (a restarted router must not announce "none"). */
  private localKnown = false;
  decodeErrors = 0;

  constructor(components: MacOwnersComponents, init: { self: PeerName; version?: number }) {
    this.clock = components.clock;
    this.self = init.self;
    this.state.put({ owner: init.self, version: Math.max((init.version ?? 0) + 1, Math.floor(this.clock.wallNow())), macs: [] });
  }

  /** Our local pod MACs (any order or case); announces them when they changed. */
  setLocal(macs: Iterable<string>): boolean {
    const list = [...new Set([...macs].map((m) => m.toLowerCase()))].filter((m) => MAC.test(m)).sort();
    const cur = this.state.get(this.self)!;
    const first = !this.localKnown;
    this.localKnown = true;
    if (!first && list.length === cur.macs.length && list.every((m, i) => m === cur.macs[i])) return false;
    const rec: MacRecord = { owner: this.self, version: Math.max(cur.version + 1, Math.floor(this.clock.wallNow())), macs: list };
    this.state.put(rec);
    this.changed();
    const delta = encodeRecords([rec]);
    for (const l of this.localListeners) l(delta);
    return true;
  }

  /** The owner of a MAC (see the file header for conflicts); undefined when nobody claims it. */
  owner(mac: string): PeerName | undefined {
    return this.byMac.get(mac.toLowerCase());
  }

  macsOf(owner: PeerName): readonly string[] {
    return this.state.get(owner)?.macs ?? [];
  }

  /** Drops a peer that left the topology (its MACs are no longer anyone's). */
  removeOwner(owner: PeerName): void {
    if (owner !== this.self && this.state.delete(owner)) this.changed();
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  gossip(): Uint8Array {
    if (this.localKnown) return this.state.encode();
    return MacOwnersState.of(this.state.all().filter((r) => r.owner !== this.self)).encode();
  }

  onGossip(data: Uint8Array): Uint8Array | undefined {
    let incoming: MacOwnersState;
    try {
      incoming = MacOwnersState.decode(data);
    } catch (err) {
      this.decodeErrors++;
      throw err;
    }
    const mine = incoming.get(this.self);
    if (mine !== undefined) incoming.delete(this.self); // nobody else writes our record
    const delta = this.state.merge(incoming);
    if (delta === undefined) return undefined;
    this.changed();
    return delta.encode();
  }

  onUnicast(_from: PeerName, data: Uint8Array): void {
    this.onGossip(data);
  }

  onBroadcast(_source: PeerName, data: Uint8Array): Uint8Array | undefined {
    return this.onGossip(data);
  }

  private changed(): void {
    const best = new Map<string, MacRecord>();
    for (const r of this.state.all()) {
      for (const m of r.macs) {
        const cur = best.get(m);
        if (cur === undefined || r.version > cur.version || (r.version === cur.version && r.owner < cur.owner)) best.set(m, r);
      }
    }
    this.byMac = new Map([...best].map(([m, r]) => [m, r.owner]));
    for (const l of this.changeListeners) l();
  }
}
