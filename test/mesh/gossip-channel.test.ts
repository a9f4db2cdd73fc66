import { describe, expect, it } from 'vitest';
import type { Gossiper, GossipTransport, PeerName } from '../../src/mesh/contracts.js';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import { totalTraffic } from '../../src/api/types.js';
import { GossipChannel } from '../../src/mesh/gossip-channel.js';
import { Topology, TopologyState } from '../../src/mesh/topology.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { testAuthor } from './test-authors.js';

interface Sent {
  channel: string;
  data: Uint8Array;
  except: PeerName | undefined;
}

class RecordingTransport implements GossipTransport {
  readonly sent: Sent[] = [];
  readonly unicasts: { to: PeerName; data: Uint8Array }[] = [];
  readonly broadcasts: Uint8Array[] = [];
  gossipToNeighbours(channel: string, data: Uint8Array, except?: PeerName): void {
    this.sent.push({ channel, data, except });
  }
  unicast(_channel: string, to: PeerName, data: Uint8Array): boolean {
    this.unicasts.push({ to, data });
    return true;
  }
  broadcast(_channel: string, data: Uint8Array): void {
    this.broadcasts.push(data);
  }
}

/** A gossiper without coalescing support: its deltas echo the input. */
class EchoGossiper implements Gossiper {
  state = Uint8Array.of(1, 2, 3);
  onUnicast(): void {}
  onBroadcast(_source: PeerName, data: Uint8Array): Uint8Array | undefined {
    return data;
  }
  gossip(): Uint8Array | undefined {
    return this.state;
  }
  onGossip(data: Uint8Array): Uint8Array | undefined {
    if (data[0] === 0xff) throw new GossipDecodeError('echo', 'bad first byte');
    return data.length > 0 ? data : undefined;
  }
}

const X = 'aaaaaaaaaaaaaaaa';
const Y = 'bbbbbbbbbbbbbbbb';

function topo(i: number, clock: FakeClock) {
  const a = testAuthor(`channel-peer-${i}`);
  return new Topology({ clock, signer: a.signer }, { publicKey: a.publicKey, nickname: `n${i}` });
}

describe('GossipChannel', () => {
  it('gossips full state every interval, jittered within ±jitter', () => {
    const clock = new FakeClock();
    const transport = new RecordingTransport();
    const g = new EchoGossiper();
    const ch = new GossipChannel({ gossiper: g, transport, clock, random: () => 0 }, { channel: 'echo', intervalMs: 1000, jitter: 0.2 });
    ch.start();
    clock.advance(799);
    expect(transport.sent).toHaveLength(0);
    clock.advance(1);
    expect(transport.sent).toEqual([{ channel: 'echo', data: g.state, except: undefined }]);
    clock.advance(800 * 4);
    expect(transport.sent).toHaveLength(5);
    ch.stop();
    clock.advance(10_000);
    expect(transport.sent).toHaveLength(5);
    expect(ch.stats().sent.periodic).toEqual({ messages: 5, bytes: 15 });
  });

  it('uses the whole jitter range', () => {
    const clock = new FakeClock();
    const transport = new RecordingTransport();
    const ch = new GossipChannel({ gossiper: new EchoGossiper(), transport, clock, random: () => 0.999999 }, { channel: 'echo', intervalMs: 1000, jitter: 0.2 });
    ch.start();
    clock.advance(1199);
    expect(transport.sent).toHaveLength(0);
    clock.advance(1);
    expect(transport.sent).toHaveLength(1);
    ch.stop();
  });

  it('relays what gossip changed to every neighbour but the sender (no coalescing without mergeDeltas)', () => {
    const clock = new FakeClock();
    const transport = new RecordingTransport();
    const ch = new GossipChannel({ gossiper: new EchoGossiper(), transport, clock }, { channel: 'echo' });
    ch.receiveGossip(X, Uint8Array.of(9));
    ch.receiveGossip(Y, new Uint8Array(0));
    expect(transport.sent).toEqual([{ channel: 'echo', data: Uint8Array.of(9), except: X }]);
    const s = ch.stats();
    expect(s.received.gossip).toEqual({ messages: 2, bytes: 1 });
    expect(s.sent.delta).toEqual({ messages: 1, bytes: 1 });
  });

  it('relays to the sender too when told the gossip came on a connection other than the one held to it', () => {
    const transport = new RecordingTransport();
    const ch = new GossipChannel({ gossiper: new EchoGossiper(), transport, clock: new FakeClock() }, { channel: 'echo' });
    ch.receiveGossip(X, Uint8Array.of(7), true);
    expect(transport.sent).toEqual([{ channel: 'echo', data: Uint8Array.of(7), except: undefined }]);
  });

  it('counts and rethrows malformed gossip, relaying nothing', () => {
    const transport = new RecordingTransport();
    const ch = new GossipChannel({ gossiper: new EchoGossiper(), transport, clock: new FakeClock() }, { channel: 'echo' });
    expect(() => ch.receiveGossip(X, Uint8Array.of(0xff))).toThrow(GossipDecodeError);
    expect(() => ch.receiveUnicast(X, Uint8Array.of(0xff))).not.toThrow(); // the echo gossiper ignores unicasts
    expect(transport.sent).toEqual([]);
    expect(ch.stats().decodeErrors).toBe(1);
  });

  it('hands full state to a new neighbour and counts it', () => {
    const g = new EchoGossiper();
    const ch = new GossipChannel({ gossiper: g, transport: new RecordingTransport(), clock: new FakeClock() }, { channel: 'echo' });
    expect(ch.neighbourConnected(X)).toBe(g.state);
    expect(ch.stats().sent.connect).toEqual({ messages: 1, bytes: 3 });
  });

  it('passes unicasts and broadcasts through, counted', () => {
    const transport = new RecordingTransport();
    const ch = new GossipChannel({ gossiper: new EchoGossiper(), transport, clock: new FakeClock() }, { channel: 'echo' });
    expect(ch.unicast(X, Uint8Array.of(1))).toBe(true);
    ch.broadcast(Uint8Array.of(1, 2));
    expect(ch.receiveBroadcast(Y, Uint8Array.of(5))).toEqual(Uint8Array.of(5));
    const s = ch.stats();
    expect(totalTraffic(s.sent)).toEqual({ messages: 2, bytes: 3 });
    expect(s.received.broadcast).toEqual({ messages: 1, bytes: 1 });
    expect(transport.unicasts).toHaveLength(1);
    expect(transport.broadcasts).toHaveLength(1);
  });
});

describe('GossipChannel with a Topology', () => {
  it('sends local changes to every neighbour', () => {
    const clock = new FakeClock();
    const transport = new RecordingTransport();
    const t = topo(0, clock);
    const ch = new GossipChannel({ gossiper: t, transport, clock }, { channel: 'topology' });
    ch.start();
    t.updateSelf({ endpoints: ['198.18.0.1:6784'] });
    clock.advance(0);
    expect(transport.sent).toHaveLength(1);
    expect(transport.sent[0]!.except).toBeUndefined();
    expect(TopologyState.decode(transport.sent[0]!.data).get(t.name)?.endpoints).toEqual(['198.18.0.1:6784']);
    ch.stop();
  });

  it('coalesces deltas of one tick: except the sender when all came from it, else to everyone', () => {
    const clock = new FakeClock();
    const transport = new RecordingTransport();
    const t = topo(0, clock);
    const ch = new GossipChannel({ gossiper: t, transport, clock }, { channel: 'topology' });
    const [a, b, c] = [topo(1, clock), topo(2, clock), topo(3, clock)];
    ch.receiveGossip(X, a.gossip());
    ch.receiveGossip(X, b.gossip());
    expect(transport.sent).toEqual([]);
    clock.advance(0);
    expect(transport.sent).toHaveLength(1);
    expect(transport.sent[0]!.except).toBe(X);
    expect(TopologyState.decode(transport.sent[0]!.data).size).toBe(2);
    ch.receiveGossip(X, c.gossip());
    a.updateSelf({ nickname: 'again' });
    ch.receiveGossip(Y, a.gossip());
    clock.advance(0);
    expect(transport.sent).toHaveLength(2);
    expect(transport.sent[1]!.except).toBeUndefined();
    expect(TopologyState.decode(transport.sent[1]!.data).records().map((r) => r.name)).toEqual([a.name, c.name].sort());
    expect(ch.stats().coalesced).toBe(2);
  });

  it('sends each delta at once when coalescing is off', () => {
    const clock = new FakeClock();
    const transport = new RecordingTransport();
    const t = topo(0, clock);
    const ch = new GossipChannel({ gossiper: t, transport, clock }, { channel: 'topology', coalesceMs: -1 });
    ch.receiveGossip(X, topo(1, clock).gossip());
    ch.receiveGossip(Y, topo(2, clock).gossip());
    expect(transport.sent.map((s) => s.except)).toEqual([X, Y]);
  });

  it('periodic full state subsumes pending deltas', () => {
    const clock = new FakeClock();
    const transport = new RecordingTransport();
    const t = topo(0, clock);
    const ch = new GossipChannel({ gossiper: t, transport, clock }, { channel: 'topology', coalesceMs: 100 });
    ch.receiveGossip(X, topo(1, clock).gossip());
    ch.gossipNow();
    clock.advance(200);
    expect(transport.sent).toHaveLength(1);
    expect(transport.sent[0]!.data).toBe(t.gossip());
    expect(ch.stats().coalesced).toBe(1);
  });

  it('two topologies joined by channels converge', () => {
    const clock = new FakeClock();
    const peers = [0, 1].map((i) => {
      const t = topo(i, clock);
      const transport: GossipTransport = {
        gossipToNeighbours: (_c, data, except) => {
          const other = peers[1 - i]!;
          if (other.t.name !== except) queue.push(() => other.ch.receiveGossip(t.name, data));
        },
        unicast: () => false,
        broadcast: () => undefined,
      };
      return { t, ch: new GossipChannel({ gossiper: t, transport, clock }, { channel: 'topology' }) };
    });
    const queue: (() => void)[] = [];
    const [p, q] = peers as [(typeof peers)[0], (typeof peers)[0]];
    p.ch.start();
    q.ch.start();
    p.t.updateSelf({ connections: [{ peer: q.t.name, established: true }] });
    q.t.updateSelf({ connections: [{ peer: p.t.name, established: true }] });
    queue.push(() => q.ch.receiveGossip(p.t.name, p.ch.neighbourConnected(q.t.name)!));
    queue.push(() => p.ch.receiveGossip(q.t.name, q.ch.neighbourConnected(p.t.name)!));
    for (let i = 0; i < 100 && (queue.length > 0 || i < 3); i++) {
      clock.advance(0);
      for (const f of queue.splice(0)) f();
    }
    expect(Buffer.from(p.t.gossip())).toEqual(Buffer.from(q.t.gossip()));
    expect(p.t.peers()).toHaveLength(2);
    p.ch.stop();
    q.ch.stop();
  });
});
