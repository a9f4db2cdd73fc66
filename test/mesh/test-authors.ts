/**
 * Identities for gossip tests (real X25519 key pairs from a seed, so records can be signed) and
 * helpers that build signed topology records.
 */
import { createHash } from 'node:crypto';
import { keyPairFromSecret } from '../../src/mesh/identity.js';
import { Signer } from '../../src/mesh/signing.js';
import { signLive, writeTombstone, type KnownRecord, type PeerLeft, type PeerRecord } from '../../src/mesh/topology-codec.js';
import { peerNameFromPublicKey } from '../../src/core/ids.js';

export interface TestAuthor {
  readonly seed: string;
  readonly name: string;
  readonly publicKey: Buffer;
  readonly signer: Signer;
}

const authors = new Map<string, TestAuthor>();

/** The identity made from sha256(seed) (one per seed, kept for the test run). */
export function testAuthor(seed: string): TestAuthor {
  let a = authors.get(seed);
  if (a === undefined) {
    const kp = keyPairFromSecret(createHash('sha256').update(seed).digest());
    a = { seed, name: peerNameFromPublicKey(kp.publicKey), publicKey: kp.publicKey, signer: new Signer(kp.secretKey) };
    authors.set(seed, a);
  }
  return a;
}

/** The incarnation `signed` uses unless told otherwise. */
export const TEST_INCARNATION = '00000000000000aa';

/** A live record of `author`, signed by `by` (default: the author itself). */
export function signed(author: TestAuthor, fields: Partial<PeerRecord> & { version: number }, by: TestAuthor = author): KnownRecord {
  if (fields.left !== undefined) throw new TypeError('signed() makes live records; use tombstone()');
  const record: PeerRecord = {
    name: author.name,
    nickname: '',
    publicKey: author.publicKey,
    endpoints: [],
    connections: [],
    incarnation: TEST_INCARNATION,
    started: 0,
    ...fields,
  };
  return signLive(record, { publicKey: author.publicKey, signer: by.signer });
}

/** A tombstone of `buried`, written by `writer`. */
export function tombstone(buried: KnownRecord, left: PeerLeft, writer: TestAuthor): KnownRecord {
  return writeTombstone(buried, left, writer);
}
