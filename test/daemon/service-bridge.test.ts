import { describe, expect, it } from 'vitest';
import { ServiceBridge, wantedSettings } from '../../src/daemon/service-bridge.js';
import type { LinkInfo } from '../../src/platform/netlink.js';
import type { Sysctl } from '../../src/platform/sysctl.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { recordingLogger } from '../fakes/recording-logger.js';

/** /proc/sys as a map; a name absent is a parameter this kernel lacks; `readOnly` refuses writes. */
class FakeSysctl implements Sysctl {
  readonly values: Map<string, string>;
  readonly readOnly = new Set<string>();
  writes: string[] = [];

  constructor(values: Record<string, string>) {
    this.values = new Map(Object.entries(values));
  }

  read(name: string): Promise<string | undefined> {
    return Promise.resolve(this.values.get(name));
  }

  write(name: string, value: string): Promise<void> {
    this.writes.push(`${name}=${value}`);
    if (!this.values.has(name)) return Promise.reject(new Error(`cannot set ${name}: no such parameter in this kernel`));
    if (this.readOnly.has(name)) return Promise.reject(new Error(`cannot set ${name}: read-only file system`));
    this.values.set(name, value);
    return Promise.resolve();
  }
}

type Port = Pick<LinkInfo, 'name' | 'kind' | 'hairpin'>;

class FakeBridge {
  ports: Port[];
  hairpinSet: string[] = [];
  failHairpin = new Set<string>();

  constructor(ports: Port[]) {
    this.ports = ports;
  }

  bridgePorts(): Promise<LinkInfo[]> {
    return Promise.resolve(this.ports.map((p, index) => ({ ...p, index, mtu: 1400, up: true, master: 'weft', mac: undefined })));
  }

  setHairpin(port: string, on: boolean): Promise<void> {
    if (this.failHairpin.has(port)) return Promise.reject(new Error(`${port}: no such device`));
    this.hairpinSet.push(`${port}=${on}`);
    const p = this.ports.find((x) => x.name === port);
    if (p !== undefined) p.hairpin = on;
    return Promise.resolve();
  }
}

const OFF = {
  'net.bridge.bridge-nf-call-iptables': '0',
  'net.bridge.bridge-nf-call-ip6tables': '0',
  'net.ipv4.ip_forward': '0',
  'net.ipv6.conf.all.forwarding': '0',
};

function make(init: { enabled: boolean; ipv6?: boolean; sysctl?: Record<string, string>; ports?: Port[] }) {
  const sysctl = new FakeSysctl(init.sysctl ?? OFF);
  const bridge = new FakeBridge(
    init.ports ?? [
      { name: 'weft-tap', kind: 'tun', hairpin: false },
      { name: 'weft-vx', kind: 'vxlan', hairpin: false },
      { name: 'vw0123456789ab', kind: 'veth', hairpin: false },
      { name: 'vp1', kind: 'veth', hairpin: true },
    ],
  );
  const { logger, lines } = recordingLogger('info');
  const clock = new FakeClock();
  const sb = new ServiceBridge({ netlink: bridge, sysctl, clock, logger }, { bridge: 'weft', enabled: init.enabled, ipv6: init.ipv6 ?? false, reconcileMs: 1000 });
  return { sb, sysctl, bridge, lines, clock };
}

describe('ServiceBridge: what the bridge needs for Services', () => {
  it.each([
    ['IPv4 only', false, ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables', 'net.ipv4.ip_forward']],
    ['with an IPv6 range', true, ['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']],
  ])('wants bridge netfilter and forwarding, %s', (_, ipv6, names) => {
    expect(wantedSettings(ipv6).map((s) => s.name)).toEqual(names);
    expect(wantedSettings(ipv6).every((s) => s.want === '1')).toBe(true);
  });

  it('enabled: turns the parameters on and hairpin on the veth ports only (never the TAP or the VXLAN device)', async () => {
    const { sb, sysctl, bridge } = make({ enabled: true, ipv6: true });
    await sb.start();
    await sb.stop();
    for (const [name, v] of sysctl.values) expect(v, name).toBe('1');
    expect(bridge.hairpinSet).toEqual(['vw0123456789ab=true']);
    const st = sb.status();
    expect(st.settings.every((s) => s.ok)).toBe(true);
    expect(st.hairpin).toEqual({ ports: 2, on: ['vp1', 'vw0123456789ab'], off: [] });
    expect(st.problems).toEqual([]);
  });

  it('IPv4 only: IPv6 forwarding is left as it is', async () => {
    const { sb, sysctl } = make({ enabled: true, ipv6: false });
    await sb.start();
    await sb.stop();
    expect(sysctl.values.get('net.ipv6.conf.all.forwarding')).toBe('0');
    expect(sysctl.writes).not.toContain('net.ipv6.conf.all.forwarding=1');
  });

  it('disabled: writes nothing and reports what the kernel has', async () => {
    const { sb, sysctl, bridge } = make({ enabled: false });
    await sb.start();
    await sb.stop();
    expect(sysctl.writes).toEqual([]);
    expect(bridge.hairpinSet).toEqual([]);
    const st = sb.status();
    expect(st.enabled).toBe(false);
    expect(st.settings.map((s) => [s.name, s.value, s.ok])).toEqual([
      ['net.bridge.bridge-nf-call-iptables', '0', false],
      ['net.bridge.bridge-nf-call-ip6tables', '0', false],
      ['net.ipv4.ip_forward', '0', false],
    ]);
    expect(st.hairpin.off).toEqual(['vw0123456789ab']);
  });

  it('disabled without br_netfilter: the settings read missing, and that is no problem of the router', async () => {
    const { sb, lines } = make({ enabled: false, sysctl: { 'net.ipv4.ip_forward': '1' } });
    await sb.start();
    await sb.stop();
    expect(sb.status().settings.filter((s) => s.value === null).map((s) => s.name)).toEqual(['net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables']);
    expect(sb.status().problems).toEqual([]);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('without br_netfilter: says so, sets the rest, and does not fail the start', async () => {
    const { sb, sysctl, lines } = make({ enabled: true, sysctl: { 'net.ipv4.ip_forward': '0' } });
    await sb.start();
    await sb.stop();
    expect(sysctl.values.get('net.ipv4.ip_forward')).toBe('1');
    const st = sb.status();
    expect(st.problems).toEqual([
      'net.bridge.bridge-nf-call-iptables: not in this kernel: br_netfilter is not loaded (modprobe br_netfilter)',
      'net.bridge.bridge-nf-call-ip6tables: not in this kernel: br_netfilter is not loaded (modprobe br_netfilter)',
    ]);
    expect(st.settings.find((s) => s.name === 'net.bridge.bridge-nf-call-iptables')).toMatchObject({ value: null, ok: false });
    expect(lines.filter((l) => l.msg === 'the bridge is not fully set up for Services')).toHaveLength(2);
  });

  it('a parameter that cannot be written or a port that refuses hairpin is a problem named, logged once while it lasts', async () => {
    const { sb, sysctl, bridge, lines, clock } = make({ enabled: true });
    sysctl.readOnly.add('net.ipv4.ip_forward');
    bridge.failHairpin.add('vw0123456789ab');
    await sb.start();
    clock.advance(1000);
    await sb.reconcile();
    const st = sb.status();
    expect(st.problems).toEqual([
      expect.stringMatching(/^net\.ipv4\.ip_forward: .*read-only/),
      expect.stringMatching(/^hairpin on vw0123456789ab: .*no such device/),
    ]);
    expect(st.hairpin.off).toEqual(['vw0123456789ab']);
    expect(lines.filter((l) => l.msg === 'the bridge is not fully set up for Services')).toHaveLength(2);
    // Fixed: the problem goes from the report.
    sysctl.readOnly.clear();
    bridge.failHairpin.clear();
    await sb.reconcile();
    await sb.stop();
    expect(sb.status().problems).toEqual([]);
  });

  it('a port added later gets hairpin at the next check', async () => {
    const { sb, bridge, clock } = make({ enabled: true });
    await sb.start();
    bridge.ports.push({ name: 'vwffffffffffff', kind: 'veth', hairpin: false });
    clock.advance(1000);
    await sb.reconcile();
    await sb.stop();
    expect(bridge.hairpinSet).toContain('vwffffffffffff=true');
    expect(sb.status().hairpin.on).toContain('vwffffffffffff');
  });

  it('a bridge that cannot be listed is a problem, not a failure', async () => {
    const { sb, bridge } = make({ enabled: true });
    bridge.bridgePorts = () => Promise.reject(new Error('Cannot find device "weft"'));
    await sb.start();
    await sb.stop();
    expect(sb.status().problems).toEqual([expect.stringContaining('cannot list the ports of bridge weft: ')]);
  });
});
