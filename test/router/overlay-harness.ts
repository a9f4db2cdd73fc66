/**
 * Routers as the daemon wires them, minus the mesh and the OS: a sleeve on the fake UDP network,
 * an OverlaySwitch over it, and (unless `fastPath: false`) a FastPath on fake netlink state
 * (two-routers.ts) whose probe TAP is joined to the others' by an in-memory probe wire. The
 * tests play the mesh: they call the switch's Overlay methods (keys, endpoints, relays,
 * removals) as the mesh would, and cut or heal the underlay per pair.
 */
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../src/core/logger.js';
import { FastPath } from '../../src/router/fastpath/fast-path.js';
import { OverlaySwitch, type PathChange } from '../../src/router/overlay-switch.js';
import { FakeTap } from '../fakes/fake-tap.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { Directory, FakeKernel, FakeNft, MAX_FRAME, TAP, VXLAN, settle } from './fastpath/two-routers.js';
import { FakeClock, FakeNetwork, makeNode, testKey, type Node } from './sleeve-harness.js';

export interface SwitchedRouter {
  node: Node;
  sw: OverlaySwitch;
  fp: FastPath | undefined;
  kernel: FakeKernel;
  probeTap: FakeTap;
  /** Every path change event, with the clock time it came at. */
  changes: (PathChange & { at: number })[];
  /** The switch's log lines. */
  lines: Record<string, unknown>[];
}

const PORT = 6784;

export async function switchedRouters(specs: { name: string; address: string }[], opts: { fastPath?: boolean } = {}) {
  const clock = new FakeClock();
  const net = new FakeNetwork();
  /** Pairs whose underlay is cut ("a|b", both directions): `sleeve` datagrams, `probes`, or both. */
  const cut = { sleeve: new Set<string>(), probes: new Set<string>() };
  const pair = (x: string, y: string) => (x < y ? `${x}|${y}` : `${y}|${x}`);
  net.filter = (d) => !cut.sleeve.has(pair(d.fromAddress, d.toAddress));
  const routers: SwitchedRouter[] = specs.map((s) => {
    const node = makeNode(net, clock, { name: s.name, address: s.address, sleeve: { heartbeatMs: 500 } });
    const { logger, lines } = recordingLogger('info');
    const sw = new OverlaySwitch({ sleeve: node.sleeve, clock, logger });
    const kernel = new FakeKernel();
    const probeTap = new FakeTap({ name: `probe-${s.name}`, vnetHdr: false });
    const fp =
      opts.fastPath === false
        ? undefined
        : new FastPath(
            { netlink: kernel.netlink(), nft: new FakeNft(), probeTap, clock, logger: silentLogger, macs: new Directory(), owner: sw },
            { selfId: node.id, bridge: 'weft', sleeveTap: TAP, vxlan: { name: VXLAN, vni: 1, port: PORT + 1, local: s.address, mtu: 1450 }, maxFrame: MAX_FRAME, encrypted: false, trusted: [] },
          );
    if (fp !== undefined) sw.attach(fp);
    const changes: SwitchedRouter['changes'] = [];
    sw.onChange((c) => changes.push({ ...c, at: clock.now() }));
    return { node, sw, fp, kernel, probeTap, changes, lines };
  });
  // The probe wire: a probe goes to the router whose id its destination MAC carries (02:77:<id>).
  for (const from of routers) {
    from.probeTap.write = (buf, off, len) => {
      const to = routers.find((r) => r.node.id === buf.readUInt32BE(off + 2));
      if (to !== undefined && !cut.probes.has(pair(from.node.address, to.node.address))) to.probeTap.inject(Buffer.from(buf.subarray(off, off + len)));
      return len;
    };
  }
  for (const r of routers) {
    r.node.sleeve.start();
    await r.fp?.start();
    r.sw.start();
  }
  const byName = (name: string) => {
    const r = routers.find((x) => x.node.name === name);
    if (r === undefined) throw new Error(`no router ${name}`);
    return r;
  };

  /** What the mesh does once two routers connect: each other's direct endpoint, then the pair's keys (one probe key for both). */
  const connect = (x: string, y: string, epoch = 1): void => {
    const [a, b] = [byName(x), byName(y)];
    a.sw.setDirect(b.node.peer, `${b.node.address}:${PORT}`);
    b.sw.setDirect(a.node.peer, `${a.node.address}:${PORT}`);
    const probe = randomBytes(32);
    const [ia, ib] = [1000 + epoch, 2000 + epoch];
    a.sw.installKeys({ name: b.node.peer, id: b.node.id, tx: { keyId: ib, key: testKey('s', a.node.peer, b.node.peer, epoch) }, rx: { keyId: ia, key: testKey('s', b.node.peer, a.node.peer, epoch) }, probe }, false);
    b.sw.installKeys({ name: a.node.peer, id: a.node.id, tx: { keyId: ia, key: testKey('s', b.node.peer, a.node.peer, epoch) }, rx: { keyId: ib, key: testKey('s', a.node.peer, b.node.peer, epoch) }, probe }, false);
  };

  /** Runs `ms` of fake time in 125 ms steps, delivering datagrams and probes after each. */
  const advance = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 125) {
      clock.advance(125);
      await net.settle();
      await settle();
    }
  };

  /** Cuts (or heals) the underlay between two routers: the sleeve's datagrams, the probes, or both. */
  const setCut = (x: string, y: string, what: 'sleeve' | 'probes' | 'both', on: boolean): void => {
    const k = pair(byName(x).node.address, byName(y).node.address);
    for (const set of what === 'both' ? [cut.sleeve, cut.probes] : [cut[what]]) {
      if (on) set.add(k);
      else set.delete(k);
    }
  };

  /** Router `x`'s view of router `y`'s path. */
  const pathOf = (x: string, y: string) => byName(x).sw.pathOf(byName(y).node.peer);

  const stop = (): void => {
    for (const r of routers) {
      r.sw.stop();
      r.fp?.stop();
      r.node.sleeve.stop();
    }
  };

  return { clock, net, routers, byName, connect, advance, setCut, pathOf, stop };
}
