/**
 * Where the mesh enforces the blocklist and accepts a rotated secret: a revoked member's
 * connection is refused after its handshake (and told why), a connected one is closed by
 * `revoked`, its pair-key handshakes are refused; inbound handshakes accept any PSK of
 * `acceptPsks`, pair keys any prologue of `acceptPrologues`, and nothing else.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import type { PeerName } from '../../src/mesh/contracts.js';
import { generateIdentity, type Identity } from '../../src/mesh/identity.js';
import { MSG_GOSSIP } from '../../src/mesh/mesh-protocol.js';
import { PairKeys } from '../../src/mesh/pair-keys.js';
import { BLOCKLIST_CHANNEL, Blocklist } from '../../src/mesh/blocklist.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { PSK, dialAsMember, settle, startVictim, type Victim } from './mesh-harness.js';
import { generateKeyPairSync } from 'node:crypto';
import { signRevocation } from '../../src/mesh/revocation.js';

const victims: Victim[] = [];
afterEach(async () => {
  for (const v of victims.splice(0)) await v.stop();
});

const REMOTE = { address: '198.18.0.7', port: 40000 };

describe('the mesh and the blocklist', () => {
  it('a revoked member is refused after its handshake, hears the blocklist, and is never a neighbour', async () => {
    const revoked = new Set<PeerName>();
    const member = generateIdentity('stolen');
    revoked.add(member.name);
    const v = await startVictim({}, undefined, { isRevoked: (n) => revoked.has(n) });
    victims.push(v);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const blocklist = new Blocklist({ publicKey });
    blocklist.merge([signRevocation(privateKey, member.name, 1, 'stolen')]);
    v.mesh.newChannel(BLOCKLIST_CHANNEL, blocklist);
    const m = await dialAsMember(v, REMOTE, member);
    const closed = await m.closed;
    expect(closed.reason).toBe('closedByPeer');
    expect(v.mesh.closes.revoked).toBe(1);
    expect(v.mesh.neighbours()).toEqual([]);
    const told = m.messages.find((x) => x.type === MSG_GOSSIP && x.channel === BLOCKLIST_CHANNEL);
    expect(told).toBeDefined();
  });

  it('revoked() closes a connected member and keeps it out', async () => {
    const revoked = new Set<PeerName>();
    const v = await startVictim({}, undefined, { isRevoked: (n) => revoked.has(n) });
    victims.push(v);
    const m = await dialAsMember(v, REMOTE);
    await m.established;
    await settle('member is a neighbour', () => v.mesh.neighbours().includes(m.identity.name));
    revoked.add(m.identity.name);
    v.mesh.revoked(m.identity.name);
    await m.closed;
    expect(v.mesh.neighbours()).toEqual([]);
    expect(v.mesh.closes.revoked).toBe(1);
    const again = await dialAsMember(v, { address: '198.18.0.7', port: 40001 }, m.identity);
    await again.closed;
    expect(v.mesh.closes.revoked).toBe(2);
  });

  it('an unrevoked member is still taken', async () => {
    const v = await startVictim({}, undefined, { isRevoked: () => false });
    victims.push(v);
    const m = await dialAsMember(v, REMOTE);
    await m.established;
    await settle('member is a neighbour', () => v.mesh.neighbours().includes(m.identity.name));
  });
});

describe('secret rotation: mesh handshakes', () => {
  const NEW: typeof PSK = Buffer.alloc(32, 0x77);
  const OTHER: typeof PSK = Buffer.alloc(32, 0x11);

  it.each<[string, typeof PSK, boolean]>([
    ['the secret', PSK, true],
    ['an accepted secret', NEW, true],
    ['any other secret', OTHER, false],
  ])('a member dialling with %s: established %s', async (_what, psk, ok) => {
    const v = await startVictim({}, undefined, { acceptPsks: [NEW] });
    victims.push(v);
    const m = await dialAsMember(v, REMOTE, generateIdentity('member'), psk);
    if (ok) {
      await m.established;
      await settle('member is a neighbour', () => v.mesh.neighbours().includes(m.identity.name));
    } else {
      await m.closed;
      await settle('refused as a failed handshake', () => (v.mesh.closes.handshake ?? 0) + (v.mesh.closes.auth ?? 0) === 1);
      expect(v.mesh.neighbours()).toEqual([]);
    }
  });
});

describe('secret rotation: pair keys', () => {
  function node(identity: Identity, clock: FakeClock, prologue: Buffer, accept: Buffer[], net: Map<PeerName, PairKeys>, keys: Map<PeerName, Uint8Array>): PairKeys {
    const pk = new PairKeys(
      {
        identity, clock, logger: silentLogger,
        unicast: (to, data) => {
          const dst = net.get(to);
          if (dst === undefined) return false;
          queueMicrotask(() => dst.onMessage(identity.name, data));
          return true;
        },
        publicKeyOf: (name) => keys.get(name),
        install: () => undefined,
      },
      { prologue, acceptPrologues: accept },
    );
    net.set(identity.name, pk);
    keys.set(identity.name, identity.publicKey);
    return pk;
  }

  it.each<[string, Buffer[], boolean]>([
    ['accepts the initiator\'s prologue', [Buffer.from('old')], true],
    ['has only its own prologue', [], false],
  ])('a responder that %s: keys made %s', async (_what, accept, ok) => {
    const clock = new FakeClock();
    const net = new Map<PeerName, PairKeys>();
    const keys = new Map<PeerName, Uint8Array>();
    const a = generateIdentity('a');
    const b = generateIdentity('b');
    // The initiator is the smaller name: its handshake wins a collision.
    const [ini, res] = a.name < b.name ? [a, b] : [b, a];
    const pi = node(ini, clock, Buffer.from('old'), [], net, keys);
    const pr = node(res, clock, Buffer.from('new'), accept, net, keys);
    pi.setWanted([res.name]);
    for (let i = 0; i < 10; i++) {
      clock.advance(600);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(pi.hasKeys(res.name)).toBe(ok);
    expect(pr.hasKeys(ini.name)).toBe(ok);
    if (!ok) expect(pr.stats.authFailed).toBeGreaterThan(0);
  });
});
