/**
 * The wire of the "punch" channel (punch.ts): offers and answers of candidates, in canonical
 * msgpack (canonical-msgpack.ts), signed with the sender's identity key (signing.ts).
 *
 *   [1, type, from, to, incarnation, seq, [[endpoint, kind], ...], signature]
 *
 * `decodePunch` checks the shape and every candidate (at most MAX_CANDIDATES, each a canonical
 * endpoint that can be one: endpoints.ts's `candidateEndpoint`, no endpoint twice); the signature,
 * the sender and the freshness are the coordinator's to check.
 */
import { Unpackr } from 'msgpackr/unpack';
import { Writer } from './canonical-msgpack.js';
import type { CandidateKind, PathCandidate, PeerName } from './contracts.js';
import { MAX_CANDIDATES, candidateEndpoint } from './endpoints.js';
import { SIGNATURE_LEN, signedBytes } from './signing.js';
import { isName } from './topology-record.js';

export const PUNCH_LABEL = 'punch-candidates v1';
const FORMAT = 1;
export const OFFER = 1;
export const ANSWER = 2;
const MAX_MESSAGE_BYTES = 4096;
const KINDS: ReadonlySet<string> = new Set<CandidateKind>(['local', 'advertised', 'reflexive', 'stun']);
const INCARNATION = /^[0-9a-f]{16}$/;

/** Why an offer or answer is refused (`stats.refused`, `mesh.refused` as `punch.<reason>`). */
export const PUNCH_REFUSALS = [
  'malformed',
  'tooManyCandidates',
  'badEndpoint',
  'notForUs',
  'wrongSender',
  'unknownPeer',
  'staleIncarnation',
  'replayed',
  'rateLimited',
  'unsolicited',
  'badSignature',
] as const;

export type PunchRefusal = (typeof PUNCH_REFUSALS)[number];

export interface PunchMessage {
  type: typeof OFFER | typeof ANSWER;
  from: PeerName;
  to: PeerName;
  incarnation: string;
  seq: number;
  candidates: PathCandidate[];
}

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'number' });
const writer = new Writer();

function writeBody(m: PunchMessage, wire: boolean): void {
  const w = writer;
  w.at = 0;
  if (wire) {
    w.array(8);
    w.uint(FORMAT);
  } else w.array(6);
  w.uint(m.type);
  w.str(m.from);
  w.str(m.to);
  w.str(m.incarnation);
  w.uint(m.seq);
  w.array(m.candidates.length);
  for (const c of m.candidates) {
    w.array(2);
    w.str(c.endpoint);
    w.str(c.kind);
  }
}

/** The bytes the sender signs. */
export function punchSignedBytes(m: PunchMessage): Buffer {
  writeBody(m, false);
  return signedBytes(PUNCH_LABEL, writer.take());
}

/** A signed message on the wire. */
export function encodePunch(m: PunchMessage, signer: { sign(message: Uint8Array): Uint8Array }): Uint8Array {
  const signature = signer.sign(punchSignedBytes(m));
  writeBody(m, true);
  writer.bin(signature);
  return writer.take();
}

/** A refused message: why, and what was wrong. */
export class PunchRefused {
  readonly reason: PunchRefusal;
  readonly detail: string;
  constructor(reason: PunchRefusal, detail: string) {
    this.reason = reason;
    this.detail = detail;
  }
}

/**
 * Decodes and validates a message's shape and candidates (not its signature, sender or
 * freshness): the message and its signature, or why it is refused.
 */
export function decodePunch(data: Uint8Array): { message: PunchMessage; signature: Uint8Array } | PunchRefused {
  const no = (reason: PunchRefusal, detail: string): PunchRefused => new PunchRefused(reason, detail);
  if (!(data instanceof Uint8Array)) return no('malformed', 'payload is not bytes');
  if (data.length > MAX_MESSAGE_BYTES) return no('malformed', `message of ${data.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  let v: unknown;
  try {
    v = unpackr.unpack(data);
  } catch {
    return no('malformed', 'not msgpack');
  }
  if (!Array.isArray(v) || v.length !== 8) return no('malformed', 'not [format, type, from, to, incarnation, seq, candidates, signature]');
  const [format, type, from, to, incarnation, seq, list, signature] = v as unknown[];
  if (format !== FORMAT) return no('malformed', `format ${JSON.stringify(format)} is not ${FORMAT}`);
  if (type !== OFFER && type !== ANSWER) return no('malformed', `type ${JSON.stringify(type)} is neither offer (1) nor answer (2)`);
  if (typeof from !== 'string' || !isName(from)) return no('malformed', 'from is not a peer name');
  if (typeof to !== 'string' || !isName(to)) return no('malformed', 'to is not a peer name');
  if (typeof incarnation !== 'string' || !INCARNATION.test(incarnation)) return no('malformed', 'incarnation is not 16 hex digits');
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq <= 0) return no('malformed', 'seq is not a positive integer');
  if (!Array.isArray(list)) return no('malformed', 'candidates is not a list');
  if (list.length > MAX_CANDIDATES) return no('tooManyCandidates', `${list.length} candidates, at most ${MAX_CANDIDATES}`);
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LEN) return no('malformed', `signature is not ${SIGNATURE_LEN} bytes`);
  const candidates: PathCandidate[] = [];
  for (let i = 0; i < list.length; i++) {
    const c = list[i] as unknown;
    if (!Array.isArray(c) || c.length !== 2 || typeof c[0] !== 'string' || typeof c[1] !== 'string') {
      return no('malformed', `candidate ${i} is not [endpoint, kind]`);
    }
    if (!KINDS.has(c[1])) return no('malformed', `candidate ${i}: kind ${JSON.stringify(c[1])} is not one of ${[...KINDS].join(', ')}`);
    const e = candidateEndpoint(c[0]);
    if (typeof e === 'string') return no('badEndpoint', `candidate ${i}: ${e}`);
    if (e.endpoint !== c[0]) return no('badEndpoint', `candidate ${i}: "${c[0]}" is not in canonical form (${e.endpoint})`);
    if (candidates.some((x) => x.endpoint === e.endpoint)) return no('badEndpoint', `candidate ${i}: ${e.endpoint} is listed twice`);
    candidates.push({ endpoint: e.endpoint, kind: c[1] as CandidateKind });
  }
  return { message: { type, from, to, incarnation, seq, candidates }, signature };
}
