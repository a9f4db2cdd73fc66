/**
 * The blocklist: the signed revocation entries (revocation.ts) a router knows, gossiped on the
 * "blocklist" channel and merged as a grow-only set (one entry per peer; of two for one peer the
 * earlier one stays, ties by signature bytes, so every router ends with the same set).
 *
 * Wire (msgpack): [1, [[peer, at, reason, sig], ...]], at most MAX_ENTRIES entries.
 *
 * Every entry is checked against the revocation public key before it is taken: one with a bad
 * signature, or any entry when this router has no key (`--revocation-pubkey`), is dropped and
 * counted (`refused`); a malformed message is refused whole (`GossipDecodeError`, counted by the
 * channel) and changes nothing. Nothing from the network throws anywhere else.
 */
import type { KeyObject } from 'node:crypto';
import { Packr } from 'msgpackr/pack';
import type { Gossiper, PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';
import { entryFieldsProblem, verifyRevocation, type RevocationEntry } from './revocation.js';

export const BLOCKLIST_CHANNEL = 'blocklist';
/**
 * The lowest mesh protocol a neighbour must speak to be sent the blocklist (older ones would count
 * it as an unknown channel). Protocol 3 is the one that enforces it.
 */
export const BLOCKLIST_MIN_PROTOCOL = 3;
export const MAX_ENTRIES = 4096;
const FORMAT = 1;

const packr = new Packr({ useRecords: false, mapsAsObjects: false });

export interface BlocklistComponents {
  /** The revocation public key; undefined: every entry is refused (`noKey`). */
  publicKey: KeyObject | undefined;
  /** Entries new to this router (from gossip or `add`), after they are in the set. */
  onRevoked?: (entries: readonly RevocationEntry[]) => void;
}

/** Why entries were dropped. */
export interface BlocklistRefusals {
  badSignature: number;
  /**
   * Entries of a gossip message left unchecked after one of its entries failed its signature:
   * members relay only entries they verified, so a message with a forged entry comes from a faulty
   * or hostile neighbour, and checking the rest (up to MAX_ENTRIES Ed25519 verifications each)
   * would let it spend this router's CPU at will.
   */
  unchecked: number;
  noKey: number;
  malformed: number;
  full: number;
}

/** Which of two entries for one peer stays (both routers of a merge pick the same). */
function earlier(a: RevocationEntry, b: RevocationEntry): RevocationEntry {
  if (a.at !== b.at) return a.at < b.at ? a : b;
  return Buffer.compare(Buffer.from(a.sig), Buffer.from(b.sig)) <= 0 ? a : b;
}

export function encodeBlocklist(entries: Iterable<RevocationEntry>): Uint8Array {
  const list = [...entries].map((e) => [e.peer, e.at, e.reason, Buffer.from(e.sig)]);
  return packr.pack([FORMAT, list]);
}

/** Entries from a message; throws GossipDecodeError when the message is malformed. Signatures are not checked. */
export function decodeBlocklist(data: Uint8Array): RevocationEntry[] {
  let v: unknown;
  try {
    v = packr.unpack(data);
  } catch (err) {
    throw new GossipDecodeError(BLOCKLIST_CHANNEL, 'not msgpack', { cause: err });
  }
  if (!Array.isArray(v) || v.length !== 2 || v[0] !== FORMAT || !Array.isArray(v[1])) throw new GossipDecodeError(BLOCKLIST_CHANNEL, `not [${FORMAT}, entries]`);
  const raw = v[1] as unknown[];
  if (raw.length > MAX_ENTRIES) throw new GossipDecodeError(BLOCKLIST_CHANNEL, `${raw.length} entries (at most ${MAX_ENTRIES})`);
  return raw.map((r, i) => {
    if (!Array.isArray(r) || r.length !== 4) throw new GossipDecodeError(BLOCKLIST_CHANNEL, `entry ${i} is not [peer, at, reason, sig]`);
    const [peer, at, reason, sig] = r as unknown[];
    const problem = entryFieldsProblem(peer, at, reason);
    if (problem !== undefined) throw new GossipDecodeError(BLOCKLIST_CHANNEL, `entry ${i}: ${problem}`);
    if (!(sig instanceof Uint8Array) || sig.length !== 64) throw new GossipDecodeError(BLOCKLIST_CHANNEL, `entry ${i}: sig is not 64 bytes`);
    return { peer: peer as string, at: at as number, reason: reason as string, sig: Buffer.from(sig) };
  });
}

export class Blocklist implements Gossiper {
  readonly refused: BlocklistRefusals = { badSignature: 0, unchecked: 0, noKey: 0, malformed: 0, full: 0 };
  private readonly components: BlocklistComponents;
  private readonly entries = new Map<PeerName, RevocationEntry>();

  constructor(components: BlocklistComponents) {
    this.components = components;
  }

  get hasKey(): boolean {
    return this.components.publicKey !== undefined;
  }

  isRevoked(peer: PeerName): boolean {
    return this.entries.has(peer);
  }

  get(peer: PeerName): RevocationEntry | undefined {
    return this.entries.get(peer);
  }

  list(): RevocationEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Merges `entries`: checks each (counted in `refused` when dropped), keeps the earlier entry of
   * a peer, and returns those that changed the set (`onRevoked` hears those that are new peers).
   * With `fromNeighbour`, the first entry whose signature fails ends the checking: the rest of the
   * message is counted in `unchecked` and dropped (see BlocklistRefusals.unchecked).
   */
  merge(entries: readonly RevocationEntry[], notify = true, fromNeighbour = false): RevocationEntry[] {
    const changed: RevocationEntry[] = [];
    const fresh: RevocationEntry[] = [];
    let forged = false;
    for (const e of entries) {
      const key = this.components.publicKey;
      if (key === undefined) {
        this.refused.noKey++;
        continue;
      }
      const have = this.entries.get(e.peer);
      if (have !== undefined && earlier(have, e) === have) continue;
      if (have === undefined && this.entries.size >= MAX_ENTRIES) {
        this.refused.full++;
        continue;
      }
      if (forged) {
        this.refused.unchecked++;
        continue;
      }
      if (!verifyRevocation(key, e)) {
        this.refused.badSignature++;
        forged = fromNeighbour;
        continue;
      }
      this.entries.set(e.peer, e);
      changed.push(e);
      if (have === undefined) fresh.push(e);
    }
    if (notify && fresh.length > 0) this.components.onRevoked?.(fresh);
    return changed;
  }

  /** Refused entries in all. */
  get refusedTotal(): number {
    const r = this.refused;
    return r.badSignature + r.unchecked + r.noKey + r.malformed + r.full;
  }

  // ------------------------------------------------------------------ Gossiper

  gossip(): Uint8Array | undefined {
    return this.entries.size === 0 ? undefined : encodeBlocklist(this.list());
  }

  onGossip(data: Uint8Array): Uint8Array | undefined {
    let entries: RevocationEntry[];
    try {
      entries = decodeBlocklist(data);
    } catch (err) {
      this.refused.malformed++;
      throw err;
    }
    const changed = this.merge(entries, true, true);
    return changed.length === 0 ? undefined : encodeBlocklist(changed);
  }

  onUnicast(): void {
    throw new GossipDecodeError(BLOCKLIST_CHANNEL, 'the blocklist travels as gossip only');
  }

  onBroadcast(): Uint8Array | undefined {
    throw new GossipDecodeError(BLOCKLIST_CHANNEL, 'the blocklist travels as gossip only');
  }
}
