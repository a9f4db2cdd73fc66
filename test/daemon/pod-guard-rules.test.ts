import { describe, expect, it } from 'vitest';
import {
  ipv6Hex,
  linkLocalOf,
  podAddScript,
  podProblem,
  podRemoveScript,
  readGuardTable,
  samePod,
  syncScript,
  tableScript,
  type GuardedPod,
} from '../../src/daemon/pod-guard-rules.js';

const pod: GuardedPod = { port: 'vw0123456789ab', mac: '02:11:22:33:44:55', ipv4: ['10.0.0.2'], ipv6: ['fd00::2', 'fe80::11:22ff:fe33:4455'] };

describe('pod guard rules', () => {
  it.each([
    ['::', '00000000000000000000000000000000'],
    ['fd00::2', 'fd000000000000000000000000000002'],
    ['fe80::11:22ff:fe33:4455', 'fe80000000000000001122fffe334455'],
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001'],
    ['::ffff:10.1.2.3', '00000000000000000000ffff0a010203'],
    ['FD00:45::A', 'fd00004500000000000000000000000a'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
  ])('ipv6Hex(%s)', (address, hex) => {
    expect(ipv6Hex(address)).toBe(hex);
    expect(ipv6Hex(address)).toHaveLength(32);
  });

  it.each([
    ['02:11:22:33:44:55', 'fe80::11:22ff:fe33:4455'],
    ['00:00:5e:00:53:01', 'fe80::200:5eff:fe00:5301'],
    ['ae:12:00:00:0f:ff', 'fe80::ac12:ff:fe00:fff'],
  ])('the EUI-64 link-local of %s is %s', (mac, ll) => {
    expect(linkLocalOf(mac)).toBe(ll);
  });

  it.each<[string, Partial<GuardedPod>, RegExp | undefined]>([
    ['a good pod', {}, undefined],
    ['a port that is no pod host end', { port: 'weft-tap' }, /not a pod's host veth/],
    ['a port with an injected quote', { port: 'vw0123456789a"' }, /not a pod's host veth/],
    ['a multicast MAC', { mac: '01:00:5e:00:00:01' }, /not a unicast MAC/],
    ['a MAC with nft syntax in it', { mac: '02:11:22:33:44:55 }' }, /not a unicast MAC/],
    ['0.0.0.0', { ipv4: ['0.0.0.0'] }, /not a usable IPv4/],
    ['an IPv6 address as IPv4', { ipv4: ['fd00::1'] }, /not a usable IPv4/],
    ['::', { ipv6: ['::'] }, /not a usable IPv6/],
    ['text as IPv6', { ipv6: ['fd00::1 } ; flush ruleset'] }, /not a usable IPv6/],
  ])('podProblem: %s', (_, change, problem) => {
    const why = podProblem({ ...pod, ...change });
    if (problem === undefined) expect(why).toBeUndefined();
    else expect(why).toMatch(problem);
  });

  it('the table: only pod ports are filtered, unknown ones dropped whole, every drop counted per reason and pod', () => {
    const t = tableScript({ vxlanPort: 6785 });
    expect(t).toContain('type filter hook prerouting priority -200; policy accept;');
    expect(t).toContain('iifname != "vw*" accept');
    expect(t).toContain('iifname != @pods goto drop_unknown');
    expect(t).toContain('iifname . ether saddr != @pod_mac goto drop_mac');
    expect(t).toContain('ether daddr & ff:ff:00:00:00:00 == 02:77:00:00:00:00 goto drop_probe');
    expect(t).toContain('udp dport 6785 goto drop_vxlan');
    expect(t).toContain('icmpv6 type { nd-router-advert, nd-redirect } goto drop_router');
    expect(t).toContain('chain drop_arp { counter name "dropped_arp"; counter name iifname map @pod_drops; drop; }');
    // flushed before refilled, in the same script: a restart replaces rules without a gap
    expect(t.indexOf('flush chain bridge weft-pods prerouting')).toBeLessThan(t.indexOf('iifname != "vw*" accept'));
  });

  it('adding a pod touches only set elements and its counter', () => {
    const s = podAddScript(pod);
    expect(s.split('\n').filter((l) => l !== '')).toEqual([
      'add counter bridge weft-pods vw0123456789ab',
      'add element bridge weft-pods pods { "vw0123456789ab" }',
      'add element bridge weft-pods pod_mac { "vw0123456789ab" . 02:11:22:33:44:55 }',
      'add element bridge weft-pods pod_v4 { "vw0123456789ab" . 10.0.0.2 }',
      'add element bridge weft-pods pod_v6 { "vw0123456789ab" . fd00::2, "vw0123456789ab" . fe80::11:22ff:fe33:4455 }',
      'add element bridge weft-pods pod_nd { "vw0123456789ab" . 0xfd000000000000000000000000000002, "vw0123456789ab" . 0xfe80000000000000001122fffe334455 }',
      'add element bridge weft-pods pod_drops { "vw0123456789ab" : "vw0123456789ab" }',
    ]);
    expect(podAddScript({ ...pod, ipv4: [], ipv6: [] })).not.toContain('pod_v4');
  });

  it('removing a pod adds each element before deleting it (a missing one is no error), the counter last', () => {
    const lines = podRemoveScript(pod).split('\n').filter((l) => l !== '');
    expect(lines.at(-1)).toBe('delete counter bridge weft-pods vw0123456789ab');
    for (const set of ['pods', 'pod_mac', 'pod_v4', 'pod_v6', 'pod_nd', 'pod_drops']) {
      const add = lines.findIndex((l) => l.startsWith(`add element bridge weft-pods ${set} `));
      const del = lines.findIndex((l) => l.startsWith(`delete element bridge weft-pods ${set} `));
      expect(add, set).toBeGreaterThanOrEqual(0);
      expect(del, set).toBe(add + 1);
    }
    expect(podRemoveScript(pod, true)).not.toContain('delete counter');
  });

  it('a sync flushes every set and deletes the counters of gone ports only', () => {
    const s = syncScript({ vxlanPort: 4789 }, [pod], ['vw00000000000b', 'dropped_mac']);
    for (const set of ['pods', 'pod_mac', 'pod_v4', 'pod_v6', 'pod_nd']) expect(s).toContain(`flush set bridge weft-pods ${set}`);
    expect(s).toContain('flush map bridge weft-pods pod_drops');
    expect(s).toContain('delete counter bridge weft-pods vw00000000000b');
    expect(s).not.toContain('delete counter bridge weft-pods dropped_mac');
    expect(s.indexOf('flush set bridge weft-pods pod_mac')).toBeLessThan(s.indexOf('add element bridge weft-pods pod_mac'));
  });

  it('reads pods and counters back from nft -j output', () => {
    // as nft 1.0.6 lists a table with one pod
    const items = [
      { metainfo: { version: '1.0.6' } },
      { counter: { family: 'bridge', name: 'dropped_mac', table: 'weft-pods', handle: 8, packets: 3, bytes: 216 } },
      { counter: { family: 'bridge', name: 'vw0123456789ab', table: 'weft-pods', handle: 45, packets: 7, bytes: 400 } },
      { set: { family: 'bridge', name: 'pods', table: 'weft-pods', type: 'ifname', handle: 9, elem: ['vw0123456789ab'] } },
      { set: { family: 'bridge', name: 'pod_mac', table: 'weft-pods', type: ['ifname', 'ether_addr'], elem: [{ concat: ['vw0123456789ab', '02:11:22:33:44:55'] }, { concat: ['not-a-pod', '02:00:00:00:00:01'] }, 'garbage', null] } },
      { set: { family: 'bridge', name: 'pod_v4', table: 'weft-pods', type: ['ifname', 'ipv4_addr'], elem: [{ concat: ['vw0123456789ab', '10.0.0.2'] }] } },
      { set: { family: 'bridge', name: 'pod_v6', table: 'weft-pods', type: ['ifname', 'ipv6_addr'], elem: [{ concat: ['vw0123456789ab', 'fd00::2'] }, { concat: ['vw0123456789ab', 'fe80::11:22ff:fe33:4455'] }] } },
      { set: { family: 'bridge', name: 'pod_nd', table: 'weft-pods', type: ['ifname', 'integer'], elem: [{ concat: ['vw0123456789ab', '0xfd000000000000000000000000000002'] }] } },
      { map: { family: 'bridge', name: 'pod_drops', table: 'weft-pods', type: 'ifname', map: 'counter', elem: [['vw0123456789ab', 'vw0123456789ab']] } },
    ];
    const t = readGuardTable(items);
    expect([...t.pods.values()]).toEqual([pod]);
    expect(t.counters).toEqual(new Map([['dropped_mac', 3], ['vw0123456789ab', 7]]));
    expect(readGuardTable([]).pods.size).toBe(0);
  });

  it('samePod compares addresses as sets, IPv6 by value', () => {
    expect(samePod(pod, { ...pod, ipv6: ['FE80::11:22ff:fe33:4455', 'fd00:0::2'] })).toBe(true);
    expect(samePod(pod, { ...pod, mac: '02:11:22:33:44:56' })).toBe(false);
    expect(samePod(pod, { ...pod, ipv4: [] })).toBe(false);
  });
});
