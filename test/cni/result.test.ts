/** The result shape (what portmap and the runtime read back as prevResult) and GC's selection. */
import { describe, expect, it } from 'vitest';
import { staleAllocations } from '../../src/cni/commands/gc.js';
import { buildAddResult, CONTAINER_INTERFACE, containerInterfaceIndex, parsePrevResult } from '../../src/cni/result.js';
import { hostVethName, HOST_END, plannedRoutes, randomMac } from '../../src/cni/veth.js';

const outcome = {
  cniVersion: '1.1.0' as const,
  bridge: 'weft',
  bridgeMac: '02:00:00:00:00:0b',
  hostName: 'vw0123456789ab',
  hostMac: '02:00:00:00:00:01',
  ifName: 'net1',
  containerMac: '02:00:00:00:00:02',
  netns: '/proc/42/ns/net',
  mtu: 1376,
  addresses: [
    { address: 'fd00:99::5', prefixLength: 64, family: 6 as const },
    { address: '10.32.0.5', prefixLength: 12, family: 4 as const },
  ],
  gateways: [
    { address: '10.32.0.1', prefixLength: 12, family: 4 as const },
    { address: 'fd00:99::1', prefixLength: 64, family: 6 as const },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.32.0.1' },
    { dst: '192.168.7.0/24', gw: '10.32.0.1' },
  ],
};

describe('buildAddResult', () => {
  it('lists bridge, host veth and container interface (as the bridge plugin does); every ip on the container interface (index 2); the routes installed', () => {
    const r = buildAddResult(outcome);
    expect(CONTAINER_INTERFACE).toBe(2);
    expect(r.interfaces).toEqual([
      { name: 'weft', mac: '02:00:00:00:00:0b' },
      { name: 'vw0123456789ab', mac: '02:00:00:00:00:01', mtu: 1376 },
      { name: 'net1', mac: '02:00:00:00:00:02', mtu: 1376, sandbox: '/proc/42/ns/net' },
    ]);
    expect(r.ips).toEqual([
      { address: 'fd00:99::5/64', gateway: 'fd00:99::1', interface: 2 },
      { address: '10.32.0.5/12', gateway: '10.32.0.1', interface: 2 },
    ]);
    expect(r.routes).toEqual(outcome.routes);
    expect(r.dns).toBeUndefined();
  });

  it('1.0.0 has no interface mtu; no routes installed, none reported', () => {
    const r = buildAddResult({ ...outcome, cniVersion: '1.0.0', routes: [] });
    expect(r.interfaces?.map((i) => i.mtu)).toEqual([undefined, undefined, undefined]);
    expect(r.routes).toEqual([]);
  });

  it('round-trips through parsePrevResult', () => {
    const r = buildAddResult({ ...outcome, dns: { nameservers: ['10.96.0.10'] } });
    const back = parsePrevResult(JSON.parse(JSON.stringify(r)));
    expect(back.interfaces).toEqual(r.interfaces);
    expect(back.ips).toEqual(r.ips);
    expect(back.routes).toEqual(r.routes);
  });

  it.each([
    ['new shape (bridge, host veth, container)', buildAddResult(outcome), 'net1', 2],
    ['old shape (host veth, container)', { cniVersion: '1.0.0', interfaces: [{ name: 'vw0123456789ab' }, { name: 'eth0', sandbox: '/x' }] }, 'eth0', 1],
    ['another interface of the pod is not this one', buildAddResult(outcome), 'eth0', -1],
    ['a host-side interface of that name does not count', { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }] }, 'eth0', -1],
    ['an empty sandbox does not count', { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '' }] }, 'eth0', -1],
  ])('containerInterfaceIndex: %s', (_what, result, ifName, index) => {
    expect(containerInterfaceIndex(result, ifName)).toBe(index);
  });

  it.each([
    [[], /prevResult must be an object/],
    [{ interfaces: {} }, /prevResult.interfaces must be an array/],
    [{ interfaces: [{}] }, /prevResult.interfaces\[0\].name/],
    [{ ips: [{ address: '10.0.0.1/24', interface: -1 }] }, /prevResult.ips\[0\].interface/],
    [{ routes: [{ gw: '1.1.1.1' }] }, /prevResult.routes\[0\].dst/],
  ])('parsePrevResult(%j) names the field', (raw, msg) => {
    expect(() => parsePrevResult(raw)).toThrow(msg);
  });
});

describe('host end names and MACs', () => {
  it('are deterministic, ≤ 15 characters and distinct per attachment', () => {
    const a = hostVethName('abc', 'eth0');
    expect(a).toBe(hostVethName('abc', 'eth0'));
    expect(a).toMatch(HOST_END);
    expect(a.length).toBeLessThanOrEqual(15);
    expect(hostVethName('abc', 'eth1')).not.toBe(a);
    expect(hostVethName('abd', 'eth0')).not.toBe(a);
  });

  it('MACs are locally administered unicast', () => {
    for (let i = 0; i < 50; i++) {
      const first = parseInt(randomMac().slice(0, 2), 16);
      expect(first & 1).toBe(0);
      expect(first & 2).toBe(2);
    }
  });
});

describe('GC selection', () => {
  const alloc = (containerId: string, ifName: string, network: string | null = 'weft') => ({ containerId, ifName, addresses: ['10.0.0.1'], ...(network === null ? {} : { network }) });
  it.each([
    ['nothing valid: every pod allocation of the network', [alloc('a', 'eth0'), alloc('weft:gateway', 'weft', null)], [], ['a/eth0']],
    ['valid kept', [alloc('a', 'eth0'), alloc('b', 'eth0')], [{ containerID: 'a', ifname: 'eth0' }], ['b/eth0']],
    ['same container, other interface is stale', [alloc('a', 'eth0'), alloc('a', 'net1')], [{ containerID: 'a', ifname: 'eth0' }], ['a/net1']],
    ['weft: never released', [alloc('weft:gateway', 'weft'), alloc('weft:x', 'eth0')], [], []],
    ['valid list naming unknown attachments', [], [{ containerID: 'z', ifname: 'eth0' }], []],
    ['another network is not ours', [alloc('a', 'eth0', 'other'), alloc('b', 'eth0')], [], ['b/eth0']],
    ['a reservation made by hand (no network) is never ours', [alloc('a', 'eth0', null)], [], []],
  ])('%s', (_what, allocations, valid, stale) => {
    expect(staleAllocations(allocations, valid, 'weft').map((a) => `${a.containerId}/${a.ifName}`)).toEqual(stale);
  });
});

describe('plannedRoutes (which routes ADD adds to the pod)', () => {
  const v4 = { address: '10.32.0.5', prefixLength: 12, family: 4 as const };
  const v6 = { address: 'fd00:99::5', prefixLength: 64, family: 6 as const };
  const gateways = outcome.gateways;
  const d4 = { dst: '0.0.0.0/0', gw: '10.32.0.1' };
  const d6 = { dst: '::/0', gw: 'fd00:99::1' };
  it.each([
    ['first attachment, dual-stack: a default per family', {}, [], [d4, d6]],
    ['second attachment: the netns has both defaults: none', {}, [4, 6], []],
    ['the netns has only IPv4: IPv6 default only', {}, [4], [d6]],
    ['defaultRoute true: added even when one exists', { defaultRoute: true }, [4, 6], [d4, d6]],
    ['defaultRoute false: never', { defaultRoute: false }, [], []],
    ['config routes: via the family gateway when no gw', { routes: [{ dst: '192.168.0.0/16' }, { dst: 'fd01::/48', gw: 'fd00:99::9' }] }, [4, 6], [
      { dst: '192.168.0.0/16', gw: '10.32.0.1' },
      { dst: 'fd01::/48', gw: 'fd00:99::9' },
    ]],
    ['a config default route replaces ours for its family', { routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.7' }] }, [], [d6, { dst: '0.0.0.0/0', gw: '10.32.0.7' }]],
  ])('%s', (_what, extra, existing, expected) => {
    const planned = plannedRoutes({ netns: '/x', ifName: 'net1', addresses: [v4, v6], gateways, ...extra }, new Set(existing as (4 | 6)[]));
    expect(planned.map(({ dst, gw }) => ({ dst, gw }))).toEqual(expected);
  });

  it('marks as auto only the defaults that depend on the netns having none', () => {
    const planned = plannedRoutes({ netns: '/x', ifName: 'eth0', addresses: [v4], gateways, routes: [{ dst: '10.0.0.0/8' }] }, new Set());
    expect(planned.map((r) => r.auto)).toEqual([true, false]);
    expect(plannedRoutes({ netns: '/x', ifName: 'eth0', addresses: [v4], gateways, defaultRoute: true }, new Set()).map((r) => r.auto)).toEqual([false]);
  });

  it('a family without an address gets no default route', () => {
    expect(plannedRoutes({ netns: '/x', ifName: 'eth0', addresses: [v4], gateways }, new Set())).toEqual([{ ...d4, auto: true }]);
  });
});
