/**
 * Taking in a received ring (or delta) of one space: admission (signatures, bounds, per record),
 * custody's decisions, the merge, and what the proofs that came with it teach custody.
 *
 *   admit ──▶ life records and adoptions merge ──▶ custody decides each entry ──▶ entries merge
 *         ──▶ custody records the decisions, learns from the proofs, rechecks after new tombstones
 *
 * Life records merge first: custody's reclaim checks read the tombstones they bring.
 */
import { admitRing, type Refusal } from './admission.js';
import type { Custody, CustodyContext, Decision } from './custody.js';
import { Ring } from './ring.js';
import type { RingParts } from './ring-codec.js';
import type { RingVerifier } from './ring-signing.js';
import type { AddressSpace } from './space.js';

export interface Intake {
  /** What changed in the ring (undefined: nothing). */
  delta: Ring | undefined;
  decisions: Decision[];
  /** Pending entries custody confirmed from the proofs or new tombstones. */
  learned: number;
  /** Winners still not confirmed once the proofs were learned. */
  unconfirmed: Decision[];
  refused: Refusal[];
}

export function takeIn(ring: Ring, custody: Custody, p: RingParts, space: AddressSpace, verifier: RingVerifier, ctx: CustodyContext): Intake {
  const adm = admitRing(ring, p, space, verifier, (e) => custody.wants(e), (e) => custody.mayLearn(e));
  const meta = adm.parts.life.length + adm.parts.adopted.length > 0 ? ring.merge(Ring.fromParts(p.genesis, [], adm.parts.life, adm.parts.adopted, space)) : undefined;
  const decisions = custody.prepare(adm.parts.entries, ctx);
  const winners = decisions.filter((d) => d.wins).map((d) => d.entry);
  const won = winners.length > 0 ? ring.merge(Ring.fromParts(p.genesis, winners, [], [], space)) : undefined;
  const proofs = adm.parts.proofs ?? [];
  custody.apply(decisions, ctx, proofs);
  let learned = proofs.length > 0 ? custody.learn(proofs, ctx) : 0;
  if (meta !== undefined && meta.lifeRecords().length > 0) learned += custody.recheck(ctx);
  // (Counted after the proofs: what they confirmed was not distrusted.)
  const unconfirmed = decisions.filter((d) => d.wins && !d.confirmed && ring.entryAt(d.entry.token) === d.entry && !custody.isConfirmed(d.entry.token));
  const delta = meta === undefined && won === undefined ? undefined : Ring.fromParts(p.genesis, won?.entryList() ?? [], meta?.lifeRecords() ?? [], meta?.adoptionList() ?? [], space);
  return { delta, decisions, learned, unconfirmed, refused: adm.refused };
}
