/**
 * Revocation entries and the blocklist: signatures, the table of bad entries, the wire, the merge
 * (grow-only, the same set whatever the order), and refusals counted rather than thrown.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { Blocklist, decodeBlocklist, encodeBlocklist, MAX_ENTRIES } from '../../src/mesh/blocklist.js';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import {
  createRevocationKey, entryFromJson, entryToJson, loadRevocationPrivateKey, loadRevocationPublicKey, publicKeyFromHex, publicKeyHex,
  signRevocation, verifyRevocation, type RevocationEntry,
} from '../../src/mesh/revocation.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const P1 = '0123456789abcdef';
const P2 = 'fedcba9876543210';
const P3 = 'aaaabbbbccccdddd';
const dir = mkdtempSync(join(tmpdir(), 'weft-revocation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function list(pub: KeyObject | undefined = publicKey, onRevoked?: (e: readonly RevocationEntry[]) => void): Blocklist {
  return new Blocklist({ publicKey: pub, ...(onRevoked === undefined ? {} : { onRevoked }) });
}

describe('revocation entries', () => {
  it('a signed entry verifies with its key only', () => {
    const e = signRevocation(privateKey, P1, 1_700_000_000_000, 'stolen');
    expect(verifyRevocation(publicKey, e)).toBe(true);
    expect(verifyRevocation(other.publicKey, e)).toBe(false);
  });

  it.each<[string, Partial<RevocationEntry>]>([
    ['another peer', { peer: P2 }],
    ['another time', { at: 1 }],
    ['another reason', { reason: 'lost' }],
    ['a flipped signature bit', { sig: (() => { const s = Buffer.from(signRevocation(privateKey, P1, 5, 'x').sig); s[0]! ^= 1; return s; })() }],
    ['a short signature', { sig: new Uint8Array(63) }],
    ['a peer that is not a name', { peer: 'not-a-peer-name!' }],
    ['a negative time', { at: -1 }],
    ['a fractional time', { at: 1.5 }],
    ['a reason too long', { reason: 'x'.repeat(201) }],
  ])('an entry with %s does not verify', (_what, change) => {
    const e = { ...signRevocation(privateKey, P1, 5, 'x'), ...change };
    expect(verifyRevocation(publicKey, e)).toBe(false);
  });

  it.each<[string, unknown, RegExp]>([
    ['null', null, /not an object/],
    ['no peer', { at: 1, reason: '', sig: '00'.repeat(64) }, /peer/],
    ['a string time', { peer: P1, at: '1', reason: '', sig: '00'.repeat(64) }, /at/],
    ['a numeric reason', { peer: P1, at: 1, reason: 7, sig: '00'.repeat(64) }, /reason/],
    ['a short sig', { peer: P1, at: 1, reason: '', sig: '00' }, /sig/],
    ['an upper-case sig', { peer: P1, at: 1, reason: '', sig: 'AB'.repeat(64) }, /sig/],
  ])('JSON with %s is refused', (_what, json, why) => {
    expect(entryFromJson(json)).toMatch(why);
  });

  it('JSON round trip keeps the signature valid', () => {
    const e = signRevocation(privateKey, P1, 9, 'r');
    const back = entryFromJson(JSON.parse(JSON.stringify(entryToJson(e))));
    expect(typeof back).toBe('object');
    expect(verifyRevocation(publicKey, back as RevocationEntry)).toBe(true);
  });

  it('signing refuses fields no router would take', () => {
    expect(() => signRevocation(privateKey, 'n4', 1, '')).toThrow(/peer name/);
  });

  it('key files: the private key is 0600 and never overwritten; the public key comes as hex or a file of it', () => {
    const file = join(dir, 'k1');
    const { publicKeyHex: hex } = createRevocationKey(file);
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(() => createRevocationKey(file)).toThrow();
    const priv = loadRevocationPrivateKey(file);
    const e = signRevocation(priv, P1, 1, '');
    expect(verifyRevocation(publicKeyFromHex(hex, 'test'), e)).toBe(true);
    const pubFile = join(dir, 'k1.pub');
    writeFileSync(pubFile, `${hex}\n`);
    expect(publicKeyHex(loadRevocationPublicKey(pubFile))).toBe(hex);
    expect(publicKeyHex(loadRevocationPublicKey(hex.toUpperCase()))).toBe(hex);
    expect(() => loadRevocationPublicKey(join(dir, 'missing'))).toThrow(/neither 64 hex digits nor a readable file/);
    writeFileSync(join(dir, 'bad.pub'), 'abc');
    expect(() => loadRevocationPublicKey(join(dir, 'bad.pub'))).toThrow(/64 hex digits/);
    writeFileSync(join(dir, 'notkey'), 'hello');
    expect(() => loadRevocationPrivateKey(join(dir, 'notkey'))).toThrow(/not a readable private key/);
  });
});

describe('the blocklist', () => {
  const e1 = signRevocation(privateKey, P1, 10, 'a');
  const e2 = signRevocation(privateKey, P2, 20, 'b');
  const e1later = signRevocation(privateKey, P1, 30, 'again');

  it('merges as a grow-only set: the same set in any order, the earlier entry of a peer kept, idempotent', () => {
    const orders = [[e1, e2, e1later], [e1later, e2, e1], [e2, e1later, e1, e1]];
    const sets = orders.map((o) => {
      const b = list();
      for (const e of o) b.merge([e]);
      return b.list().map(entryToJson);
    });
    expect(sets[1]).toEqual(sets[0]);
    expect(sets[2]).toEqual(sets[0]);
    expect(sets[0]!.map((e) => [e.peer, e.at])).toEqual([[P1, 10], [P2, 20]].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    const b = list();
    expect(b.merge([e1, e2])).toHaveLength(2);
    expect(b.merge([e1, e2, e1later])).toHaveLength(0);
  });

  it('gossip carries the whole set; a merge returns only the delta; onRevoked hears new peers once', () => {
    const heard: string[] = [];
    const a = list(publicKey, (es) => heard.push(...es.map((e) => e.peer)));
    const b = list();
    b.merge([e1, e2]);
    const delta = a.onGossip(b.gossip()!);
    expect(decodeBlocklist(delta!).map((e) => e.peer).sort()).toEqual([P1, P2].sort());
    expect(a.onGossip(b.gossip()!)).toBeUndefined();
    expect(heard.sort()).toEqual([P1, P2].sort());
    expect(a.isRevoked(P1) && a.isRevoked(P2) && !a.isRevoked(P3)).toBe(true);
    expect(list().gossip()).toBeUndefined();
  });

  it('entries with a bad signature or from an unknown key are dropped and counted, the rest taken (local merge)', () => {
    const forged = { ...e2, reason: 'changed' };
    const foreign = signRevocation(other.privateKey, P3, 1, 'other key');
    const b = list();
    expect(b.merge([forged, e1, foreign])).toHaveLength(1);
    expect(b.list().map((e) => e.peer)).toEqual([P1]);
    expect(b.refused).toMatchObject({ badSignature: 2, unchecked: 0, noKey: 0 });
    const keyless = new Blocklist({ publicKey: undefined });
    expect(keyless.onGossip(encodeBlocklist([e1]))).toBeUndefined();
    expect(keyless.size).toBe(0);
    expect(keyless.refused.noKey).toBe(1);
    expect(keyless.refusedTotal).toBe(1);
  });

  it("from a neighbour's gossip: entries before a forged one are taken, the forged one ends the checking of the rest", () => {
    const forged = { ...e2, reason: 'changed' };
    const b = list();
    expect(decodeBlocklist(b.onGossip(encodeBlocklist([e1, forged, e2]))!).map((e) => e.peer)).toEqual([P1]);
    expect(b.list().map((e) => e.peer)).toEqual([P1]);
    expect(b.refused).toMatchObject({ badSignature: 1, unchecked: 1 });
    expect(b.refusedTotal).toBe(2);
    // The good entry left unchecked comes again from an honest neighbour.
    expect(decodeBlocklist(b.onGossip(encodeBlocklist([e2]))!).map((e) => e.peer)).toEqual([P2]);
  });

  const packr = new Packr({ useRecords: false, mapsAsObjects: false });
  const sig = Buffer.alloc(64);
  it.each<[string, Uint8Array]>([
    ['not msgpack', Buffer.from([0xc1])],
    ['another format', packr.pack([2, []])],
    ['not a list', packr.pack({ a: 1 })],
    ['an entry of 3 fields', packr.pack([1, [[P1, 1, 'r']]])],
    ['a bad peer', packr.pack([1, [['xyz', 1, 'r', sig]]])],
    ['a string time', packr.pack([1, [[P1, '1', 'r', sig]]])],
    ['a long reason', packr.pack([1, [[P1, 1, 'r'.repeat(201), sig]]])],
    ['a short signature', packr.pack([1, [[P1, 1, 'r', Buffer.alloc(10)]]])],
    ['too many entries', packr.pack([1, new Array(MAX_ENTRIES + 1).fill([P1, 1, '', sig])])],
  ])('gossip with %s is refused whole (GossipDecodeError), counted, and changes nothing', (_what, data) => {
    const b = list();
    b.merge([e1]);
    expect(() => b.onGossip(data)).toThrow(GossipDecodeError);
    expect(b.refused.malformed).toBe(1);
    expect(b.list()).toEqual([e1]);
  });

  it('unicasts and broadcasts are refused', () => {
    const b = list();
    expect(() => b.onUnicast()).toThrow(GossipDecodeError);
    expect(() => b.onBroadcast()).toThrow(GossipDecodeError);
  });
});
