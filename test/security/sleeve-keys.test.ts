/**
 * A replayed pair handshake makes the responder install keys that nobody else holds. Such keys
 * must stay pending: the working keys are neither replaced nor wiped, however often the replay
 * comes and however long after, and the keys nobody holds are never promoted.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type FakeClock, type FakeNetwork, connect, startedPair, randomFrame, run, sendFrames, type Node } from '../router/sleeve-harness.js';


/** What a responder's sleeve gets from a replayed INIT: fresh keys only the responder holds. */
function replayedHandshake(responder: Node, initiator: Node): void {
  responder.sleeve.installKeys(
    { name: initiator.peer, id: initiator.id, tx: { keyId: randomBytes(4).readUInt32BE(0) || 1, key: randomBytes(32) }, rx: { keyId: randomBytes(4).readUInt32BE(0) || 1, key: randomBytes(32) }, probe: randomBytes(32) },
    true,
  );
}

async function exchange(net: FakeNetwork, clock: FakeClock, a: Node, b: Node, seed: number): Promise<[number, number]> {
  const [ra, rb] = [a.received.length, b.received.length];
  sendFrames(a, 'beta', [{ frame: randomFrame(150, seed) }]);
  sendFrames(b, 'alpha', [{ frame: randomFrame(150, seed + 1) }]);
  await run(net, clock, 50);
  return [a.received.length - ra, b.received.length - rb];
}

describe('sleeve keys under a replayed handshake', () => {
  it('replayed handshakes at the responder never disturb working keys, now or after the overlap', async () => {
    const { net, clock, a, b } = await startedPair();
    const working = { rx: b.sleeve.peers[0]!.rx!.keyId, tx: b.sleeve.peers[0]!.tx!.keyId };
    expect(await exchange(net, clock, a, b, 1)).toEqual([1, 1]);
    for (let i = 0; i < 3; i++) replayedHandshake(b, a);
    expect(await exchange(net, clock, a, b, 3)).toEqual([1, 1]);
    await run(net, clock, 60_000); // past the rekey overlap and any pending time
    expect(await exchange(net, clock, a, b, 5)).toEqual([1, 1]);
    expect(b.sleeve.peers[0]!.rx!.keyId).toBe(working.rx);
    expect(b.sleeve.peers[0]!.tx!.keyId).toBe(working.tx);
    expect(b.sleeve.peers[0]!.pathUp).toBe(true);
    expect(b.sleeve.drops.unknownKey).toBe(0);
  });

  it('a real rekey after replays still goes through', async () => {
    const { net, clock, a, b } = await startedPair();
    replayedHandshake(b, a);
    connect(a, b, { epoch: 2, confirmB: true });
    expect(await exchange(net, clock, a, b, 7)).toEqual([1, 1]);
    await run(net, clock, 60_000);
    expect(await exchange(net, clock, a, b, 9)).toEqual([1, 1]);
    expect(b.sleeve.peers[0]!.rx!.keyId).toBe(2002);
    expect(b.sleeve.peers[0]!.tx!.keyId).toBe(1002);
  });
});
