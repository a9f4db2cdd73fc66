import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { isPeerName, peerIdFromPeerName } from '../../src/core/ids.js';
import type { PeerKeys } from '../../src/mesh/contracts.js';
import { IDENTITY_FILE, IdentityError, generateIdentity, loadOrCreateIdentity, type Identity } from '../../src/mesh/identity.js';
import { PairKeys } from '../../src/mesh/pair-keys.js';
import { PairWorld } from './pair-keys-world.js';
import { FakeClock } from '../fakes/fake-clock.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('identity', () => {
  it('is made on first start (0600, atomically) and the same on the next', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-id-'));
    dirs.push(dir);
    const state = join(dir, 'state');
    const a = loadOrCreateIdentity(state, 'n1');
    expect(a.created).toBe(true);
    expect(isPeerName(a.name)).toBe(true);
    expect(a.id).toBe(peerIdFromPeerName(a.name));
    expect(statSync(join(state, IDENTITY_FILE)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(state, IDENTITY_FILE)).length).toBe(32);
    const b = loadOrCreateIdentity(state, 'renamed');
    expect(b.created).toBe(false);
    expect(b.name).toBe(a.name);
    expect(b.publicKey.equals(a.publicKey)).toBe(true);
    expect(b.nickname).toBe('renamed');
  });

  it('two machines never share a name (keys are random, not from hostname or machine-id)', () => {
    expect(generateIdentity('same').name).not.toBe(generateIdentity('same').name);
  });

  it('refuses a damaged or world-readable key file with a message naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-id-'));
    dirs.push(dir);
    const file = join(dir, IDENTITY_FILE);
    writeFileSync(file, Buffer.alloc(5), { mode: 0o600 });
    expect(() => loadOrCreateIdentity(dir, 'n')).toThrow(IdentityError);
    expect(() => loadOrCreateIdentity(dir, 'n')).toThrow(/5 bytes, expected 32/);
    writeFileSync(file, Buffer.alloc(32, 1));
    chmodSync(file, 0o644);
    expect(() => loadOrCreateIdentity(dir, 'n')).toThrow(/readable by others/);
  });
});

/** Two or three PairKeys wired by an in-memory unicast that can drop, hold or replay messages. */
function world(names = ['a', 'b']) {
  const clock = new FakeClock();
  const ids = new Map<string, Identity>(names.map((n) => [n, generateIdentity(n)]));
  const byName = new Map<string, string>([...ids].map(([n, id]) => [id.name, n]));
  const installed = new Map<string, { keys: PeerKeys; confirm: boolean }[]>(names.map((n) => [n, []]));
  const queue: { from: string; to: string; data: Uint8Array }[] = [];
  const log: { from: string; to: string; data: Uint8Array }[] = [];
  let deliver = true;
  const nodes = new Map<string, PairKeys>();
  for (const n of names) {
    const me = ids.get(n)!;
    nodes.set(n, new PairKeys(
      {
        identity: me,
        clock,
        logger: silentLogger,
        unicast: (to, data) => {
          const m = { from: n, to: byName.get(to)!, data: Uint8Array.from(data) };
          log.push({ ...m, data: Uint8Array.from(data) }); // recv may work in place on what it is given
          if (deliver) queue.push(m);
          return true;
        },
        publicKeyOf: (name) => ids.get(byName.get(name)!)?.publicKey,
        install: (keys, confirm) => installed.get(n)!.push({ keys: { ...keys, tx: { ...keys.tx, key: Buffer.from(keys.tx.key) }, rx: { ...keys.rx, key: Buffer.from(keys.rx.key) }, probe: Buffer.from(keys.probe) }, confirm }),
      },
      { prologue: Buffer.from('test prologue'), rekeyAfterMs: 10_000 },
    ));
  }
  for (const n of nodes.values()) n.start();
  const flush = () => {
    while (queue.length > 0) {
      const m = queue.shift()!;
      nodes.get(m.to)!.onMessage(ids.get(m.from)!.name, m.data);
    }
  };
  const want = () => {
    for (const n of names) nodes.get(n)!.setWanted(names.filter((x) => x !== n).map((x) => ids.get(x)!.name));
  };
  return {
    clock, ids, nodes, installed, queue, log, flush, want,
    setDeliver: (v: boolean) => (deliver = v),
    name: (n: string) => ids.get(n)!.name,
  };
}

describe('pair keys (Noise IK over the mesh)', () => {
  it('gives both ends matching keys, one per direction, and names them with the receiver\'s key id', () => {
    const w = world();
    w.want();
    w.flush();
    const a = w.installed.get('a')!.at(-1)!.keys;
    const b = w.installed.get('b')!.at(-1)!.keys;
    expect(a.name).toBe(w.name('b'));
    expect(Buffer.from(a.tx.key).equals(Buffer.from(b.rx.key))).toBe(true);
    expect(Buffer.from(a.rx.key).equals(Buffer.from(b.tx.key))).toBe(true);
    expect(Buffer.from(a.tx.key).equals(Buffer.from(a.rx.key))).toBe(false);
    expect(a.tx.keyId).toBe(b.rx.keyId);
    expect(b.tx.keyId).toBe(a.rx.keyId);
    // The probe key is the same at both ends, and is neither traffic key.
    expect(Buffer.from(a.probe).equals(Buffer.from(b.probe))).toBe(true);
    expect(Buffer.from(a.probe).equals(Buffer.from(a.tx.key)) || Buffer.from(a.probe).equals(Buffer.from(a.rx.key))).toBe(false);
  });

  it('settles simultaneous handshakes: one wins, both end with the same keys', () => {
    const w = world();
    w.want(); // both initiate before anything is delivered
    expect(w.queue.filter((m) => m.data[1] === 1).length).toBeGreaterThanOrEqual(1);
    w.flush();
    const a = w.installed.get('a')!.at(-1)!.keys;
    const b = w.installed.get('b')!.at(-1)!.keys;
    expect(Buffer.from(a.tx.key).equals(Buffer.from(b.rx.key))).toBe(true);
    expect(Buffer.from(b.tx.key).equals(Buffer.from(a.rx.key))).toBe(true);
  });

  it('a simultaneous connect whose winning handshake went over the closed connection: started again at once when the connection is replaced', () => {
    // a (the smaller name) and b start at once; a's INIT is lost with the connection that lost the
    // tie-break, so a ignores b's INIT (its own should win) and b never answers: a stall.
    const stalled = (w: PairWorld) => {
      w.want();
      w.queue.splice(0, w.queue.length, ...w.queue.filter((m) => m.from !== 'a'));
      w.flush();
      expect(w.nodes.get('a')!.stats.collisions).toBe(1);
    };
    const control = new PairWorld();
    stalled(control);
    control.run(1000);
    expect(control.nodes.get('a')!.status()[0]!.state).not.toBe('established');
    expect(control.nodes.get('b')!.status()[0]!.state).not.toBe('established');

    const w = new PairWorld();
    stalled(w);
    // The mesh tells both ends their connection was replaced: a starts again over the one that stays.
    w.nodes.get('a')!.connectionReplaced(w.name('b'));
    w.nodes.get('b')!.connectionReplaced(w.name('a'));
    w.flush();
    expect(w.nodes.get('a')!.status()[0]!.state).toBe('established');
    expect(w.nodes.get('b')!.status()[0]!.state).toBe('established');
    expect(w.nodes.get('a')!.stats.restarted + w.nodes.get('b')!.stats.restarted).toBeGreaterThanOrEqual(1);
    expect(w.talks('a', 'b')).toBe(true);
    // Nothing in flight, nothing wanted: nothing to start again.
    const before = w.nodes.get('a')!.stats.initiated;
    w.nodes.get('a')!.connectionReplaced(w.name('b'));
    expect(w.nodes.get('a')!.stats.initiated).toBe(before);
  });

  it('rekeys on schedule; the responder installs with confirmation, the initiator without', () => {
    const w = world();
    w.want();
    w.flush();
    const n = (x: string) => w.installed.get(x)!.length;
    const [a0, b0] = [n('a'), n('b')];
    for (let t = 0; t < 16_000; t += 250) {
      w.clock.advance(250); // past 1.5 × the rekey period: whoever is designated has started
      w.flush();
    }
    expect(n('a')).toBeGreaterThan(a0);
    expect(n('b')).toBeGreaterThan(b0);
    const last = [w.installed.get('a')!.at(-1)!, w.installed.get('b')!.at(-1)!];
    expect(last.map((l) => l.confirm).sort()).toEqual([false, true]);
    expect(Buffer.from(last[0]!.keys.tx.key).equals(Buffer.from(last[1]!.keys.rx.key))).toBe(true);
    const st = w.nodes.get('a')!.status()[0]!;
    expect(st.rekeys).toBeGreaterThanOrEqual(1);
  });

  it('ignores a replayed INIT, a forged message and a handshake claimed by another peer', () => {
    const w = world(['a', 'b', 'c']);
    w.nodes.get('a')!.setWanted([w.name('b')]);
    w.flush();
    w.nodes.get('b')!.setWanted([w.name('a')]); // b has keys already: nothing to start
    w.flush();
    const init = w.log.find((m) => m.from === 'a' && m.to === 'b' && m.data[1] === 1)!;
    const installedB = w.installed.get('b')!.length;
    const b = w.nodes.get('b')!;
    b.onMessage(w.name('a'), init.data); // replay
    expect(b.stats).toMatchObject({ stale: 1, authFailed: 0 });
    b.onMessage(w.name('c'), init.data); // c claims a's handshake
    expect(b.stats.authFailed).toBe(1);
    const forged = Uint8Array.from(init.data);
    forged[forged.length - 1]! ^= 1;
    b.onMessage(w.name('a'), forged);
    expect(b.stats.authFailed).toBe(2);
    b.onMessage(w.name('a'), new Uint8Array([1, 2, 3]));
    expect(b.stats.garbled).toBe(1);
    expect(w.installed.get('b')!.length).toBe(installedB);
  });

  it('retries with backoff when nothing answers, and reports the failure', () => {
    const w = world();
    w.setDeliver(false);
    w.nodes.get('a')!.setWanted([w.name('b')]);
    w.clock.advance(20_000);
    const st = w.nodes.get('a')!.status()[0]!;
    expect(st.state).not.toBe('established');
    expect(st.failures).toBeGreaterThanOrEqual(2);
    expect(st.lastError).toMatch(/no response/);
    const inits = w.log.filter((m) => m.from === 'a').length;
    expect(inits).toBeLessThan(12); // backoff, not one per tick
    w.setDeliver(true);
    w.nodes.get('b')!.setWanted([w.name('a')]);
    for (let t = 0; t < 35_000; t += 250) {
      w.clock.advance(250); // messages now arrive within a tick: the next attempt succeeds
      w.flush();
    }
    expect(w.nodes.get('a')!.status()[0]!.state).toBe('established');
    expect(w.nodes.get('b')!.status()[0]!.state).toBe('established');
  });
});

describe('pair keys: the rekey schedule against the keys\' hard lifetime', () => {
  it('renews keys before they expire although the first rekey attempts of both sides are lost', () => {
    // Rekey every 4 s, so keys expire after 8 s. Everything sent between 3.5 s and 6.5 s is lost:
    // the smaller name's attempts at 4, 5 and 6 s and the larger name's at 5 s all fail.
    const w = new PairWorld(['a', 'b'], { rekeyAfterMs: 4000 });
    w.want();
    w.flush();
    expect(w.talks('a', 'b')).toBe(true);
    const expiries: number[] = [];
    let t = 0;
    w.run(12_000, 250, () => {
      t += 250;
      w.deliver = t < 3500 || t >= 6500;
      for (const n of ['a', 'b']) expiries.push(w.nodes.get(n)!.status()[0]!.expiresInMs!);
      expect(w.talks('a', 'b')).toBe(true);
    });
    expect(Math.min(...expiries)).toBeGreaterThan(0);
    for (const n of ['a', 'b']) {
      const st = w.nodes.get(n)!.status()[0]!;
      expect(st.state).toBe('established');
      expect(st.rekeys).toBeGreaterThanOrEqual(2);
    }
    expect(w.nodes.get('a')!.status()[0]!.failures).toBeGreaterThanOrEqual(3);
  });

  it('shows key age and expiry; keys past their lifetime show as expired', () => {
    const w = new PairWorld(['a', 'b'], { rekeyAfterMs: 4000 });
    w.want();
    w.flush();
    w.clock.advance(1000);
    expect(w.nodes.get('a')!.status()[0]).toMatchObject({ state: 'established', keyAgeMs: 1000, expiresInMs: 7000 });
    w.deliver = false;
    w.clock.advance(7000);
    expect(w.nodes.get('a')!.status()[0]).toMatchObject({ state: 'expired', keyAgeMs: 8000, expiresInMs: 0 });
  });
});

describe('pair keys: who is answered', () => {
  it('drops an INIT from a peer whose key it does not know (no topology record, no connection)', () => {
    const w = new PairWorld(['a', 'b', 'c']);
    w.unknownKeys.add('b c');
    w.nodes.get('c')!.setWanted([w.name('b')]);
    w.flush();
    const b = w.nodes.get('b')!;
    expect(b.stats.unknownPeer).toBe(1);
    expect(w.sent('b', 'c', 2)).toHaveLength(0);
    expect(w.overlays.get('b')!.installs).toBe(0);
    expect(b.status()).toEqual([]);
  });

  it('answers INITs that are not newer at most once per gap, and never against its own handshake in flight', () => {
    const w = new PairWorld();
    w.nodes.get('a')!.setWanted([w.name('b')]);
    w.flush();
    const init = w.sent('a', 'b', 1).at(-1)!;
    const b = w.nodes.get('b')!;
    b.onMessage(w.name('a'), Uint8Array.from(init.data));
    expect(b.stats).toMatchObject({ stale: 1, staleAnswered: 0 });
    w.clock.advance(1000);
    b.onMessage(w.name('a'), Uint8Array.from(init.data));
    expect(b.stats).toMatchObject({ stale: 1, staleAnswered: 1 });
    w.queue.length = 0;
    w.clock.advance(1000);
    w.deliver = false;
    b.rekeyNow(w.name('a')); // b's own handshake is in flight
    b.onMessage(w.name('a'), Uint8Array.from(init.data));
    expect(b.stats).toMatchObject({ stale: 2, staleAnswered: 1 });
  });
});

describe('pair keys: asked to rekey by the overlay', () => {
  it('starts at once when nothing is in flight, and keeps to the retry backoff however often it is asked', () => {
    const w = new PairWorld(['a', 'b'], { rekeyAfterMs: 10_000 });
    w.want();
    w.flush();
    const a = w.nodes.get('a')!;
    const inits = () => w.sent('a', 'b', 1).length;
    const before = inits();
    a.rekeyNow(w.name('b'));
    expect(inits()).toBe(before + 1);
    w.flush();
    expect(a.status()[0]!.rekeys).toBe(1);
    w.deliver = false; // b unreachable: the overlay asks on every tick (expired keys, say)
    for (let i = 0; i < 300; i++) {
      a.rekeyNow(w.name('b'));
      w.clock.advance(100);
    }
    // 30 s: each answer awaited 1.25 s (noticed on the next 500 ms tick), then 1.25 s of backoff
    // before the next try: about one try every 2.8 s, not one as soon as the last one failed
    expect(inits() - before).toBeLessThanOrEqual(12);
    expect(a.status()[0]!.failures).toBeGreaterThanOrEqual(9);
  });
});
