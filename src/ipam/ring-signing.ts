/**
 * Signatures on the ring's records (gossip/signing.ts: XEdDSA with the routers' X25519 identity
 * keys). Every record carries its writer's public key; the writer's name is the hash of that key
 * (`peerNameFromPublicKey`), so a record is self-certifying and can be checked before topology
 * has told us anything about its writer.
 *
 * What each signature covers (after the `signedBytes` domain label), all integers big-endian,
 * names as their 8 bytes, `ring` the 8 bytes of the ring's genesis id (so a record can never be
 * replayed into another ring, space or cluster):
 *
 *   "ipam-entry"  ring | width u8 | token | last | owner | version u32 | writer | reclaimed u8
 *                 (1: | from | epoch u32)
 *   "ipam-life"   ring | peer | epoch u32 | writer
 *   "ipam-adopt"  ring | seed
 *
 * `RingVerifier` checks them and keeps what it verified (bounded), so a record that arrives again
 * (every full-state gossip) costs a lookup, not a verification; one verifier may be shared by many
 * peers in one process (the simulation) since it only caches facts about bytes.
 */
import { peerNameFromPublicKey } from '../core/ids.js';
import type { PeerName } from '../mesh/contracts.js';
import { SIGNATURE_LEN, Verifier, signedBytes } from '../mesh/signing.js';
import { writeOffset } from './space.js';

export const ENTRY_LABEL = 'ipam-entry';
export const LIFE_LABEL = 'ipam-life';
export const ADOPT_LABEL = 'ipam-adopt';

/** Versions and epochs above this are refused (per record) and never written. */
export const MAX_VERSION = 0xffff_ffff;

/** Who writes local changes: our name, our public key and our signing function. */
export interface RingWriter {
  readonly name: PeerName;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** A writer from a router identity (gossip/identity.ts). */
export function ringWriter(identity: { name: PeerName; publicKey: Uint8Array; signer: { sign(m: Uint8Array): Uint8Array } }): RingWriter {
  return { name: identity.name, publicKey: identity.publicKey, sign: (m) => identity.signer.sign(m) };
}

/** The fields an entry's signature covers. */
export interface EntryFields {
  readonly token: bigint;
  readonly end: bigint;
  readonly owner: PeerName;
  readonly version: number;
  readonly writer: PeerName;
  readonly reclaimed?: { readonly from: PeerName; readonly epoch: number } | undefined;
}

function putName(out: Buffer, at: number, name: PeerName): number {
  out.write(name, at, 8, 'hex');
  return at + 8;
}

/** The body an entry's signature covers (`ring`: the 16-hex genesis id). */
export function entryBody(ring: string, width: number, e: EntryFields): Buffer {
  const out = Buffer.allocUnsafe(8 + 1 + 2 * width + 8 + 4 + 8 + 1 + (e.reclaimed === undefined ? 0 : 12));
  let at = putName(out, 0, ring);
  out[at++] = width;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  writeOffset(view, at, e.token, width);
  at += width;
  writeOffset(view, at, e.end - 1n, width);
  at += width;
  at = putName(out, at, e.owner);
  out.writeUInt32BE(e.version, at);
  at += 4;
  at = putName(out, at, e.writer);
  if (e.reclaimed === undefined) out[at] = 0;
  else {
    out[at++] = 1;
    at = putName(out, at, e.reclaimed.from);
    out.writeUInt32BE(e.reclaimed.epoch, at);
  }
  return out;
}

export function lifeBody(ring: string, peer: PeerName, epoch: number, writer: PeerName): Buffer {
  const out = Buffer.allocUnsafe(28);
  putName(out, 0, ring);
  putName(out, 8, peer);
  out.writeUInt32BE(epoch, 16);
  putName(out, 20, writer);
  return out;
}

export function adoptBody(ring: string, seed: PeerName): Buffer {
  const out = Buffer.allocUnsafe(16);
  putName(out, 0, ring);
  putName(out, 8, seed);
  return out;
}

function sameEntry(a: EntryFields & { writerKey?: Uint8Array }, b: EntryFields & { writerKey: Uint8Array }): boolean {
  const ar = a.reclaimed;
  const br = b.reclaimed;
  return (
    a.token === b.token &&
    a.end === b.end &&
    a.owner === b.owner &&
    a.version === b.version &&
    a.writer === b.writer &&
    (ar === br || (ar !== undefined && br !== undefined && ar.from === br.from && ar.epoch === br.epoch)) &&
    a.writerKey !== undefined &&
    Buffer.compare(a.writerKey, b.writerKey) === 0
  );
}

/** Signs `body` under `label` as `w`. */
export function signBody(w: RingWriter, label: string, body: Uint8Array): Uint8Array {
  return w.sign(signedBytes(label, body));
}

/**
 * Checks ring signatures, remembering the ones that verified (by signature and signed bytes) and
 * the names of the keys it saw. Never throws.
 */
export class RingVerifier {
  private readonly verifier = new Verifier();
  private readonly names = new Map<string, PeerName>();
  private readonly good = new Set<string>();
  /** Entries that verified, by signature: a repeat costs a comparison, and peers in one process share one object. */
  private readonly entries = new Map<string, { ring: string; entry: Readonly<EntryFields & { sig?: Uint8Array; writerKey?: Uint8Array }> }>();
  private readonly maxCached: number;
  /** Signatures checked (cache misses). */
  checked = 0;

  constructor(maxCached = 500_000) {
    this.maxCached = maxCached;
  }

  /** The peer name of a public key (cached). */
  nameOf(publicKey: Uint8Array): PeerName {
    const k = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1');
    let n = this.names.get(k);
    if (n === undefined) {
      if (this.names.size >= this.maxCached) this.names.clear();
      n = peerNameFromPublicKey(publicKey);
      this.names.set(k, n);
    }
    return n;
  }

  /**
   * The verified form of a signed entry of ring `ring` (16-hex genesis id; `width`: bytes of an
   * offset): `e` itself, or an equal entry verified before (shared), or undefined when its
   * signature is not its writer's.
   */
  entry<T extends EntryFields & { writerKey: Uint8Array; sig: Uint8Array }>(ring: string, width: number, e: T): T | undefined {
    const k = Buffer.from(e.sig.buffer, e.sig.byteOffset, e.sig.byteLength).toString('latin1');
    const hit = this.entries.get(k);
    if (hit !== undefined && hit.ring === ring && sameEntry(hit.entry, e)) return hit.entry as T;
    if (!this.check(e.writerKey, ENTRY_LABEL, entryBody(ring, width, e), e.sig)) return undefined;
    if (this.entries.size >= this.maxCached) this.entries.clear();
    this.entries.set(k, { ring, entry: e });
    return e;
  }

  /** Whether `sig` is `publicKey`'s signature of `body` under `label`. */
  check(publicKey: Uint8Array, label: string, body: Uint8Array, sig: Uint8Array | undefined): boolean {
    if (sig === undefined || sig.length !== SIGNATURE_LEN || publicKey.length !== 32) return false;
    const key =
      Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('latin1') +
      label +
      Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1') +
      Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1');
    if (this.good.has(key)) return true;
    this.checked++;
    if (!this.verifier.verify(publicKey, signedBytes(label, body), sig)) return false;
    if (this.good.size >= this.maxCached) this.good.clear();
    this.good.add(key);
    return true;
  }
}
