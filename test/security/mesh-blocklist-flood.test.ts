/**
 * Attack: a member spends its neighbours' CPU with forged revocations. A "blocklist" gossip message
 * may carry up to MAX_ENTRIES (4,096) entries, and each entry for a peer not yet revoked cost an
 * Ed25519 verification, so one message forced 4,096 of them, and the member could send one after
 * another. Members relay only entries they verified, so the first forged entry of a message now
 * ends the checking of that message: at most one failed verification per message. Counted
 * (refused.badSignature, refused.unchecked), never thrown; the router's real blocklist unchanged.
 *
 * The count of verifications is read from the refusal counters (every entry is either verified or
 * counted unchecked), not from a timer.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Blocklist, MAX_ENTRIES, encodeBlocklist } from '../../src/mesh/blocklist.js';
import { signRevocation, type RevocationEntry } from '../../src/mesh/revocation.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const attacker = generateKeyPairSync('ed25519');

/** n entries for n distinct peers, signed with a key the cluster does not trust. */
function forgedEntries(n: number): RevocationEntry[] {
  return Array.from({ length: n }, (_, i) => signRevocation(attacker.privateKey, i.toString(16).padStart(16, '0'), 1_700_000_000_000 + i, 'forged'));
}

describe('a member floods forged revocations', () => {
  it('a full message of forged entries costs one failed verification, the rest are left unchecked', () => {
    const b = new Blocklist({ publicKey });
    expect(b.onGossip(encodeBlocklist(forgedEntries(MAX_ENTRIES)))).toBeUndefined();
    expect(b.refused.badSignature).toBe(1);
    expect(b.refused.unchecked).toBe(MAX_ENTRIES - 1);
    expect(b.size).toBe(0);
  });

  it('a hundred such messages cost a hundred verifications; a genuine revocation still lands after them', () => {
    const b = new Blocklist({ publicKey });
    const flood = encodeBlocklist(forgedEntries(MAX_ENTRIES));
    for (let i = 0; i < 100; i++) expect(b.onGossip(flood)).toBeUndefined();
    expect(b.refused.badSignature).toBe(100);
    expect(b.refused.unchecked).toBe(100 * (MAX_ENTRIES - 1));
    const real = signRevocation(privateKey, 'fedcba9876543210', 1_700_000_000_000, 'stolen laptop');
    expect(b.onGossip(encodeBlocklist([real]))).toBeDefined();
    expect(b.isRevoked('fedcba9876543210')).toBe(true);
  });

  it('a forged entry hidden behind genuine ones: the genuine ones before it are kept', () => {
    const b = new Blocklist({ publicKey });
    const good = [signRevocation(privateKey, '0123456789abcdef', 1, 'a'), signRevocation(privateKey, 'aaaabbbbccccdddd', 2, 'b')];
    b.onGossip(encodeBlocklist([...good, ...forgedEntries(10)]));
    expect(b.list().map((e) => e.peer).sort()).toEqual(['0123456789abcdef', 'aaaabbbbccccdddd']);
    expect(b.refused).toMatchObject({ badSignature: 1, unchecked: 9 });
  });
});
