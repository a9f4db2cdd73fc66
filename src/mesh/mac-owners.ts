/**
 * Which router owns which pod MAC, gossiped on the "macs" channel, so the kernel fast path can
 * send each MAC straight to its owner's VXLAN endpoint.
 *
 * State: one record per owner, { owner, publicKey, version, macs } with `macs` sorted and unique,
 * signed by the owner's identity key. The record carries the owner's public key (the owner name
 * is its hash) so every receiver checks it alone, whatever topology it holds: acceptance does not
 * depend on arrival order, and merge stays a plain CRDT. Merge per owner: the higher version
 * wins; at equal versions the larger canonical encoding wins (a total order, so merge is
 * commutative, associative and idempotent). Only the owner writes its record; a record received
 * for ourselves never replaces ours.
 *
 * A MAC claimed by two owners (a pod that moved) belongs to the record with the higher version;
 * at equal versions to the smaller owner name. Every peer with the same state decides the same.
 *
 * A router claims at most `maxLocalMacs` (default 1,024) of its local MACs, well below the 4,096
 * a record may carry: one pod sending from thousands of source MACs cannot make peers refuse its
 * node's record. MACs over the cap are left out (the ones already claimed stay), counted
 * (`stats.localOverCap`) and logged once.
 *
 * Wire (msgpack, format 2): [2, [record, ...]], records ascending by owner, where
 *
 *   record    = [owner, publicKey, version, [mac, ...], signature]
 *   signature = the owner's XEdDSA signature (signing.ts) of
 *               signedBytes(MACS_LABEL, canonical [owner, publicKey, version, [mac, ...]])
 *
 * Limits: 4 MiB a message, 100,000 records, 4,096 MACs a record, versions ≤ 2^52 − 1. A message
 * that is not msgpack, not [2, [...]], over a limit or out of order is refused whole
 * (GossipDecodeError, nothing changes); a record that is malformed, unsigned, over the bound or
 * badly signed is refused by itself (counted by reason, logged once per sending peer and reason)
 * and the rest merges. Signatures are checked only for records that would replace what we hold.
 */
import { Unpackr } from 'msgpackr/unpack';
import type { Clock } from '../core/clock.js';
import { peerNameFromPublicKey } from '../core/ids.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { MAX_LOCAL_MACS } from '../core/mac.js';
import { Writer } from './canonical-msgpack.js';
import type { GossipData, Gossiper, PeerName } from './contracts.js';
import { RecordRefused, decodeOwnerRecords, encodeOwnerRecords, type RefusedOwnerRecord } from './owner-records-wire.js';
import { SIGNATURE_LEN, Verifier, signedBytes } from './signing.js';
import { MAX_LIVE_VERSION, PUBLIC_KEY_BYTES, isName, type RecordAuthor, type RecordSigner } from './topology-record.js';

export const MACS_CHANNEL = 'macs';
const FORMAT = 2;
export const MACS_LABEL = 'macs-record v2';
export const MAC_LIMITS = { maxMessageBytes: 4 * 1024 * 1024, maxRecords: 100_000, maxMacsPerRecord: 4096 };
const MACS_FRAME = { channel: MACS_CHANNEL, format: FORMAT, maxMessageBytes: MAC_LIMITS.maxMessageBytes, maxRecords: MAC_LIMITS.maxRecords, noun: 'record' };
/** Default cap on the MACs one router claims (the router's switch learns as many). */
export const DEFAULT_MAX_LOCAL_MACS = MAX_LOCAL_MACS;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export interface MacRecord {
  readonly owner: PeerName;
  readonly publicKey: Uint8Array;
  readonly version: number;
  readonly macs: readonly string[];
}

/** A record with its canonical bytes (signature included). */
export interface MacEntry {
  readonly record: MacRecord;
  readonly bytes: Uint8Array;
}

export type MacRefusal = 'malformed' | 'unsigned' | 'nameMismatch' | 'versionBound' | 'badSignature';

export type RefusedMacRecord = RefusedOwnerRecord<MacRefusal>;

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const writer = new Writer();
/** bin8 header + length + signature. */
const SIG_TAIL = 2 + SIGNATURE_LEN;

function writeBody(w: Writer, r: MacRecord, fields: number): void {
  w.at = 0;
  w.array(fields);
  w.str(r.owner);
  w.bin(r.publicKey);
  w.uint(r.version);
  w.array(r.macs.length);
  for (const m of r.macs) w.str(m);
}

/** The bytes the owner signs. */
export function macSignedBytes(r: MacRecord): Buffer {
  writeBody(writer, r, 4);
  return signedBytes(MACS_LABEL, writer.take());
}

function encodeSigned(r: MacRecord, signature: Uint8Array): Uint8Array {
  writeBody(writer, r, 5);
  writer.bin(signature);
  return writer.take();
}

/** Our record, signed (`author.signer` must hold the key `r.publicKey`). */
export function signMacRecord(r: MacRecord, author: { signer: RecordSigner }): MacEntry {
  return { record: r, bytes: encodeSigned(r, author.signer.sign(macSignedBytes(r))) };
}

/** Checks an entry's owner signature. */
export function verifyMacEntry(e: MacEntry, verifier: Verifier): boolean {
  const b = e.bytes;
  const body = Buffer.allocUnsafe(b.length - SIG_TAIL);
  body[0] = b[0]! - 1; // fixarray 5 → 4
  body.set(b.subarray(1, b.length - SIG_TAIL), 1);
  return verifier.verify(e.record.publicKey, signedBytes(MACS_LABEL, body), b.subarray(b.length - SIGNATURE_LEN));
}

/** Total order of two entries of one owner: version, then canonical bytes. */
function wins(a: MacEntry, b: MacEntry): boolean {
  if (a.record.version !== b.record.version) return a.record.version > b.record.version;
  return Buffer.compare(a.bytes, b.bytes) > 0;
}

function encodeEntries(entries: readonly MacEntry[]): Uint8Array {
  return encodeOwnerRecords(FORMAT, entries.map((e) => e.bytes));
}

function decodeRecord(raw: unknown, i: number): MacEntry {
  const no = (reason: MacRefusal, detail: string): never => {
    throw new RecordRefused(reason, `record ${i}: ${detail}`);
  };
  if (!Array.isArray(raw)) no('malformed', 'not an array');
  const f = raw as unknown[];
  if (f.length === 3 || f.length === 4) no('unsigned', `${f.length} fields and no signature`);
  if (f.length !== 5) no('malformed', `${f.length} fields, expected [owner, publicKey, version, macs, signature]`);
  const [owner, publicKey, version, macs, signature] = f;
  if (typeof owner !== 'string' || !isName(owner)) no('malformed', 'owner is not a peer name');
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_BYTES) no('malformed', `publicKey is not ${PUBLIC_KEY_BYTES} bytes`);
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version <= 0) no('malformed', 'version must be a positive integer');
  if ((version as number) > MAX_LIVE_VERSION) no('versionBound', `version ${String(version)} is above the bound ${MAX_LIVE_VERSION}`);
  if (!Array.isArray(macs) || macs.length > MAC_LIMITS.maxMacsPerRecord) no('malformed', `macs must be a list of at most ${MAC_LIMITS.maxMacsPerRecord}`);
  let last = '';
  for (const m of macs as unknown[]) {
    if (typeof m !== 'string' || !MAC.test(m)) no('malformed', `${JSON.stringify(m)} is not a lowercase MAC`);
    if ((m as string) <= last) no('malformed', 'macs not strictly ascending');
    last = m as string;
  }
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LEN) no('unsigned', `signature is not ${SIGNATURE_LEN} bytes`);
  if (peerNameFromPublicKey(publicKey as Uint8Array) !== owner) no('nameMismatch', 'owner is not the name of its public key');
  const record: MacRecord = { owner: owner as string, publicKey: Uint8Array.from(publicKey as Uint8Array), version: version as number, macs: macs as string[] };
  return { record, bytes: encodeSigned(record, signature as Uint8Array) };
}

/**
 * Decodes a message: its records (signatures not checked yet) and those refused by themselves.
 * Throws GossipDecodeError naming the first message-level problem.
 */
export function decodeMacMessage(data: Uint8Array): { entries: MacEntry[]; refused: RefusedMacRecord[] } {
  return decodeOwnerRecords<MacEntry, MacRefusal>(data, unpackr, MACS_FRAME, decodeRecord);
}

export class MacOwnersState implements GossipData {
  private readonly entries = new Map<PeerName, MacEntry>();

  /** A state from signed entries (trusted: `signMacRecord` or a verified decode). */
  static of(entries: Iterable<MacEntry>): MacOwnersState {
    const s = new MacOwnersState();
    for (const e of entries) {
      const cur = s.entries.get(e.record.owner);
      if (cur === undefined || wins(e, cur)) s.entries.set(e.record.owner, e);
    }
    return s;
  }

  /** Decodes a message and keeps the records whose signatures check out (throws GossipDecodeError for a malformed message). */
  static decode(data: Uint8Array, verifier = new Verifier()): MacOwnersState {
    return MacOwnersState.of(decodeMacMessage(data).entries.filter((e) => verifyMacEntry(e, verifier)));
  }

  get(owner: PeerName): MacRecord | undefined {
    return this.entries.get(owner)?.record;
  }

  /** @internal */
  entry(owner: PeerName): MacEntry | undefined {
    return this.entries.get(owner);
  }

  all(): MacRecord[] {
    return this.sortedEntries().map((e) => e.record);
  }

  encode(): Uint8Array {
    return encodeEntries(this.sortedEntries());
  }

  /** Encodes the entries except `owner`'s. */
  encodeWithout(owner: PeerName): Uint8Array {
    return encodeEntries(this.sortedEntries().filter((e) => e.record.owner !== owner));
  }

  /** Merges `other` in; returns what changed here (undefined: nothing). */
  merge(other: this): this | undefined {
    const changed: MacEntry[] = [];
    for (const e of other.entries.values()) {
      if (this.offer(e)) changed.push(e);
    }
    return changed.length === 0 ? undefined : (MacOwnersState.of(changed) as this);
  }

  /** Stores `e` when it wins over what we hold; returns whether it did. @internal */
  offer(e: MacEntry): boolean {
    const cur = this.entries.get(e.record.owner);
    if (cur !== undefined && !wins(e, cur)) return false;
    this.entries.set(e.record.owner, e);
    return true;
  }

  /** Whether `e` would replace what we hold. */
  wouldWin(e: MacEntry): boolean {
    const cur = this.entries.get(e.record.owner);
    return cur === undefined || wins(e, cur);
  }

  /** Sets an entry unconditionally (the owner's own). */
  put(e: MacEntry): void {
    this.entries.set(e.record.owner, e);
  }

  delete(owner: PeerName): boolean {
    return this.entries.delete(owner);
  }

  private sortedEntries(): MacEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.record.owner < b.record.owner ? -1 : 1));
  }
}

export interface MacOwnersComponents {
  clock: Clock;
  logger?: Logger;
  /** Signs our record with the identity key whose public key is `init.publicKey`. */
  signer: RecordSigner;
  verifier?: Verifier;
}

export interface MacOwnersInit {
  self: PeerName;
  publicKey: Uint8Array;
  version?: number;
  /** At most this many local MACs are claimed. Default 1,024. */
  maxLocalMacs?: number;
}

export interface MacOwnersStats {
  decodeErrors: number;
  /** Records refused by themselves, by reason (the rest of their message merged). */
  refused: Record<MacRefusal, number>;
  /** Local MACs left out of our claim at the last poll (over `maxLocalMacs`). */
  localOverCap: number;
}

/** The "macs" gossiper of one router. */
export class MacOwners implements Gossiper {
  readonly self: PeerName;
  readonly maxLocalMacs: number;
  private readonly state = new MacOwnersState();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly author: RecordAuthor;
  private readonly verifier: Verifier;
  private readonly changeListeners = new Set<() => void>();
  private readonly localListeners = new Set<(delta: Uint8Array) => void>();
  private readonly logged = new Set<string>();
  private byMac = new Map<string, PeerName>();
  /** Our own record is announced only once we know our MACs (a restarted router must not announce "none"). */
  private localKnown = false;
  private readonly refusals: Record<MacRefusal, number> = { malformed: 0, unsigned: 0, nameMismatch: 0, versionBound: 0, badSignature: 0 };
  private localOverCap = 0;
  decodeErrors = 0;

  constructor(components: MacOwnersComponents, init: MacOwnersInit) {
    this.clock = components.clock;
    this.log = components.logger ?? silentLogger;
    this.verifier = components.verifier ?? new Verifier();
    this.self = init.self;
    this.maxLocalMacs = init.maxLocalMacs ?? DEFAULT_MAX_LOCAL_MACS;
    this.author = { publicKey: Uint8Array.from(init.publicKey), signer: components.signer };
    this.state.put(this.sign(Math.max((init.version ?? 0) + 1, Math.floor(this.clock.wallNow())), []));
  }

  get stats(): MacOwnersStats {
    return { decodeErrors: this.decodeErrors, refused: { ...this.refusals }, localOverCap: this.localOverCap };
  }

  /**
   * Our local pod MACs (any order or case); announces them when they changed. At most
   * `maxLocalMacs` are claimed: those already claimed first, then the others in order.
   */
  setLocal(macs: Iterable<string>): boolean {
    const all = [...new Set([...macs].map((m) => m.toLowerCase()))].filter((m) => MAC.test(m)).sort();
    const cur = this.state.get(this.self)!;
    let list = all;
    if (all.length > this.maxLocalMacs) {
      const present = new Set(all);
      const kept = cur.macs.filter((m) => present.has(m)).slice(0, this.maxLocalMacs);
      const keptSet = new Set(kept);
      for (const m of all) {
        if (kept.length >= this.maxLocalMacs) break;
        if (!keptSet.has(m)) kept.push(m);
      }
      list = kept.sort();
      if (!this.logged.has('cap')) {
        this.logged.add('cap');
        this.log.warn('more local MACs than a router claims; the rest are not announced (logged once, counted in status)', { macs: all.length, cap: this.maxLocalMacs });
      }
    }
    this.localOverCap = all.length - list.length;
    const first = !this.localKnown;
    this.localKnown = true;
    if (!first && list.length === cur.macs.length && list.every((m, i) => m === cur.macs[i])) return false;
    const e = this.sign(Math.max(cur.version + 1, Math.floor(this.clock.wallNow())), list);
    this.state.put(e);
    this.changed();
    const delta = encodeEntries([e]);
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
    return this.localKnown ? this.state.encode() : this.state.encodeWithout(this.self);
  }

  /** Gossip from neighbour `from` (named in logs). Throws GossipDecodeError only for a malformed message. */
  onGossip(data: Uint8Array, from?: PeerName): Uint8Array | undefined {
    let msg: ReturnType<typeof decodeMacMessage>;
    try {
      msg = decodeMacMessage(data);
    } catch (err) {
      this.decodeErrors++;
      throw err;
    }
    for (const r of msg.refused) this.refuse(from, r.owner, r.reason, r.detail);
    const changed: MacEntry[] = [];
    for (const e of msg.entries) {
      if (e.record.owner === this.self) continue; // nobody else writes our record
      if (!this.state.wouldWin(e)) continue;
      if (!verifyMacEntry(e, this.verifier)) {
        this.refuse(from, e.record.owner, 'badSignature', `record of ${e.record.owner} version ${e.record.version}: the signature does not check out`);
        continue;
      }
      this.state.put(e);
      changed.push(e);
    }
    if (changed.length === 0) return undefined;
    this.changed();
    return encodeEntries(changed.sort((a, b) => (a.record.owner < b.record.owner ? -1 : 1)));
  }

  onUnicast(from: PeerName, data: Uint8Array): void {
    this.onGossip(data, from);
  }

  onBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined {
    return this.onGossip(data, source);
  }

  private sign(version: number, macs: readonly string[]): MacEntry {
    return signMacRecord({ owner: this.self, publicKey: this.author.publicKey, version, macs }, this.author);
  }

  private refuse(from: PeerName | undefined, owner: PeerName | undefined, reason: MacRefusal, detail: string): void {
    this.refusals[reason]++;
    const key = `${from ?? '-'} ${reason}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log.warn('MAC record refused (logged once per peer and reason, then counted)', { peer: from, owner, reason, detail });
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
