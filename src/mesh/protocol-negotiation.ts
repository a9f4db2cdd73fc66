/**
 * Mesh protocol version negotiation (pure): what the preamble carries, which version two routers
 * speak, what the Noise prologue binds, and how a man in the middle who edits a preamble is caught.
 *
 *   preamble:  "wEFt" | min u16 BE | max u16 BE (0: max = min)
 *
 * A protocol-2 router (before ranges) sends "wEFt" | 2 | 0 and refuses any other first u16: it
 * reads a range 2..3 as version 2 and connects. A router held back to 2..2 sends exactly those
 * bytes. Both ends speak the highest version in both ranges; none in common closes the connection
 * (`version`) with both ranges named.
 *
 * The prologue (bound into the Noise handshake, so both ends must compute the same bytes):
 *   negotiated 2:  "wEFt" | 2 | 0            what a protocol-2 router binds (its own preamble)
 *   negotiated 3+: "weft-mesh" | version u16 | the initiator's preamble | the responder's preamble
 * An edited preamble then fails the handshake, except where the edit makes both ends settle on 2
 * with the protocol-2 prologue; so every router that knows ranges also states its own range in
 * HELLO (the `features` field, ignored by protocol-2 routers), sealed under the handshake keys: a
 * range there that differs from the preamble's closes the connection (`downgrade`).
 */
import { MAGIC, MeshProtocolError, PREAMBLE_LEN } from './mesh-protocol.js';

export interface ProtocolRange {
  min: number;
  max: number;
}

/** The version that gets the protocol-2 prologue (what routers before ranges bind). */
export const LEGACY_PROTOCOL = 2;
const PROLOGUE_LABEL = Buffer.from('weft-mesh', 'latin1');

export function formatRange(r: ProtocolRange): string {
  return r.min === r.max ? `${r.min}` : `${r.min}..${r.max}`;
}

function validRange(r: ProtocolRange): boolean {
  return Number.isInteger(r.min) && Number.isInteger(r.max) && r.min >= 1 && r.max >= r.min && r.max <= 0xffff;
}

/** The 8-byte preamble that announces `range`. */
export function encodePreamble(range: ProtocolRange): Buffer {
  if (!validRange(range)) throw new RangeError(`mesh protocol range ${range.min}..${range.max} is not a range of versions 1..65535`);
  const b = Buffer.alloc(PREAMBLE_LEN);
  MAGIC.copy(b, 0);
  b.writeUInt16BE(range.min, 4);
  b.writeUInt16BE(range.max === range.min ? 0 : range.max, 6);
  return b;
}

/** The range a received preamble announces; throws MeshProtocolError (`notWeft`, `version`). */
export function decodePreamble(b: Buffer): ProtocolRange {
  if (b.length !== PREAMBLE_LEN || !b.subarray(0, 4).equals(MAGIC)) {
    throw new MeshProtocolError('notWeft', 'the remote end does not speak the weft mesh protocol');
  }
  const min = b.readUInt16BE(4);
  const raw = b.readUInt16BE(6);
  const range = { min, max: raw === 0 ? min : raw };
  if (!validRange(range)) throw new MeshProtocolError('version', `the remote end announced mesh protocol versions ${min}..${raw}, not a range`);
  return range;
}

/** The highest version in both ranges; throws MeshProtocolError (`version`) naming both when there is none. */
export function negotiate(ours: ProtocolRange, theirs: ProtocolRange): number {
  const lo = Math.max(ours.min, theirs.min);
  const hi = Math.min(ours.max, theirs.max);
  if (lo > hi) {
    throw new MeshProtocolError(
      'version',
      `no common mesh protocol version: the remote end speaks ${formatRange(theirs)}, this router speaks ${formatRange(ours)} (upgrade the older router)`,
    );
  }
  return hi;
}

/** The Noise prologue for `version`, given both preambles as each was sent (see the file comment). */
export function prologue(version: number, initiatorPreamble: Buffer, responderPreamble: Buffer): Buffer {
  if (version === LEGACY_PROTOCOL) return encodePreamble({ min: LEGACY_PROTOCOL, max: LEGACY_PROTOCOL });
  const v = Buffer.alloc(2);
  v.writeUInt16BE(version, 0);
  return Buffer.concat([PROLOGUE_LABEL, v, initiatorPreamble, responderPreamble]);
}

/** HELLO `features` bits 8–15: the sender's lowest version, 16–23: its highest (0: not stated, a protocol-2 router). */
export function rangeFeatures(range: ProtocolRange): number {
  return ((range.min & 0xff) << 8) + (range.max & 0xff) * 0x10000;
}

export function rangeFromFeatures(features: number): ProtocolRange | undefined {
  const min = Math.floor(features / 0x100) & 0xff;
  const max = Math.floor(features / 0x10000) & 0xff;
  return min === 0 && max === 0 ? undefined : { min, max };
}

/**
 * Checks the range a neighbour states in its sealed HELLO against the one its preamble announced;
 * throws MeshProtocolError (`downgrade`) when they differ (an edited preamble).
 */
export function checkStatedRange(announced: ProtocolRange, stated: ProtocolRange | undefined): void {
  if (stated === undefined) {
    // A protocol-2 router states nothing; one that knows ranges never announces only 2 unless held there.
    return;
  }
  if (stated.min !== (announced.min & 0xff) || stated.max !== (announced.max & 0xff)) {
    throw new MeshProtocolError(
      'downgrade',
      `the remote end's preamble announced mesh protocol ${formatRange(announced)} but its authenticated HELLO states ${formatRange(stated)}: the preamble was changed on the way`,
    );
  }
}

/**
 * For a responder whose first handshake message failed: the prologues an initiator would have
 * bound had it seen preambles other than the ones this end saw (the protocol-2 one; or version v
 * with the initiator's true range min..v), leaving out the one used (`used`). If the message
 * opens under one of them, a preamble was edited on the way: a downgrade attempt, not a wrong secret.
 */
export function otherPrologues(ours: ProtocolRange, theirs: ProtocolRange, responderPreamble: Buffer, used: Buffer): Buffer[] {
  const out: Buffer[] = [prologue(LEGACY_PROTOCOL, responderPreamble, responderPreamble)];
  for (let v = Math.max(ours.min, LEGACY_PROTOCOL + 1); v <= ours.max; v++) {
    out.push(prologue(v, encodePreamble({ min: Math.min(theirs.min, v), max: v }), responderPreamble));
  }
  return out.filter((p) => !p.equals(used));
}
