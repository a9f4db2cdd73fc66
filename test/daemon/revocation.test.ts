/**
 * The daemon's blocklist (Revocation): POST /v1/revoke, blocklist.json written atomically and read
 * at start, a router that finds itself revoked (at start: refuses; at run: onFatal), what a peer's
 * revocation does to the mesh, status; and the IPAM cluster id pinned across a secret rotation.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import type { WeftError } from '../../src/core/errors.js';
import { encodeBlocklist } from '../../src/mesh/blocklist.js';
import type { Mesh } from '../../src/mesh/mesh.js';
import { entryToJson, signRevocation } from '../../src/mesh/revocation.js';
import { BLOCKLIST_FILE, Revocation } from '../../src/daemon/revocation.js';
import { CLUSTER_ID_FILE, clusterIdOf, ipamClusterId } from '../../src/daemon/cluster-secrets.js';

const SELF = '1111222233334444';
const PEER = '5555666677778888';
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-revocation-'));
  dirs.push(d);
  return d;
}

/** The part of the mesh Revocation uses: a channel, and `revoked`. */
function fakeMesh() {
  const revoked: string[] = [];
  const published: Uint8Array[] = [];
  const mesh = {
    revoked: (p: string) => revoked.push(p),
    newChannel: () => ({ start: () => undefined, stop: () => undefined, publish: (d: Uint8Array) => published.push(d) }),
  } as unknown as Mesh;
  return { mesh, revoked, published };
}

function make(dir: string, withKey = true) {
  const fatal: WeftError[] = [];
  const r = new Revocation({ logger: silentLogger, self: SELF, onFatal: (e) => fatal.push(e), nicknameOf: (p) => (p === PEER ? 'n2' : undefined) }, { stateDir: dir, publicKey: withKey ? publicKey : undefined });
  const m = fakeMesh();
  r.attach(m.mesh);
  return { r, fatal, ...m };
}

describe('the daemon blocklist', () => {
  it('POST /v1/revoke: checked, enforced, gossiped, written to blocklist.json, in status', () => {
    const dir = stateDir();
    const { r, revoked, published } = make(dir);
    const e = signRevocation(privateKey, PEER, 1_700_000_000_000, 'stolen');
    expect(r.revoke(entryToJson(e))).toEqual({ peer: PEER, added: true });
    expect(revoked).toEqual([PEER]);
    expect(published).toHaveLength(1);
    expect(r.isRevoked(PEER)).toBe(true);
    const file = JSON.parse(readFileSync(join(dir, BLOCKLIST_FILE), 'utf8')) as { entries: unknown[] };
    expect(file.entries).toEqual([entryToJson(e)]);
    expect(r.revoke(entryToJson(e))).toEqual({ peer: PEER, added: false });
    expect(r.status()).toMatchObject({ enabled: true, refused: 0, entries: [{ peer: PEER, nickname: 'n2', reason: 'stolen' }] });
  });

  it.each<[string, (dir: string) => { body: unknown; withKey?: boolean }, RegExp]>([
    ['a malformed body', () => ({ body: { peer: 'x' } }), /peer name/],
    ['a forged signature', () => ({ body: { ...entryToJson(signRevocation(privateKey, PEER, 1, 'a')), reason: 'b' } }), /does not verify/],
    ['no key on this router', () => ({ body: entryToJson(signRevocation(privateKey, PEER, 1, 'a')), withKey: false }), /no revocation public key/],
    ['this router itself', () => ({ body: entryToJson(signRevocation(privateKey, SELF, 1, 'a')) }), /this router/],
  ])('POST /v1/revoke refuses %s and changes nothing', (_what, make1, why) => {
    const dir = stateDir();
    const { body, withKey } = make1(dir);
    const { r, revoked } = make(dir, withKey ?? true);
    expect(() => r.revoke(body)).toThrow(why);
    expect(revoked).toEqual([]);
    expect(r.status().entries).toEqual([]);
    expect(existsSync(join(dir, BLOCKLIST_FILE))).toBe(false);
  });

  it('gossip naming this router: onFatal with ERR_REVOKED (once); the file then keeps it from starting', () => {
    const dir = stateDir();
    const { r, fatal } = make(dir);
    const e = signRevocation(privateKey, SELF, 5, 'bye');
    r.blocklist.onGossip(encodeBlocklist([e]));
    r.blocklist.onGossip(encodeBlocklist([e]));
    expect(fatal.map((f) => f.code)).toEqual(['ERR_REVOKED']);
    expect(() => make(dir)).toThrow(expect.objectContaining({ code: 'ERR_REVOKED' }) as Error);
    // Without the key the file is not read (nothing could check it).
    expect(make(dir, false).r.status().entries).toEqual([]);
  });

  it('at start the file is read: valid entries enforced, bad ones dropped and counted', () => {
    const dir = stateDir();
    const good = entryToJson(signRevocation(privateKey, PEER, 1, 'ok'));
    const forged = { ...entryToJson(signRevocation(privateKey, '9999999999999999', 1, 'x')), reason: 'changed' };
    writeFileSync(join(dir, BLOCKLIST_FILE), JSON.stringify({ version: 1, entries: [good, forged, { peer: 1 }] }));
    const { r } = make(dir);
    expect(r.isRevoked(PEER)).toBe(true);
    expect(r.status()).toMatchObject({ refused: 2, refusedBy: { badSignature: 1, malformed: 1 } });
  });

  it.each<[string, string]>([
    ['not JSON', '{'],
    ['no entries list', '{"version":1}'],
  ])('a blocklist file that is %s stops the start with ERR_BLOCKLIST_FILE', (_what, text) => {
    const dir = stateDir();
    writeFileSync(join(dir, BLOCKLIST_FILE), text);
    expect(() => make(dir)).toThrow(expect.objectContaining({ code: 'ERR_BLOCKLIST_FILE' }) as Error);
  });
});

describe('the IPAM cluster id across a secret rotation', () => {
  const OLD = Buffer.alloc(32, 1);
  const NEW = Buffer.alloc(32, 2);

  it('is pinned at first use and kept when the secret changes', () => {
    const dir = stateDir();
    expect(ipamClusterId(dir, [OLD], silentLogger)).toBe(clusterIdOf(OLD));
    expect(readFileSync(join(dir, CLUSTER_ID_FILE), 'utf8').trim()).toBe(clusterIdOf(OLD));
    expect(ipamClusterId(dir, [NEW, OLD], silentLogger)).toBe(clusterIdOf(OLD));
    expect(ipamClusterId(dir, [NEW], silentLogger)).toBe(clusterIdOf(OLD));
  });

  it('a fresh state dir takes the first secret; a bad pin is an error naming the file', () => {
    const dir = stateDir();
    expect(ipamClusterId(dir, [NEW, OLD], silentLogger)).toBe(clusterIdOf(NEW));
    writeFileSync(join(dir, CLUSTER_ID_FILE), 'nonsense');
    expect(() => ipamClusterId(dir, [NEW], silentLogger)).toThrow(/ipam-cluster-id/);
  });
});
