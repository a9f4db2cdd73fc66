/**
 * Attacks on reassembly by someone on the underlay without the secret: nothing unauthenticated
 * may take or evict a reassembly slot. Forged fragments (fresh counters, the victim's ids and
 * current key id, garbage content) and replayed fragments of delivered messages must leave real
 * messages intact.
 */
import { describe, expect, it } from 'vitest';
import { TYPE_FRAG } from '../../src/router/sleeve/wire.js';
import type { Datagram } from '../fakes/fake-udp.js';
import { startedPair, randomFrame, run, sendFrames } from '../router/sleeve-harness.js';

const ATTACKER = { address: '198.18.0.66', port: 6784 };
const A = { address: '198.18.0.1', port: 6784 };


describe('sleeve reassembly under attack', () => {
  it('8 forged fragments per message (fresh counters, right ids and key id) evict nothing: all 50 large frames arrive', async () => {
    const { net, clock, a, b } = await startedPair();
    let forged = 0;
    let fresh = 2 ** 40;
    // Behind every real first fragment, 8 forged first fragments of other messages.
    net.filter = (d: Datagram) => {
      if (d.fromAddress !== A.address || d.data[0] !== TYPE_FRAG || d.data.readUInt16BE(30) !== 0) return true;
      const out: Datagram[] = [d];
      for (let k = 0; k < 8; k++) {
        const f = Buffer.from(d.data);
        f.writeUInt32BE(Math.floor(fresh / 2 ** 32), 16);
        f.writeUInt32BE(fresh++ >>> 0, 20);
        for (let i = 40; i < f.length; i += 7) f[i] = (i * 13 + k) & 0xff;
        out.push({ fromAddress: ATTACKER.address, fromPort: ATTACKER.port, toAddress: d.toAddress, toPort: d.toPort, data: f });
        forged++;
      }
      return out;
    };
    for (let i = 0; i < 50; i++) {
      sendFrames(a, 'beta', [{ frame: randomFrame(20_000, i) }]);
      await run(net, clock, 10, 10);
    }
    expect(forged).toBe(400);
    expect(b.received.length).toBe(50);
    expect(b.received.every((r, i) => r.frame.equals(randomFrame(20_000, i)))).toBe(true);
    expect(b.sleeve.reassemblyDrops().fragEvicted).toBe(0);
    expect(b.sleeve.reassemblyDrops().fragAuth).toBe(400);
    expect(b.sleeve.reassemblyStatus().inUse).toBe(0);
  });

  it('replayed fragments of messages that never completed (one fragment lost) take no slot and evict nothing', async () => {
    const { net, clock, a, b } = await startedPair();
    // 8 messages each lose their last fragment on the way; the attacker keeps their first ones.
    const kept: Datagram[] = [];
    net.filter = (d: Datagram) => {
      if (d.fromAddress !== A.address || d.data[0] !== TYPE_FRAG) return true;
      if (d.data.readUInt16BE(30) === 0) kept.push(d);
      const last = Math.ceil(d.data.readUInt32BE(24) / d.data.readUInt16BE(28)) - 1;
      return d.data.readUInt16BE(30) !== last;
    };
    for (let i = 0; i < 8; i++) sendFrames(a, 'beta', [{ frame: randomFrame(20_000, 100 + i) }]);
    await run(net, clock, 2000); // the incomplete messages time out
    expect(b.received.length).toBe(0);
    expect(kept.length).toBe(8);
    expect(b.sleeve.reassemblyStatus().inUse).toBe(0);
    // Behind every real first fragment of 20 new messages, the 8 stale first fragments again.
    net.filter = (d: Datagram) => {
      if (d.fromAddress !== A.address || d.data[0] !== TYPE_FRAG || d.data.readUInt16BE(30) !== 0) return true;
      return [d, ...kept.map((k) => ({ ...k, fromAddress: ATTACKER.address, data: Buffer.from(k.data) }))];
    };
    for (let i = 0; i < 20; i++) {
      sendFrames(a, 'beta', [{ frame: randomFrame(20_000, i) }]);
      await run(net, clock, 10, 10);
    }
    expect(b.received.length).toBe(20);
    expect(b.received.every((r, i) => r.frame.equals(randomFrame(20_000, i)))).toBe(true);
    expect(b.sleeve.reassemblyDrops().fragEvicted).toBe(0);
    expect(b.sleeve.drops.replay).toBe(160);
  });
});
