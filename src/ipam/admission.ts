/**
 * What of a received ring may be merged: every record validly signed by its writer, within the
 * bounds, and of a kind its writer may write. Refusals are per record (counted by reason); the rest
 * of the ring is merged, so one bad record never costs the good ones.
 *
 *   entry     version and reclaim epoch ≤ MAX_VERSION; signed by its writer (a genesis entry,
 *             unsigned, must be the genesis's own); a reclaim is written by its new owner
 *   life      epoch ≤ MAX_VERSION; a tombstone (odd) is written by another peer and carries the
 *             peer's own revival of epoch − 1 (from epoch 3 on); a revival (even) is written by the
 *             peer and carries a tombstone of epoch − 1 by another; both signatures valid
 *   adoption  signed by the seed
 *
 * To spare signature checks, records that would change nothing here are dropped unchecked (an
 * entry that does not beat ours, a life record or adoption we hold or that loses): a merge ignores
 * them anyway. `wanted` keeps losing entries custody.ts can still learn from; proofs (older
 * entries sent along to show custody) are kept only when `useful` to it (or about tokens of the
 * message, or tokens we lack), and never merged.
 */
import type { PeerName } from '../mesh/contracts.js';
import { beats, genesisId, lifeBeats, sameGenesis, type Adoption, type LifeRecord, type Ring, type RingEntry } from './ring.js';
import type { RingParts } from './ring-codec.js';
import { ADOPT_LABEL, LIFE_LABEL, MAX_VERSION, adoptBody, lifeBody, type RingVerifier } from './ring-signing.js';
import { genesisEntries } from './ring.js';
import type { AddressSpace } from './space.js';

export type RefusalReason = 'signature' | 'version' | 'record';

export interface Refusal {
  reason: RefusalReason;
  /** The writer the record names (undefined: none). */
  writer: PeerName | undefined;
  what: string;
}

export interface Admitted {
  /** The records to merge (only those that may change something). */
  parts: RingParts;
  refused: Refusal[];
}

/**
 * Checks `parts` against `cur` (the ring it will merge into; undefined: none yet) and keeps what
 * may change it. `wanted(e)`: a losing entry that is still worth keeping (checked like the others).
 */
export function admitRing(
  cur: Ring | undefined,
  parts: RingParts,
  sp: AddressSpace,
  verifier: RingVerifier,
  wanted: (e: RingEntry) => boolean = () => false,
  useful: (proof: RingEntry) => boolean = wanted,
): Admitted {
  // A proof for a token we do not have yet may be the link that confirms it once it merges.
  const tokens = new Set(parts.entries.map((e) => e.token));
  const wantedProof = (e: RingEntry): boolean => useful(e) || tokens.has(e.token) || cur?.entryAt(e.token) === undefined;
  const id = cur !== undefined && sameGenesis(cur.genesis, parts.genesis) ? cur.id : genesisId(parts.genesis);
  const mine = cur !== undefined && sameGenesis(cur.genesis, parts.genesis) ? cur : undefined;
  const refused: Refusal[] = [];
  const refuse = (reason: RefusalReason, writer: PeerName | undefined, what: string): void => void refused.push({ reason, writer, what });
  let genesis: RingEntry[] | undefined;

  const entries: RingEntry[] = [];
  for (const e of parts.entries) {
    if (e.version > MAX_VERSION || (e.reclaimed !== undefined && e.reclaimed.epoch > MAX_VERSION)) {
      refuse('version', e.writer, `entry at ${e.token} version ${e.version} (at most ${MAX_VERSION})`);
      continue;
    }
    const at = mine?.entryAt(e.token);
    if (at !== undefined && !beats(e, at) && !wanted(e)) continue;
    if (e.sig === undefined || e.writerKey === undefined || e.writer === undefined) {
      genesis ??= genesisEntries(sp, parts.genesis.seeds);
      const g = genesis.find((x) => x.token === e.token);
      if (g === undefined || g.owner !== e.owner || g.version !== e.version || g.end !== e.end || e.reclaimed !== undefined) refuse('signature', undefined, `unsigned entry at ${e.token} is not the genesis entry`);
      else entries.push(g);
      continue;
    }
    if (e.reclaimed !== undefined && e.writer !== e.owner) {
      refuse('record', e.writer, `reclaim at ${e.token} written by ${e.writer} for ${e.owner}`);
      continue;
    }
    const ok = verifier.entry(id, sp.bytes, { ...e, writer: e.writer, writerKey: e.writerKey, sig: e.sig });
    if (ok === undefined) refuse('signature', e.writer, `entry at ${e.token} by ${e.writer}`);
    else entries.push(ok);
  }

  const life: LifeRecord[] = [];
  for (const r of parts.life) {
    const have = mine?.lifeOf(r.peer);
    if (have !== undefined && !lifeBeats(r, have)) continue;
    const problem = lifeProblem(r);
    if (problem !== undefined) {
      refuse(r.epoch > MAX_VERSION ? 'version' : 'record', r.writer, `life of ${r.peer} at epoch ${r.epoch}: ${problem}`);
      continue;
    }
    const okSelf = verifier.check(r.writerKey, LIFE_LABEL, lifeBody(id, r.peer, r.epoch, r.writer), r.sig);
    const okPrev = r.prev === undefined || verifier.check(r.prev.writerKey, LIFE_LABEL, lifeBody(id, r.peer, r.epoch - 1, r.prev.writer), r.prev.sig);
    if (!okSelf || !okPrev) refuse('signature', r.writer, `life of ${r.peer} at epoch ${r.epoch}`);
    else life.push(r);
  }

  const proofs: RingEntry[] = [];
  for (const e of parts.proofs ?? []) {
    if (e.version > MAX_VERSION || e.sig === undefined || e.writerKey === undefined || e.writer === undefined || !wantedProof(e)) continue;
    const ok = verifier.entry(id, sp.bytes, { ...e, writer: e.writer, writerKey: e.writerKey, sig: e.sig });
    if (ok === undefined) refuse('signature', e.writer, `proof at ${e.token} by ${e.writer}`);
    else proofs.push(ok);
  }

  const adopted: Adoption[] = [];
  const have = new Map((mine?.adoptionList() ?? []).map((a) => [a.seed, a]));
  for (const a of parts.adopted) {
    const h = have.get(a.seed);
    if (h !== undefined && Buffer.compare(a.sig, h.sig) <= 0) continue;
    if (!verifier.check(a.key, ADOPT_LABEL, adoptBody(id, a.seed), a.sig)) refuse('signature', a.seed, `adoption by ${a.seed}`);
    else adopted.push(a);
  }
  return { parts: { genesis: parts.genesis, entries, life, adopted, proofs }, refused };
}

/** What is wrong with a life record's shape (undefined: nothing; its signatures are checked apart). */
function lifeProblem(r: LifeRecord): string | undefined {
  if (r.epoch > MAX_VERSION) return `epoch past ${MAX_VERSION}`;
  const tomb = r.epoch % 2 === 1;
  if (tomb && r.writer === r.peer) return 'a peer cannot forget itself';
  if (!tomb && r.writer !== r.peer) return `a revival written by ${r.writer}, not by the peer`;
  if (r.epoch === 1) return r.prev === undefined ? undefined : 'epoch 1 has no previous record';
  if (r.prev === undefined) return 'no previous record';
  // The previous record is the other kind: a revival by the peer before a tombstone, and back.
  if (tomb && r.prev.writer !== r.peer) return 'the superseded revival is not signed by the peer';
  if (!tomb && r.prev.writer === r.peer) return 'the superseded tombstone is signed by the peer itself';
  return undefined;
}
