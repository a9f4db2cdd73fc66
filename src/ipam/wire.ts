/**
 * Messages of the "ipam" channel (version 1), msgpack:
 *
 *   gossip  = [1, "g", [ring: bin, ...], waiting]     full state or delta (at most one ring per
 *                                                      space, each in ring-codec form)
 *   waiting = [[key: bin 32, initPeers, sig: bin 64], ...]   peers without a ring waiting for a
 *                                                      quorum, each signed by the peer it names
 *                                                      (its name: the hash of the key; see
 *                                                      `waitingBody`), strictly ascending by
 *                                                      (name, initPeers)
 *   ask     = [1, "ask", space]                        unicast: please donate space in `space`
 *   gave    = [1, "gave", space, ring: bin]            unicast: the donation, as a ring delta
 *   none    = [1, "none", space]                       unicast: nothing to give
 *   prove   = [1, "prove", space, [token: bin, ...]]   unicast: please send the titles (custody.ts)
 *                                                      of these tokens of yours, at most 64; the
 *                                                      answer is a gossip message whose ring is
 *                                                      empty but for its proofs
 *
 * Everything is validated before use; malformed input throws `GossipDecodeError('ipam', ...)`.
 */
import { peerNameFromPublicKey } from '../core/ids.js';
import type { PeerName } from '../mesh/contracts.js';
import { GossipDecodeError } from '../mesh/errors.js';
import { IPAM_CHANNEL, PackBuilder, pack, typeName, unpack, type KeyNames } from './ring-codec.js';
import { signBody, type RingWriter } from './ring-signing.js';

const FORMAT = 1;
export const MAX_INIT_PEERS = 1024;
const MAX_WAITING = 4096;
const MAX_RINGS = 2;

export interface WaitingPeer {
  readonly name: PeerName;
  readonly initPeers: number;
  /** The peer's public key and its signature of `waitingBody`. */
  readonly key: Uint8Array;
  readonly sig: Uint8Array;
}

export const WAITING_LABEL = 'ipam-waiting';

/** What a waiting announcement's signature covers: the cluster id, the name and N. */
export function waitingBody(clusterId: string, name: PeerName, initPeers: number): Buffer {
  const c = Buffer.from(clusterId, 'utf8');
  const out = Buffer.alloc(1 + c.length + 8 + 2);
  out[0] = c.length;
  c.copy(out, 1);
  out.write(name, 1 + c.length, 8, 'hex');
  out.writeUInt16BE(initPeers, 1 + c.length + 8);
  return out;
}

/** A signed announcement that `w` waits for a quorum of `initPeers`. */
export function waitingOf(w: RingWriter, clusterId: string, initPeers: number): WaitingPeer {
  return { name: w.name, initPeers, key: w.publicKey, sig: signBody(w, WAITING_LABEL, waitingBody(clusterId, w.name, initPeers)) };
}

export type IpamMessage =
  | { kind: 'gossip'; rings: Uint8Array[]; waiting: WaitingPeer[] }
  | { kind: 'ask' | 'none'; space: string }
  | { kind: 'gave'; space: string; ring: Uint8Array }
  | { kind: 'prove'; space: string; tokens: Uint8Array[] };

export const MAX_PROVE = 64;

function fail(reason: string, cause?: unknown): never {
  throw new GossipDecodeError(IPAM_CHANNEL, reason, cause === undefined ? undefined : { cause });
}

export function encodeGossip(rings: readonly Uint8Array[], waiting: readonly WaitingPeer[]): Uint8Array {
  const b = new PackBuilder().array(4).items(FORMAT, 'g').array(rings.length);
  for (const r of rings) b.bin(r);
  return b.items(waiting.map((w) => [w.key, w.initPeers, w.sig])).finish();
}

export function encodeAsk(kind: 'ask' | 'none', space: string): Uint8Array {
  return pack([FORMAT, kind, space]);
}

export function encodeProve(space: string, tokens: readonly Uint8Array[]): Uint8Array {
  return pack([FORMAT, 'prove', space, tokens]);
}

export function encodeGave(space: string, ring: Uint8Array): Uint8Array {
  return new PackBuilder().array(4).items(FORMAT, 'gave', space).bin(ring).finish();
}


/** `names`: how to name a key (a cache in `RingVerifier`). */
export function decodeMessage(data: Uint8Array, names: KeyNames = peerNameFromPublicKey): IpamMessage {
  const top = unpack(data, fail);
  if (!Array.isArray(top)) fail(`message is ${typeName(top)}, expected an array`);
  if (top[0] !== FORMAT) fail(`format ${JSON.stringify(top[0])} is not ${FORMAT}`);
  const kind = top[1];
  if (kind === 'g') {
    if (top.length !== 4) fail(`gossip has ${top.length} fields, expected 4`);
    const rawRings = top[2];
    if (!Array.isArray(rawRings) || rawRings.length > MAX_RINGS) fail(`gossip rings is not an array of at most ${MAX_RINGS}`);
    // Rings stay bytes here: the receiver skips those equal to its own and decodes (validates)
    // the others with `decodeRing` before it changes anything.
    const rings = rawRings.map((r, i) => (r instanceof Uint8Array ? r : fail(`ring ${i} is ${typeName(r)}, expected binary`)));
    const rawWaiting = top[3];
    if (!Array.isArray(rawWaiting) || rawWaiting.length > MAX_WAITING) fail(`gossip waiting is not an array of at most ${MAX_WAITING}`);
    const waiting: WaitingPeer[] = [];
    let prev = '';
    for (let i = 0; i < rawWaiting.length; i++) {
      const w = rawWaiting[i];
      if (!Array.isArray(w) || w.length !== 3) fail(`waiting ${i} is not [key, initPeers, signature]`);
      const [key, n, sig] = w as [unknown, unknown, unknown];
      if (!(key instanceof Uint8Array) || key.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) fail(`waiting ${i} has no key and signature`);
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_INIT_PEERS) fail(`waiting ${i} initPeers is not an integer in 1..${MAX_INIT_PEERS}`);
      const name = names(key);
      const k = `${name}/${String(n).padStart(4, '0')}`;
      if (k <= prev) fail(`waiting not strictly ascending at ${name}`);
      prev = k;
      waiting.push({ name, initPeers: n, key, sig });
    }
    return { kind: 'gossip', rings, waiting };
  }
  if (kind === 'prove') {
    if (top.length !== 4) fail(`prove has ${top.length} fields, expected 4`);
    const sp = top[2];
    if (typeof sp !== 'string' || sp.length > 64) fail('prove space is not a string');
    const tokens = top[3];
    if (!Array.isArray(tokens) || tokens.length > MAX_PROVE || !tokens.every((t) => t instanceof Uint8Array && t.length <= 16)) fail(`prove tokens is not an array of at most ${MAX_PROVE} offsets`);
    return { kind, space: sp, tokens: tokens as Uint8Array[] };
  }
  if (kind === 'ask' || kind === 'none' || kind === 'gave') {
    const want = kind === 'gave' ? 4 : 3;
    if (top.length !== want) fail(`${kind} has ${top.length} fields, expected ${want}`);
    const sp = top[2];
    if (typeof sp !== 'string' || sp.length > 64) fail(`${kind} space is not a string`);
    if (kind !== 'gave') return { kind, space: sp };
    const ring = top[3];
    if (!(ring instanceof Uint8Array)) fail(`gave ring is ${typeName(ring)}, expected binary`);
    return { kind, space: sp, ring };
  }
  return fail(`unknown message kind ${JSON.stringify(kind)}`);
}

/** Sort key of a waiting announcement (the order `encodeGossip` expects). */
export function waitingKey(w: WaitingPeer): string {
  return `${w.name}/${String(w.initPeers).padStart(4, '0')}`;
}
