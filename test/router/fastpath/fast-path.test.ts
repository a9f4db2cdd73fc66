/**
 * FastPath's kernel programming, with two routers' FastPaths joined by an in-memory probe wire
 * and fake netlink state (the real kernel is covered by test/integration/fastpath*.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/core/logger.js';
import { FLOOD_MAC, type BridgeFdbEntry, type FdbEntry, type Netlink } from '../../../src/platform/netlink.js';
import { FastPath, type MacDirectory } from '../../../router/fastpath/fast-path.js';
import { readProbe } from '../../../router/fastpath/probe-frame.js';
import { FakeClock } from '../../fakes/fake-clock.js';
import { FakeTap } from '../../fakes/fake-tap.js';

const VXLAN = 'weft-vx';
const TAP = 'weft-tap';

/** The part of the kernel FastPath touches: the VXLAN device's entries and the bridge's. */
class FakeKernel {
  readonly vxlan = new Map<string, FdbEntry>();
  readonly bridge = new Map<string, BridgeFdbEntry>();

  netlink(): Netlink {
    const ok = () => Promise.resolve();
    const key = (e: FdbEntry) => `${e.mac}@${e.dst}`;
    const handled: Partial<Netlink> = {
      ensureVxlan: (s) => Promise.resolve({ name: s.name, vni: s.vni, port: s.port, local: s.local, learning: false, mtu: s.mtu }),
      setMaster: ok,
      setUp: ok,
      setIsolated: ok,
      setMtu: ok,
      fdbList: () => Promise.resolve([...this.vxlan.values()]),
      fdbSet: (_dev, e) => {
        this.vxlan.set(key(e), { ...e });
        return ok();
      },
      fdbDelete: (_dev, e) => {
        this.vxlan.delete(key(e));
        return ok();
      },
      bridgeFdbList: () => Promise.resolve([...this.bridge.values()]),
      bridgeFdbSetStatic: (port, mac) => {
        this.bridge.set(mac, { mac, port, kind: 'static' });
        return ok();
      },
      bridgeFdbDelete: (port, mac) => {
        if (this.bridge.get(mac)?.port === port) this.bridge.delete(mac);
        return ok();
      },
    };
    return new Proxy(handled as Netlink, {
      get: (t, prop: string) => (prop in t ? t[prop as keyof Netlink] : () => Promise.reject(new Error(`FastPath called netlink.${prop}`))),
    });
  }

  /** The VXLAN entries towards `dst`, as MACs. */
  towards(dst: string): string[] {
    return [...this.vxlan.values()].filter((e) => e.dst === dst).map((e) => e.mac).sort();
  }
}

class Directory implements MacDirectory {
  readonly owned = new Map<string, string[]>();
  private readonly listeners: (() => void)[] = [];
  macsOf(owner: string): readonly string[] {
    return this.owned.get(owner) ?? [];
  }
  setLocal(): boolean {
    return false;
  }
  onChange(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => undefined;
  }
  set(owner: string, macs: string[]): void {
    this.owned.set(owner, macs);
    for (const l of this.listeners) l();
  }
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

async function twoRouters() {
  const clock = new FakeClock();
  const wire = { cut: false };
  const make = (id: number, underlay: string) => {
    const kernel = new FakeKernel();
    const macs = new Directory();
    const fast = new Map<number, boolean>();
    const probeTap = new FakeTap({ name: `probe${id}`, vnetHdr: false });
    const fp = new FastPath(
      { netlink: kernel.netlink(), probeTap, clock, logger: silentLogger, macs, setFast: (peer, f) => fast.set(peer, f), peerSilent: () => false },
      { selfId: id, bridge: 'weft', sleeveTap: TAP, vxlan: { name: VXLAN, vni: 1, port: 6785, local: underlay, mtu: 1450 }, maxFrame: 1418, encrypted: false, trusted: [] },
    );
    return { fp, kernel, macs, fast, probeTap };
  };
  const a = make(1, '198.18.0.1');
  const b = make(2, '198.18.0.2');
  // each side's probes reach the other's health, unless the wire is cut
  for (const [from, to] of [[a, b], [b, a]] as const) {
    from.probeTap.write = (buf, off, len) => {
      const p = readProbe(Buffer.from(buf.subarray(off, off + len)), 0, len);
      if (p !== undefined && !wire.cut) to.fp.health.onProbe(p);
      return len;
    };
  }
  await a.fp.start();
  await b.fp.start();
  a.fp.setPeer(2, 'b', '198.18.0.2');
  b.fp.setPeer(1, 'a', '198.18.0.1');
  await settle();
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 125) {
      clock.advance(125);
      await settle();
    }
  };
  const stateOf = (x: typeof a) => x.fp.status()[0]?.state;
  return { a, b, wire, advance, stateOf };
}

describe('FastPath kernel programming', () => {
  it('a peer whose path passes probes but is not up yet gets the MACs it acquires in that time', async () => {
    const { a, wire, advance, stateOf } = await twoRouters();
    await advance(1500);
    expect(stateOf(a)).toBe('up');
    wire.cut = true;
    await advance(1500);
    expect(stateOf(a)).toBe('down');
    wire.cut = false;
    await advance(1500);
    expect(stateOf(a)).toBe('down'); // healthy again, 5 s of it before up
    // b owned nothing when the path turned healthy; now it starts a pod
    a.macs.set('b', ['02:00:00:00:0b:01']);
    await settle();
    expect(a.kernel.towards('198.18.0.2')).toContain('02:00:00:00:0b:01');
    // not up: no flood entry, and the bridge is left to learn
    expect(a.kernel.towards('198.18.0.2')).not.toContain(FLOOD_MAC);
    expect(a.kernel.bridge.get('02:00:00:00:0b:01')).toBeUndefined();
  });

  it('up pins the peer MACs to the VXLAN port (sticky), whatever the TAP taught the bridge; down unpins them', async () => {
    const { a, wire, advance, stateOf } = await twoRouters();
    a.macs.set('b', ['02:00:00:00:0b:01', '02:00:00:00:0b:02']);
    // learned on the TAP while the peer was on the sleeve
    a.kernel.bridge.set('02:00:00:00:0b:01', { mac: '02:00:00:00:0b:01', port: TAP, kind: 'learned' });
    await advance(1500);
    expect(stateOf(a)).toBe('up');
    expect(a.fast.get(2)).toBe(true);
    expect(a.kernel.towards('198.18.0.2')).toEqual(expect.arrayContaining([FLOOD_MAC, '02:00:00:00:0b:01', '02:00:00:00:0b:02']));
    for (const mac of ['02:00:00:00:0b:01', '02:00:00:00:0b:02']) expect(a.kernel.bridge.get(mac)).toEqual({ mac, port: VXLAN, kind: 'static' });

    // a MAC that appears while up is pinned too; one that goes is unpinned and unprogrammed
    a.macs.set('b', ['02:00:00:00:0b:02', '02:00:00:00:0b:03']);
    await settle();
    expect(a.kernel.bridge.get('02:00:00:00:0b:03')).toEqual({ mac: '02:00:00:00:0b:03', port: VXLAN, kind: 'static' });
    expect(a.kernel.bridge.get('02:00:00:00:0b:01')).toBeUndefined();
    expect(a.kernel.towards('198.18.0.2')).not.toContain('02:00:00:00:0b:01');

    wire.cut = true;
    await advance(1500);
    expect(stateOf(a)).toBe('down');
    expect(a.fast.get(2)).toBe(false);
    expect(a.kernel.towards('198.18.0.2')).toEqual([expect.stringMatching(/^[0-9a-f:]{17}$/)]); // the probe entry only
    for (const mac of ['02:00:00:00:0b:02', '02:00:00:00:0b:03']) expect(a.kernel.bridge.get(mac)).toBeUndefined();
  });
});
