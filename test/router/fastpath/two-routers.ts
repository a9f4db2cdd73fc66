/**
 * Two routers' FastPaths on a fake clock, joined by an in-memory probe wire: each side's probe
 * TAP writes reach the other's probe TAP (and so its FastPath's checks) unless the wire drops
 * them. Fake netlink state stands in for the kernel (the real one is covered by
 * test/integration/fastpath*.test.ts). Shared by the FastPath unit tests and the attack suite.
 */
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/core/logger.js';
import type { BridgeFdbEntry, FdbEntry, Netlink } from '../../../src/platform/netlink.js';
import type { Nft, NftCounter } from '../../../src/platform/nft.js';
import { FastPath, type MacDirectory } from '../../../src/router/fastpath/fast-path.js';
import { FakeClock } from '../../fakes/fake-clock.js';
import { FakeTap } from '../../fakes/fake-tap.js';

export const VXLAN = 'weft-vx';
export const TAP = 'weft-tap';
export const MAX_FRAME = 1418;

/** The part of the kernel FastPath touches: the VXLAN device's entries and the bridge's. */
export class FakeKernel {
  readonly vxlan = new Map<string, FdbEntry>();
  readonly bridge = new Map<string, BridgeFdbEntry>();
  deviceExists = false;

  netlink(): Netlink {
    const ok = () => Promise.resolve();
    const key = (e: FdbEntry) => `${e.mac}@${e.dst}`;
    const handled: Partial<Netlink> = {
      getVxlan: (name) => Promise.resolve(this.deviceExists ? { name, vni: 1, port: 6785, local: '198.18.0.1', learning: false, mtu: 1450 } : undefined),
      ensureVxlan: (s) => {
        this.deviceExists = true;
        return Promise.resolve({ name: s.name, vni: s.vni, port: s.port, local: s.local, learning: false, mtu: s.mtu });
      },
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

/** nftables tables as text, per `family name` (the body given to replaceTable). */
export class FakeNft implements Nft {
  readonly tables = new Map<string, string>();
  readonly sets = new Map<string, string[]>();
  calls = 0;

  replaceTable(family: string, name: string, body: string): Promise<void> {
    this.calls++;
    this.tables.set(`${family} ${name}`, body);
    const set = /set (\S+) \{/.exec(body)?.[1];
    const elements = /elements = \{ ([^}]*) \}/.exec(body)?.[1];
    if (set !== undefined) this.sets.set(`${family} ${name} ${set}`, elements === undefined ? [] : elements.split(', '));
    return Promise.resolve();
  }

  deleteTable(family: string, name: string): Promise<void> {
    this.calls++;
    this.tables.delete(`${family} ${name}`);
    for (const k of [...this.sets.keys()]) if (k.startsWith(`${family} ${name} `)) this.sets.delete(k);
    return Promise.resolve();
  }

  replaceSetElements(family: string, table: string, set: string, elements: readonly string[]): Promise<void> {
    this.calls++;
    if (!this.tables.has(`${family} ${table}`)) return Promise.reject(new Error(`no table ${family} ${table}`));
    this.sets.set(`${family} ${table} ${set}`, [...elements]);
    return Promise.resolve();
  }

  /** What `counters` answers. */
  counterValues: NftCounter[] = [];
  counters(): Promise<NftCounter[]> {
    this.calls++;
    return Promise.resolve(this.counterValues.map((c) => ({ ...c })));
  }

  /** The elements of `family table set` as last written. */
  set(family: string, table: string, set: string): string[] | undefined {
    return this.sets.get(`${family} ${table} ${set}`);
  }
}

export class Directory implements MacDirectory {
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

export const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

export type Side = 'a' | 'b';

export interface RouterSide {
  id: number;
  underlay: string;
  fp: FastPath;
  kernel: FakeKernel;
  nft: FakeNft;
  macs: Directory;
  fast: Map<number, boolean>;
  probeTap: FakeTap;
  /** Every frame this side's FastPath wrote to its probe TAP, with the time. */
  sent: { frame: Buffer; at: number }[];
}

export interface TwoRoutersInit {
  /** Which sides get the pair's probe key at start (default both). */
  keyed?: Side[];
}

/** a (id 1, 198.18.0.1) and b (id 2, 198.18.0.2), each the other's peer; both probe keyed alike. */
export async function twoRouters(init: TwoRoutersInit = {}) {
  const clock = new FakeClock();
  /** `cut`: nothing crosses; `drop`: frames it returns true for are lost (from which side). */
  const wire: { cut: boolean; drop: (from: Side, frame: Buffer) => boolean } = { cut: false, drop: () => false };
  const make = (id: number, underlay: string): RouterSide => {
    const kernel = new FakeKernel();
    const nft = new FakeNft();
    const macs = new Directory();
    const fast = new Map<number, boolean>();
    const probeTap = new FakeTap({ name: `probe${id}`, vnetHdr: false });
    const fp = new FastPath(
      { netlink: kernel.netlink(), nft, probeTap, clock, logger: silentLogger, macs, owner: { setFast: (peer, f) => fast.set(peer, f), peerSilent: () => false } },
      { selfId: id, bridge: 'weft', sleeveTap: TAP, vxlan: { name: VXLAN, vni: 1, port: 6785, local: underlay, mtu: 1450 }, maxFrame: MAX_FRAME, encrypted: false, trusted: [] },
    );
    return { id, underlay, fp, kernel, nft, macs, fast, probeTap, sent: [] };
  };
  const a = make(1, '198.18.0.1');
  const b = make(2, '198.18.0.2');
  for (const [from, to, side] of [[a, b, 'a'], [b, a, 'b']] as const) {
    from.probeTap.write = (buf, off, len) => {
      const frame = Buffer.from(buf.subarray(off, off + len));
      from.sent.push({ frame, at: clock.now() });
      if (!wire.cut && !wire.drop(side, frame)) to.probeTap.inject(frame);
      return len;
    };
  }
  const key = randomBytes(32);
  for (const side of init.keyed ?? ['a', 'b']) {
    const [me, peer] = side === 'a' ? [a, b] : [b, a];
    me.fp.installKeys(peer.id, key, false);
  }
  await a.fp.start();
  await b.fp.start();
  a.fp.setPeer(2, 'b', '198.18.0.2');
  b.fp.setPeer(1, 'a', '198.18.0.1');
  await settle();
  /** Runs `ms` of fake time in 125 ms steps; `each` runs after each step's timers, before its frames are read. */
  const advance = async (ms: number, each?: () => void): Promise<void> => {
    for (let t = 0; t < ms; t += 125) {
      clock.advance(125);
      each?.();
      await settle();
    }
  };
  const stateOf = (x: RouterSide) => x.fp.status()[0]?.state;
  return { clock, a, b, key, wire, advance, stateOf };
}
