/** The result shape (what portmap and the runtime read back as prevResult) and GC's selection. */
import { describe, expect, it } from 'vitest';
import { staleAllocations } from '../../src/cni/commands/gc.js';
import { buildAddResult, parsePrevResult } from '../../src/cni/result.js';
import { hostVethName, HOST_END, randomMac } from '../../src/cni/veth.js';

const outcome = {
  cniVersion: '1.1.0' as const,
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
};

describe('buildAddResult', () => {
  it('points every ip at the container interface (index 1, with sandbox) and routes default per family', () => {
    const r = buildAddResult(outcome);
    expect(r.interfaces?.[1]).toEqual({ name: 'net1', mac: '02:00:00:00:00:02', mtu: 1376, sandbox: '/proc/42/ns/net' });
    expect(r.interfaces?.[0]?.sandbox).toBeUndefined();
    expect(r.ips).toEqual([
      { address: 'fd00:99::5/64', gateway: 'fd00:99::1', interface: 1 },
      { address: '10.32.0.5/12', gateway: '10.32.0.1', interface: 1 },
    ]);
    expect(r.routes).toEqual([
      { dst: '0.0.0.0/0', gw: '10.32.0.1' },
      { dst: '::/0', gw: 'fd00:99::1' },
    ]);
    expect(r.dns).toBeUndefined();
  });

  it('1.0.0 has no interface mtu; a family without allocation gets no route', () => {
    const r = buildAddResult({ ...outcome, cniVersion: '1.0.0', addresses: [outcome.addresses[1]!] });
    expect(r.interfaces?.map((i) => i.mtu)).toEqual([undefined, undefined]);
    expect(r.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.32.0.1' }]);
  });

  it('round-trips through parsePrevResult', () => {
    const r = buildAddResult({ ...outcome, dns: { nameservers: ['10.96.0.10'] } });
    const back = parsePrevResult(JSON.parse(JSON.stringify(r)));
    expect(back.interfaces).toEqual(r.interfaces);
    expect(back.ips).toEqual(r.ips);
    expect(back.routes).toEqual(r.routes);
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
