import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { ATTACH_GRACE_MS, PodGuard, type PodAllocation } from '../../src/daemon/pod-guard.js';
import type { LinkInfo } from '../../src/platform/netlink.js';
import { hostVethName } from '../../src/cni/veth.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeNft } from '../fakes/fake-nft.js';

const T = 'bridge weft-pods';

/** The node's side: bridge ports and IPAM allocations, changed by the tests. */
class Node {
  readonly ports = new Set<string>(['weft-tap', 'weft-vx', 'vp1']);
  readonly allocations: PodAllocation[] = [];
  /** Runs once inside the next bridgePorts call (to interleave with a reconcile). */
  during: (() => Promise<void>) | undefined;

  pod(containerId: string, addresses: string[], ifName = 'eth0'): string {
    this.allocations.push({ containerId, ifName, addresses });
    const port = hostVethName(containerId, ifName);
    this.ports.add(port);
    return port;
  }

  async bridgePorts(): Promise<LinkInfo[]> {
    const hook = this.during;
    this.during = undefined;
    const now = [...this.ports];
    if (hook !== undefined) await hook();
    return now.map((name, index) => ({ name, index, mtu: 1400, up: true, master: 'weft', kind: undefined, mac: undefined }));
  }
}

function guard(nft: FakeNft, node: Node, clock = new FakeClock()): PodGuard {
  return new PodGuard(
    { nft, netlink: { bridgePorts: () => node.bridgePorts() }, clock, logger: silentLogger, allocations: () => node.allocations },
    { bridge: 'weft', vxlanPort: 6785 },
  );
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('PodGuard', () => {
  it('attach puts the pod MAC, its IPAM addresses and its link-local in the sets; detach takes them out', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const g = guard(nft, node);
    await g.start();
    await g.reconcile();
    expect(nft.elements(T, 'pods')).toEqual([]);
    const port = node.pod('c1', ['10.32.0.5', 'fd00::5']);
    await g.attach('c1', 'eth0', '02:AA:00:00:00:01');
    expect(nft.elements(T, 'pods')).toEqual([`"${port}"`]);
    expect(nft.elements(T, 'pod_mac')).toEqual([`"${port}" . 02:aa:00:00:00:01`]);
    expect(nft.elements(T, 'pod_v4')).toEqual([`"${port}" . 10.32.0.5`]);
    expect(nft.elements(T, 'pod_v6')).toEqual([`"${port}" . fd00::5`, `"${port}" . fe80::aa:ff:fe00:1`]);
    expect(nft.elements(T, 'pod_drops')).toEqual([`"${port}" : "${port}"`]);
    expect(g.status().pods).toEqual([{ containerId: 'c1', ifName: 'eth0', port, mac: '02:aa:00:00:00:01', addresses: ['10.32.0.5', 'fd00::5'], dropped: 0 }]);

    expect(await g.detach('c1', 'eth0')).toBe(true);
    for (const s of ['pods', 'pod_mac', 'pod_v4', 'pod_v6', 'pod_nd', 'pod_drops']) expect(nft.elements(T, s), s).toEqual([]);
    expect(nft.tables.get(T)!.counters.has(port)).toBe(false);
    expect(await g.detach('c1', 'eth0')).toBe(false);
    await g.stop();
  });

  it.each([
    ['a multicast MAC', 'c1', '01:00:5e:00:00:01', 400, 'ERR_POD_BAD_REQUEST'],
    ['a MAC that is not one', 'c1', '02:00:00:00:00:01 } ; flush ruleset', 400, 'ERR_POD_BAD_REQUEST'],
    ['an attachment IPAM does not know', 'c2', '02:00:00:00:00:01', 409, 'ERR_POD_NOT_ALLOCATED'],
    ['no container id', '', '02:00:00:00:00:01', 400, 'ERR_POD_BAD_REQUEST'],
  ])('attach refuses %s', async (_, containerId, mac, status, code) => {
    const nft = new FakeNft();
    const node = new Node();
    node.pod('c1', ['10.32.0.5']);
    const g = guard(nft, node);
    await g.start();
    await g.reconcile();
    await expect(g.attach(containerId, 'eth0', mac)).rejects.toMatchObject({ status, code });
    expect(nft.elements(T, 'pods')).toEqual([]);
    await g.stop();
  });

  it('the same attach again changes nothing; a new MAC replaces the old one and keeps the counter', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const port = node.pod('c1', ['10.32.0.5']);
    const g = guard(nft, node);
    await g.start();
    await g.reconcile();
    await g.attach('c1', 'eth0', '02:00:00:00:00:01');
    nft.count(T, port, 4);
    const n = nft.scripts.length;
    await g.attach('c1', 'eth0', '02:00:00:00:00:01');
    expect(nft.scripts.length).toBe(n);
    await g.attach('c1', 'eth0', '02:00:00:00:00:02');
    expect(nft.elements(T, 'pod_mac')).toEqual([`"${port}" . 02:00:00:00:00:02`]);
    expect(nft.tables.get(T)!.counters.get(port)).toBe(4);
    await g.stop();
  });

  it('an address handed on by IPAM is taken from the port that had it when the new pod is attached', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const old = node.pod('old', ['10.32.0.5', 'fd00::5']);
    const g = guard(nft, node);
    await g.start();
    await g.reconcile();
    await g.attach('old', 'eth0', '02:00:00:00:00:05');
    // released (e.g. `weft ipam release`) while the old pod still runs, then given to a new pod at once
    node.allocations.splice(0, 1);
    const fresh = node.pod('new', ['10.32.0.5', 'fd00:0::5']);
    await g.attach('new', 'eth0', '02:00:00:00:00:06');
    expect(nft.elements(T, 'pod_v4')).toEqual([`"${fresh}" . 10.32.0.5`]);
    expect(nft.elements(T, 'pod_v6')).toEqual([`"${old}" . fe80::ff:fe00:5`, `"${fresh}" . fd00:0::5`, `"${fresh}" . fe80::ff:fe00:6`].sort());
    expect(nft.elements(T, 'pod_mac')).toHaveLength(2);
    await g.stop();
  });

  it('a restart adopts the pods whose port is still on the bridge, in one transaction, and drops the rest', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const stays = node.pod('stays', ['10.32.0.5', 'fd00::5']);
    const goes = node.pod('goes', ['10.32.0.6']);
    const first = guard(nft, node);
    await first.start();
    await first.reconcile();
    await first.attach('stays', 'eth0', '02:00:00:00:00:05');
    await first.attach('goes', 'eth0', '02:00:00:00:00:06');
    nft.count(T, stays, 9);
    await first.stop();
    // while the router is down: one pod is deleted (its DEL journaled a release), its port leaves
    node.ports.delete(goes);
    node.allocations.splice(node.allocations.findIndex((a) => a.containerId === 'goes'), 1);
    const before = nft.scripts.length;
    const second = guard(nft, node);
    await second.start();
    await second.reconcile();
    expect(nft.scripts.length - before).toBe(1);
    expect(nft.scripts.at(-1)).not.toMatch(/delete table/);
    expect(nft.elements(T, 'pods')).toEqual([`"${stays}"`]);
    expect(nft.elements(T, 'pod_v4')).toEqual([`"${stays}" . 10.32.0.5`]);
    expect(nft.tables.get(T)!.counters.get(stays)).toBe(9);
    expect(nft.tables.get(T)!.counters.has(goes)).toBe(false);
    expect(second.status().pods.map((p) => [p.containerId, p.port])).toEqual([['stays', stays]]);
    // the adopted pod can be detached by its attachment
    expect(await second.detach('stays', 'eth0')).toBe(true);
    await second.stop();
  });

  it('reconcile: a released address stops being the pod\'s, a port that left the bridge loses its rules, a deleted table comes back', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const clock = new FakeClock();
    const a = node.pod('a', ['10.32.0.5', 'fd00::5']);
    const b = node.pod('b', ['10.32.0.6']);
    const g = guard(nft, node, clock);
    await g.start();
    await g.reconcile();
    await g.attach('a', 'eth0', '02:00:00:00:00:05');
    await g.attach('b', 'eth0', '02:00:00:00:00:06');
    node.allocations.find((x) => x.containerId === 'a')!.addresses = ['fd00::5'];
    node.ports.delete(b);
    clock.advance(ATTACH_GRACE_MS); // a port attached just now may not be on the bridge yet (see the next test)
    await g.reconcile();
    expect(nft.elements(T, 'pod_v4')).toEqual([]);
    expect(nft.elements(T, 'pods')).toEqual([`"${a}"`]);
    // someone deletes the table: the periodic reconcile rewrites it
    await nft.deleteTable('bridge', 'weft-pods');
    clock.advance(10_000);
    await g.reconcile();
    expect(nft.elements(T, 'pods')).toEqual([`"${a}"`]);
    expect(nft.elements(T, 'pod_v6')).toEqual([`"${a}" . fd00::5`, `"${a}" . fe80::ff:fe00:5`]);
    await g.stop();
  });

  it('a port attached before its veth reaches the bridge (CNI ADD guards it meanwhile) keeps its rules for ATTACH_GRACE_MS, then loses them if it never comes', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const clock = new FakeClock();
    const a = node.pod('a', ['10.32.0.5']);
    const g = guard(nft, node, clock);
    await g.start();
    node.ports.delete(a); // allocated, veth not yet on the bridge
    await g.attach('a', 'eth0', '02:00:00:00:00:05');
    await g.reconcile();
    expect(nft.elements(T, 'pods')).toEqual([`"${a}"`]);
    clock.advance(ATTACH_GRACE_MS - 1);
    await g.reconcile();
    expect(nft.elements(T, 'pods')).toEqual([`"${a}"`]);
    clock.advance(1);
    await g.reconcile();
    expect(nft.elements(T, 'pods')).toEqual([]);
    await g.stop();
  });

  it('an attach whose update fails on a deleted table rewrites the table and succeeds', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const port = node.pod('c1', ['10.32.0.5']);
    const g = guard(nft, node);
    await g.start();
    await g.reconcile();
    await nft.deleteTable('bridge', 'weft-pods');
    await g.attach('c1', 'eth0', '02:00:00:00:00:01');
    expect(nft.elements(T, 'pods')).toEqual([`"${port}"`]);
    expect(g.status().problem).toBeNull();
    await g.stop();
  });

  it('concurrent attaches share transactions', async () => {
    const nft = new FakeNft();
    const node = new Node();
    for (let i = 0; i < 20; i++) node.pod(`c${i}`, [`10.32.0.${i + 2}`]);
    const g = guard(nft, node);
    await g.start();
    await g.reconcile();
    const before = nft.scripts.length;
    await Promise.all(Array.from({ length: 20 }, (_, i) => g.attach(`c${i}`, 'eth0', `02:00:00:00:00:${(i + 16).toString(16)}`)));
    expect(nft.elements(T, 'pods')).toHaveLength(20);
    expect(nft.scripts.length - before).toBeLessThanOrEqual(2);
    await g.stop();
  });

  it('when nft fails the guard says so (new pods are refused), rejects attaches, and retries until it works', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const clock = new FakeClock();
    const port = node.pod('c1', ['10.32.0.5']);
    nft.broken = 'nft: not installed';
    const g = guard(nft, node, clock);
    await g.start();
    await g.reconcile();
    expect(g.notReady()).toMatch(/not installed/);
    await expect(g.attach('c1', 'eth0', '02:00:00:00:00:01')).rejects.toMatchObject({ code: 'ERR_POD_GUARD' });
    nft.broken = undefined;
    clock.advance(2000); // the retry
    await flush();
    await g.reconcile();
    expect(g.notReady()).toBeUndefined();
    expect(nft.elements(T, 'pods')).toEqual([`"${port}"`]);
    await g.stop();
  });

  it('a pod attached while a reconcile reads the bridge is not taken for gone', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const g = guard(nft, node);
    await g.start();
    await g.reconcile();
    const port = node.pod('late', ['10.32.0.9']);
    node.ports.delete(port); // not in the list the reconcile reads …
    node.during = async () => {
      node.ports.add(port); // … but on the bridge and attached before the reconcile decides
      await g.attach('late', 'eth0', '02:00:00:00:00:09');
    };
    await g.reconcile();
    expect(nft.elements(T, 'pods')).toEqual([`"${port}"`]);
    await g.stop();
  });

  it('status: drops per reason and per pod, and pod ports nobody attached', async () => {
    const nft = new FakeNft();
    const node = new Node();
    const clock = new FakeClock();
    const port = node.pod('c1', ['10.32.0.5']);
    node.ports.add('vw0000000000ff');
    const g = guard(nft, node, clock);
    await g.start();
    await g.reconcile();
    await g.attach('c1', 'eth0', '02:00:00:00:00:01');
    nft.count(T, 'dropped_arp', 3);
    nft.count(T, port, 3);
    nft.count(T, 'dropped_unknown', 2);
    await g.refreshCounters();
    const st = g.status();
    expect(st.drops).toMatchObject({ arp: 3, unknown: 2, mac: 0 });
    expect(st.pods[0]!.dropped).toBe(3);
    expect(st.unknownPorts).toEqual(['vw0000000000ff']);
    await g.stop();
  });
});
