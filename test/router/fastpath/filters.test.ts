/** The fast path's nftables tables: what they say, and how FastPath keeps the VXLAN port's peer set. */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/core/logger.js';
import { FLOOD_MAC } from '../../../src/platform/netlink.js';
import { FastPath } from '../../../src/router/fastpath/fast-path.js';
import { FastPathFilters, probeTableBody, vxlanTableBody } from '../../../src/router/fastpath/filters.js';
import { probeMacText } from '../../../src/router/fastpath/probe-frame.js';
import { parseCounters } from '../../../src/platform/linux/nft-cli.js';
import { FakeClock } from '../../fakes/fake-clock.js';
import { FakeTap } from '../../fakes/fake-tap.js';
import { Directory, FakeKernel, FakeNft, TAP, VXLAN, settle, twoRouters } from './two-routers.js';

const peersOf = (nft: FakeNft) => nft.set('inet', 'weft-vxlan', 'peers');
const PORTS = ['weft-tap', 'weft-vx', 'weft-probe'];

describe('VXLAN port filter', () => {
  it('accepts the port only from the set, drops and counts the rest (IPv6 included)', () => {
    const body = vxlanTableBody(6785, ['198.18.0.2', '198.18.0.3']);
    expect(body).toContain('elements = { 198.18.0.2, 198.18.0.3 }');
    const rules = body.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('udp'));
    expect(rules).toEqual(['udp dport 6785 ip saddr @peers accept', 'udp dport 6785 counter name "refused" drop']);
    expect(body).toContain('type filter hook input priority filter; policy accept;');
    expect(vxlanTableBody(6785, [])).not.toContain('elements');
  });

  it('drops frames from pods (any port but the overlays) to or from probe MACs or of the probe ethertype, before learning', () => {
    const body = probeTableBody(PORTS);
    const rules = body.split('\n').map((l) => l.trim()).filter((l) => /^(iifname|ether)/.test(l));
    expect(rules).toEqual([
      'iifname { "weft-tap", "weft-vx", "weft-probe" } accept',
      'ether daddr & ff:ff:00:00:00:00 == 02:77:00:00:00:00 counter name "pods" drop',
      'ether saddr & ff:ff:00:00:00:00 == 02:77:00:00:00:00 counter name "pods" drop',
      'ether type 0x88b5 counter name "pods" drop',
    ]);
    expect(body).toContain('type filter hook prerouting priority filter; policy accept;');
  });

  it('refuses anything but IPv4 addresses and ports (they go into an nft script)', async () => {
    const f = new FastPathFilters({ nft: new FakeNft(), clock: new FakeClock(), logger: silentLogger }, { port: 6785, overlayPorts: PORTS });
    for (const bad of ['198.18.0.2 } ; flush ruleset ; {', 'fd00::1', '', '198.18.0']) {
      await expect(f.install([bad])).rejects.toThrow(/not an IPv4 address/);
    }
    expect(() => new FastPathFilters({ nft: new FakeNft(), clock: new FakeClock(), logger: silentLogger }, { port: 70000, overlayPorts: PORTS })).toThrow(/not a UDP port/);
    expect(() => new FastPathFilters({ nft: new FakeNft(), clock: new FakeClock(), logger: silentLogger }, { port: 6785, overlayPorts: ['x" } accept'] })).toThrow(/not an interface name/);
  });

  it('a write that fails names the table and the way out', async () => {
    const nft = new FakeNft();
    nft.replaceTable = () => Promise.reject(new Error('nft is not installed (ENOENT)'));
    const f = new FastPathFilters({ nft, clock: new FakeClock(), logger: silentLogger }, { port: 6785, overlayPorts: PORTS });
    await expect(f.install([])).rejects.toThrow(/inet weft-vxlan.*ENOENT.*--fastpath off/);
    nft.replaceTable = (family, name) => (family === 'bridge' ? Promise.reject(new Error('Could not process rule: No such file or directory')) : Promise.resolve(void name));
    await expect(f.install([])).rejects.toThrow(/bridge weft-probe/);
  });

  it('reads the drop counters from one `nft -j list counters`, at most once a second', async () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { counter: { family: 'inet', name: 'refused', table: 'weft-vxlan', handle: 2, packets: 20, bytes: 1960 } },
        { counter: { family: 'bridge', name: 'pods', table: 'weft-probe', handle: 2, packets: 7, bytes: 448 } },
        { counter: { family: 'inet', name: 'refused', table: 'someone-else', handle: 2, packets: 99, bytes: 99 } },
      ],
    });
    const nft = new FakeNft();
    nft.counterValues = parseCounters(json);
    expect(nft.counterValues).toHaveLength(3);
    const clock = new FakeClock();
    const f = new FastPathFilters({ nft, clock, logger: silentLogger }, { port: 6785, overlayPorts: PORTS });
    await f.install(['198.18.0.2']);
    const calls = nft.calls;
    await f.refresh();
    expect(f.report()).toMatchObject({ refused: { packets: 20, bytes: 1960 }, podProbes: { packets: 7, bytes: 448 } });
    nft.counterValues = nft.counterValues.map((c) => ({ ...c, packets: c.packets + 1 }));
    await f.refresh();
    expect(f.report().refused.packets).toBe(20);
    expect(nft.calls).toBe(calls + 1);
    clock.advance(1000);
    await f.refresh();
    expect(f.report().refused.packets).toBe(21);
    expect(nft.calls).toBe(calls + 2);
  });

  it('FastPath keeps the set to its eligible peers as they come and go, and writes a lost table again', async () => {
    const { a, advance } = await twoRouters();
    expect(peersOf(a.nft)).toEqual(['198.18.0.2']);
    a.fp.setPeer(3, 'c', '198.18.0.3');
    a.fp.setPeer(4, 'd', '198.18.0.4');
    await settle();
    expect(peersOf(a.nft)).toEqual(['198.18.0.2', '198.18.0.3', '198.18.0.4']);
    a.fp.setPeer(3, 'c', '198.18.0.33'); // moved
    a.fp.setPeer(4, 'd', undefined); // gone
    await settle();
    expect(peersOf(a.nft)).toEqual(['198.18.0.2', '198.18.0.33']);
    expect(a.fp.report().vxlanPort).toMatchObject({ table: 'inet weft-vxlan', port: 6785, peers: ['198.18.0.2', '198.18.0.33'] });
    a.nft.tables.clear(); // someone flushed the ruleset
    a.nft.sets.clear();
    a.fp.setPeer(5, 'e', '198.18.0.5');
    await advance(250);
    expect(peersOf(a.nft)).toEqual(['198.18.0.2', '198.18.0.33', '198.18.0.5']);
    expect(a.fp.opErrors).toBe(0);
  });

  it('an encrypted cluster lets in only peers in trusted subnets', async () => {
    const clock = new FakeClock();
    const nft = new FakeNft();
    const fp = new FastPath(
      { netlink: new FakeKernel().netlink(), nft, probeTap: new FakeTap({ vnetHdr: false }), clock, logger: silentLogger, macs: new Directory(), owner: { setFast: () => undefined, peerSilent: () => false } },
      { selfId: 1, bridge: 'weft', sleeveTap: TAP, vxlan: { name: VXLAN, vni: 1, port: 6785, local: '198.18.0.1', mtu: 1450 }, maxFrame: 1418, encrypted: true, trusted: [{ address: '198.18.0.0', prefix: 24 }] },
    );
    await fp.start();
    fp.setPeer(2, 'b', '198.18.0.2');
    fp.setPeer(3, 'c', '198.19.0.3');
    await settle();
    expect(peersOf(nft)).toEqual(['198.18.0.2']);
    fp.stop();
  });

  it('after a restart the table is written with the peers adopted from the kernel before the device goes up', async () => {
    const kernel = new FakeKernel();
    kernel.deviceExists = true;
    for (const mac of [FLOOD_MAC, probeMacText(2), '02:40:00:00:02:02']) kernel.vxlan.set(`${mac}@198.18.0.2`, { mac, dst: '198.18.0.2' });
    const nft = new FakeNft();
    nft.tables.set('inet weft-vxlan', 'the table of the previous run');
    const atUp: (string[] | undefined)[] = [];
    const netlink = kernel.netlink();
    const fp = new FastPath(
      {
        netlink: new Proxy(netlink, { get: (t, prop: string) => (prop === 'setUp' ? (dev: string) => (dev === VXLAN && atUp.push(peersOf(nft)), Promise.resolve()) : t[prop as keyof typeof t]) }),
        nft,
        probeTap: new FakeTap({ vnetHdr: false }),
        clock: new FakeClock(),
        logger: silentLogger,
        macs: new Directory(),
        owner: { setFast: () => undefined, peerSilent: () => false },
      },
      { selfId: 1, bridge: 'weft', sleeveTap: TAP, vxlan: { name: VXLAN, vni: 1, port: 6785, local: '198.18.0.1', mtu: 1450 }, maxFrame: 1418, encrypted: false, trusted: [] },
    );
    await fp.start();
    expect(atUp).toEqual([['198.18.0.2']]);
    expect(fp.status()).toMatchObject([{ underlay: '198.18.0.2', state: 'up' }]);
    fp.stop();
    // stop leaves the kernel state, the table included (the device still carries traffic)
    expect(peersOf(nft)).toEqual(['198.18.0.2']);
  });
});
