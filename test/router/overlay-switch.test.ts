/** OverlaySwitch hands installed keys (the fast path's probe key) and removals to listeners. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PeerKeys } from '../../src/mesh/contracts.js';
import { peerIdFromPeerName } from '../../src/core/ids.js';
import { OverlaySwitch } from '../../src/router/overlay-switch.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeNetwork } from '../fakes/fake-udp.js';
import { makeNode, peerName } from './sleeve-harness.js';

const key = (s: string) => createHash('sha256').update(s).digest();

function keysFor(name: string, id: number, probe: Buffer): PeerKeys {
  return { name, id, tx: { keyId: 1, key: key(`tx${name}`) }, rx: { keyId: 2, key: key(`rx${name}`) }, probe };
}

describe('OverlaySwitch key listeners', () => {
  it('passes the keys the sleeve took while their bytes are valid, refuses a second peer on the same id, and reports removals', () => {
    const net = new FakeNetwork();
    const a = makeNode(net, new FakeClock(), { name: 'a', address: '198.18.0.1' });
    const overlay = new OverlaySwitch(a.sleeve);
    const got: { id: number; probe: string; confirmTx: boolean }[] = [];
    const removed: number[] = [];
    overlay.onKeys((k, confirmTx) => got.push({ id: k.id, probe: Buffer.from(k.probe).toString('hex'), confirmTx }));
    overlay.onRemoved((id) => removed.push(id));
    const b = peerName('b');
    const idB = peerIdFromPeerName(b);
    overlay.installKeys(keysFor(b, idB, key('p1')), false);
    overlay.installKeys(keysFor(b, idB, key('p2')), true);
    overlay.installKeys(keysFor(peerName('impostor'), idB, key('p3')), false); // same wire id, other name
    expect(got).toEqual([
      { id: idB, probe: key('p1').toString('hex'), confirmTx: false },
      { id: idB, probe: key('p2').toString('hex'), confirmTx: true },
    ]);
    overlay.removePeer(peerName('impostor'));
    expect(removed).toEqual([]);
    overlay.removePeer(b);
    overlay.removePeer(b);
    expect(removed).toEqual([idB]);
  });
});
