/**
 * SleeveState: where each peer's data goes (direct endpoint or the relay's) and the direct
 * path's state, on a fake UDP endpoint and a fake clock.
 */
import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { PlainCipher } from '../../src/router/crypto/frame-cipher.js';
import { SleevePeer } from '../../src/router/sleeve/peer.js';
import { SleeveState } from '../../src/router/sleeve/sleeve-state.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeNetwork } from '../fakes/fake-udp.js';

const MAX_PEERS = 8;

function setUp() {
  const udp = new FakeNetwork().endpoint('198.18.0.1', 6784);
  const setDest = vi.spyOn(udp, 'setDest');
  const clock = new FakeClock();
  const state = new SleeveState(
    { udp, cipher: new PlainCipher(), clock, logger: silentLogger },
    {
      name: 'self', id: 1, underlayMtu: 1500, vnetCapable: false, heartbeatMs: 500, deadAfterMs: 1750, maxPeers: MAX_PEERS,
      rekeyAfterMessages: 2 ** 48, rekeyOverlapMs: 10_000, keyLifetimeMs: 240_000, pendingKeyMs: 30_000,
    },
  );
  const changes: string[] = [];
  state.events = { pathChange: (p, up) => changes.push(`${p.name} ${up ? 'up' : 'down'}`), rekeyWanted: () => undefined };
  const add = (id: number, name: string): SleevePeer => {
    const peer = new SleevePeer(state.peers.length, id, name, state.maxDatagram, state.bundleCapacity);
    state.peers.push(peer);
    state.byId.set(id, peer);
    state.byIndex[peer.index] = peer;
    return peer;
  };
  return { state, clock, setDest, changes, add };
}

describe('SleeveState.retarget: where a peer\'s data goes', () => {
  // direct: the peer's direct endpoint is known; up: its direct path is proven; via: a relay is
  // named ('direct': the relay's own direct endpoint is known, 'none': it is not).
  const cases: { direct: boolean; up: boolean; via: 'absent' | 'direct' | 'none'; to: 'peer' | 'relay' | 'nowhere' }[] = [
    { direct: true, up: false, via: 'absent', to: 'peer' },
    { direct: true, up: true, via: 'absent', to: 'peer' },
    { direct: true, up: false, via: 'direct', to: 'relay' },
    { direct: true, up: true, via: 'direct', to: 'peer' },
    { direct: true, up: false, via: 'none', to: 'peer' },
    { direct: false, up: false, via: 'direct', to: 'relay' },
    { direct: false, up: false, via: 'none', to: 'nowhere' },
    { direct: false, up: false, via: 'absent', to: 'nowhere' },
  ];
  for (const c of cases) {
    it(`direct endpoint ${c.direct ? 'known' : 'unknown'}, path ${c.up ? 'up' : 'down'}, relay ${c.via}: data goes to the ${c.to}`, () => {
      const { state, setDest, add } = setUp();
      const peer = add(2, 'peer');
      const relay = add(3, 'relay');
      if (c.via === 'direct') state.setDirect(relay, { address: '198.18.0.3', port: 6784, family: 4 });
      if (c.direct) state.setDirect(peer, { address: '198.18.0.2', port: 6785, family: 4 });
      if (c.via !== 'absent') peer.via = relay;
      peer.pathUp = c.up;
      setDest.mockClear();
      state.retarget(peer);
      if (c.to === 'nowhere') {
        expect(peer.hasEndpoint).toBe(false);
        expect(setDest).not.toHaveBeenCalled();
        return;
      }
      const [address, port] = c.to === 'peer' ? ['198.18.0.2', 6785] : ['198.18.0.3', 6784];
      expect({ hasEndpoint: peer.hasEndpoint, address: peer.address, port: peer.port, viaRelay: peer.viaRelay }).toEqual({
        hasEndpoint: true, address, port, viaRelay: c.to === 'relay',
      });
      // The data slot moves only when the endpoint changes.
      if (setDest.mock.calls.length > 0) expect(setDest).toHaveBeenLastCalledWith(peer.index, address, port);
      setDest.mockClear();
      state.retarget(peer);
      expect(setDest).not.toHaveBeenCalled();
    });
  }
});

describe('SleeveState paths and direct endpoints', () => {
  it('a path change retargets the peer, counts the change and tells the owner once', () => {
    const { state, clock, changes, add } = setUp();
    const peer = add(2, 'peer');
    const relay = add(3, 'relay');
    state.setDirect(relay, { address: '198.18.0.3', port: 6784, family: 4 });
    state.setDirect(peer, { address: '198.18.0.2', port: 6784, family: 4 });
    peer.via = relay;
    state.retarget(peer);
    expect(peer.viaRelay).toBe(true);
    clock.advance(100);
    state.batchStart();
    state.setPath(peer, true);
    state.setPath(peer, true);
    expect(peer.viaRelay).toBe(false);
    expect(peer.address).toBe('198.18.0.2');
    state.setPath(peer, false);
    expect(peer.viaRelay).toBe(true);
    expect(peer.pathChanges).toBe(2);
    expect(changes).toEqual(['peer up', 'peer down']);
  });

  it('a direct endpoint sets the probe slot after the data slots; none takes the path down', () => {
    const { state, setDest, changes, add } = setUp();
    const peer = add(2, 'peer');
    state.setDirect(peer, { address: '198.18.0.2', port: 6784, family: 4 });
    expect(setDest).toHaveBeenCalledWith(MAX_PEERS + peer.index, '198.18.0.2', 6784);
    expect(Array.from(peer.directWords)).toEqual([((198 << 24) | (18 << 16) | 2) | 0, 0, 0, 0]);
    state.setPath(peer, true);
    state.setDirect(peer, undefined);
    expect(peer.hasDirect).toBe(false);
    expect(peer.pathUp).toBe(false);
    expect(peer.hasEndpoint).toBe(false);
    expect(changes).toEqual(['peer up', 'peer down']);
  });

  it('a relay\'s new direct endpoint moves the peers relayed through it', () => {
    const { state, add } = setUp();
    const relay = add(3, 'relay');
    const peers = [add(4, 'p4'), add(5, 'p5')];
    state.setDirect(relay, { address: '198.18.0.3', port: 6784, family: 4 });
    for (const p of peers) {
      p.via = relay;
      state.retarget(p);
    }
    state.setDirect(relay, { address: '198.18.0.33', port: 7000, family: 4 });
    expect(peers.map((p) => `${p.address}:${p.port} ${p.viaRelay}`)).toEqual(['198.18.0.33:7000 true', '198.18.0.33:7000 true']);
  });
});
