/**
 * Attack: one pod sends from thousands of source MACs. Before the hardening its router learned
 * and claimed them all, announced a MAC record of more than 4,096 MACs, and every peer refused the
 * whole "macs" gossip from it (and the mesh closed the connection, on every reconnect): one pod cut
 * its node off. Now the router learns and claims at most MAX_LOCAL_MACS local MACs; frames from
 * further source MACs are dropped and counted, and peers keep accepting the node's record.
 */
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/mesh/identity.js';
import { MacOwners } from '../../src/mesh/mac-owners.js';
import { LearningSwitch } from '../../src/router/learning-switch.js';
import { silentLogger } from '../../src/core/logger.js';
import * as mac from '../../src/core/mac.js';
import { FakeTap } from '../fakes/fake-tap.js';
import { FakeClock, startedPair, run } from '../router/sleeve-harness.js';

// (Only APIs that existed before the fix, so the test shows the attack working against it.)
const { macToString } = mac;
/** src/core/mac.ts MAX_LOCAL_MACS. */
const MAX_LOCAL_MACS = 1024;

const ATTACK_MACS = 5000;
const POD = 0x024000000102; // the honest pod on node a
const attackerMac = (i: number) => 0x0a0000000000 + i;

/** A broadcast frame (ARP-sized) from `src`, its last payload byte `tag`. */
function broadcastFrom(src: number, tag: number): Buffer {
  const f = Buffer.alloc(60);
  f.fill(0xff, 0, 6);
  f.writeUIntBE(src, 6, 6);
  f.writeUInt16BE(0x0806, 12);
  f[59] = tag;
  return f;
}

describe('attack: one pod floods its node with source MACs', () => {
  it('the router learns at most the cap, drops and counts frames from further MACs, and the honest pod still gets through', async () => {
    const { net, clock, a, b } = await startedPair();
    const tap = new FakeTap({ vnetHdr: false, maxBatch: 64 });
    const router = new LearningSwitch({ tap, sleeve: a.sleeve, clock, logger: silentLogger });
    router.start();

    tap.inject(broadcastFrom(POD, 1));
    for (let i = 0; i < ATTACK_MACS; i++) tap.inject(broadcastFrom(attackerMac(i), 2));
    for (let k = 0; k < 10; k++) tap.inject(broadcastFrom(POD, 3));
    await run(net, clock, 2000);

    const fromPod = b.received.filter((r) => r.frame.readUIntBE(6, 6) === POD);
    const fromAttacker = b.received.filter((r) => r.frame[59] === 2);
    expect(fromPod).toHaveLength(11);
    expect(fromAttacker).toHaveLength(MAX_LOCAL_MACS - 1);
    expect(router.drops.localMacCap).toBe(ATTACK_MACS - (MAX_LOCAL_MACS - 1));
    expect(router.macs.localSize).toBe(MAX_LOCAL_MACS);
    expect(mac.MAX_LOCAL_MACS).toBe(MAX_LOCAL_MACS);
    router.stop();
    a.sleeve.stop();
    b.sleeve.stop();
  });

  it('the node claims at most the cap, and a peer keeps accepting its MAC record (and the rest of the message)', () => {
    const clock = new FakeClock();
    const [na, nb, nc] = [generateIdentity('a'), generateIdentity('b'), generateIdentity('c')];
    const a = new MacOwners({ clock, signer: na.signer }, { self: na.name, publicKey: na.publicKey });
    const b = new MacOwners({ clock, signer: nb.signer }, { self: nb.name, publicKey: nb.publicKey });
    const c = new MacOwners({ clock, signer: nc.signer }, { self: nc.name, publicKey: nc.publicKey });
    c.setLocal(['02:40:00:00:03:02']);
    a.onGossip(c.gossip());
    // What the bridge shows node a: the honest pod's MAC first, then the attacker's.
    a.setLocal([macToString(POD)]);
    a.setLocal([macToString(POD), ...Array.from({ length: ATTACK_MACS }, (_, i) => macToString(attackerMac(i)))]);
    let err: unknown;
    try {
      b.onGossip(a.gossip());
    } catch (e) {
      err = e;
    }
    expect(err).toBeUndefined();
    expect(b.owner(macToString(POD))).toBe(na.name);
    expect(b.owner('02:40:00:00:03:02')).toBe(nc.name);
    expect(b.macsOf(na.name).length).toBeLessThanOrEqual(MAX_LOCAL_MACS);
  });
});
