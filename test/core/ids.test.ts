import { describe, expect, it } from 'vitest';
import { formatPeerId, isPeerName, peerIdFromPeerName, peerNameFromPublicKey } from '../../src/core/ids.js';

describe('peer names and ids', () => {
  it('derives a 16-hex-digit name from a public key, stable and key-specific', () => {
    const a = peerNameFromPublicKey(Buffer.alloc(32, 1));
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(peerNameFromPublicKey(Buffer.alloc(32, 1))).toBe(a);
    expect(peerNameFromPublicKey(Buffer.alloc(32, 2))).not.toBe(a);
    expect(isPeerName(a)).toBe(true);
    expect(isPeerName('node-1')).toBe(false);
  });

  it('takes the wire id from the name, never 0 or 0xffffffff', () => {
    expect(peerIdFromPeerName('0123456789abcdef')).toBe(0x01234567);
    expect(peerIdFromPeerName('00000000ffffffff')).toBe(1);
    expect(peerIdFromPeerName('ffffffff00000000')).toBe(0xfffffffe);
    expect(formatPeerId(0x01234567)).toBe('01234567');
    expect(() => peerIdFromPeerName('nope')).toThrow(/not a peer name/);
  });
});
