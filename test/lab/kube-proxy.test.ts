import { describe, expect, it } from 'vitest';
import {
  chainNameBase,
  endpointChain,
  externalChain,
  kubeProxyScript,
  MASQUERADE_MARK,
  serviceChain,
  servicesProblems,
  type KubeServicePort,
} from '../../lab/kube-proxy.js';

const echo: KubeServicePort = {
  namespace: 'default',
  name: 'echo',
  portName: 'http',
  protocol: 'tcp',
  clusterIP: '10.96.0.10',
  port: 80,
  nodePort: 30080,
  endpoints: [
    { ip: '10.47.1.2', port: 8080 },
    { ip: '10.47.2.2', port: 8080 },
  ],
};

/** The rules added to one chain, in order. */
function rules(script: string, table: string, chain: string): string[] {
  const prefix = `add rule ${table} ${chain} `;
  return script.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
}

describe("lab/kube-proxy: kube-proxy's nftables ruleset", () => {
  it.each([
    // the examples of kube-proxy's own comments (servicePortChainNameBase, servicePortEndpointChainNameBase)
    ['ns1/svc1/tcp/p80', 'ULMVA6XW-ns1/svc1/tcp/p80'],
    ['ns1/svc1/tcp/p80__10.180.0.1/80', '5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80'],
  ])('chain name of %s is hashed as kube-proxy hashes it', (name, want) => {
    expect(chainNameBase(name)).toBe(want);
  });

  it('a name longer than 240 characters is cut with "..."', () => {
    const base = chainNameBase(`${'a'.repeat(63)}/${'b'.repeat(63)}/tcp/${'c'.repeat(63)}__${'f'.repeat(39)}/65535`);
    expect(base).toHaveLength(240);
    expect(base.endsWith('...')).toBe(true);
  });

  it('IPv6 endpoint addresses are written with dots in chain names', () => {
    expect(endpointChain({ ...echo, clusterIP: 'fd00:96::10' }, { ip: 'fd00:47::2', port: 80 })).toMatch(/^endpoint-[A-Z2-7]{8}-default\/echo\/tcp\/http__fd00\.47\.\.2\/80$/);
  });

  it('the table is replaced whole, with the base chains at kube-proxy priorities', () => {
    const s = kubeProxyScript({ family: 4 }, [echo]);
    expect(s.split('\n').slice(0, 3)).toEqual(['add table ip kube-proxy', 'delete table ip kube-proxy', 'add table ip kube-proxy { comment "rules for kube-proxy" ; }']);
    for (const [chain, hook] of [
      ['filter-prerouting', 'type filter hook prerouting priority -110'],
      ['filter-forward', 'type filter hook forward priority -110'],
      ['nat-prerouting', 'type nat hook prerouting priority -100'],
      ['nat-output', 'type nat hook output priority -100'],
      ['nat-postrouting', 'type nat hook postrouting priority 100'],
    ]) {
      expect(s).toContain(`add chain ip kube-proxy ${chain} { ${hook} ; policy accept ; }`);
    }
    expect(rules(s, 'ip kube-proxy', 'nat-prerouting')).toEqual(['jump services']);
    expect(rules(s, 'ip kube-proxy', 'nat-postrouting')).toEqual(['jump masquerading']);
    expect(rules(s, 'ip kube-proxy', 'filter-output')).toEqual(['ct state new jump endpoints-check', 'ct state new jump firewall-check']);
  });

  it('dispatch: ClusterIP through service-ips, NodePort through service-nodeports on any local address', () => {
    const s = kubeProxyScript({ family: 4 }, [echo]);
    expect(rules(s, 'ip kube-proxy', 'services')).toEqual([
      'ip daddr . meta l4proto . th dport vmap @service-ips',
      'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    ]);
    expect(s).toContain(`add element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 : goto ${serviceChain(echo)} }`);
    expect(s).toContain(`add element ip kube-proxy service-nodeports { tcp . 30080 : goto ${externalChain(echo)} }`);
  });

  it('the service chain spreads over every endpoint, on any node; each endpoint masquerades hairpin traffic, then DNATs', () => {
    const s = kubeProxyScript({ family: 4, clusterCidr: '10.47.0.0/16' }, [echo]);
    const [e1, e2] = echo.endpoints.map((e) => endpointChain(echo, e));
    expect(rules(s, 'ip kube-proxy', serviceChain(echo))).toEqual([
      'ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.47.0.0/16 jump mark-for-masquerade',
      `numgen random mod 2 vmap { 0 : goto ${e1} , 1 : goto ${e2} }`,
    ]);
    expect(rules(s, 'ip kube-proxy', e1!)).toEqual(['ip saddr 10.47.1.2 jump mark-for-masquerade', 'meta l4proto tcp dnat to 10.47.1.2:8080']);
  });

  it('NodePort with externalTrafficPolicy Cluster: marked for masquerade, then the service chain', () => {
    const s = kubeProxyScript({ family: 4 }, [echo]);
    expect(rules(s, 'ip kube-proxy', externalChain(echo))).toEqual(['jump mark-for-masquerade', `goto ${serviceChain(echo)}`]);
    expect(rules(s, 'ip kube-proxy', 'mark-for-masquerade')).toEqual([`mark set mark or ${MASQUERADE_MARK}`]);
    expect(rules(s, 'ip kube-proxy', 'masquerading')).toEqual([`mark and ${MASQUERADE_MARK} == 0 return`, `mark set mark xor ${MASQUERADE_MARK}`, 'masquerade fully-random']);
  });

  it('without a cluster CIDR there is no local-traffic rule', () => {
    expect(rules(kubeProxyScript({ family: 4 }, [echo]), 'ip kube-proxy', serviceChain(echo))).toHaveLength(1);
  });

  it('a service without endpoints is rejected, and has no NAT chain', () => {
    const none = { ...echo, name: 'none', endpoints: [] };
    const s = kubeProxyScript({ family: 4 }, [none]);
    expect(s).toContain('add element ip kube-proxy no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }');
    expect(s).toContain('add element ip kube-proxy no-endpoint-nodeports { tcp . 30080 : goto reject-chain }');
    expect(s).not.toContain(serviceChain(none));
    expect(rules(s, 'ip kube-proxy', 'reject-chain')).toEqual(['reject']);
  });

  it('IPv6: table ip6, ipv6_addr maps, bracketed DNAT, ::1 excluded from NodePorts', () => {
    const v6: KubeServicePort = { ...echo, clusterIP: 'fd00:96::10', endpoints: [{ ip: 'fd00:47::2', port: 8080 }] };
    const s = kubeProxyScript({ family: 6 }, [v6]);
    expect(s).toContain('add map ip6 kube-proxy service-ips { type ipv6_addr . inet_proto . inet_service : verdict ;');
    expect(rules(s, 'ip6 kube-proxy', endpointChain(v6, v6.endpoints[0]!))).toEqual(['ip6 saddr fd00:47::2 jump mark-for-masquerade', 'meta l4proto tcp dnat to [fd00:47::2]:8080']);
    expect(rules(s, 'ip6 kube-proxy', 'services')[1]).toBe('fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports');
  });

  it('--nodeport-addresses: NodePorts only on the addresses of the set nodeport-ips', () => {
    const s = kubeProxyScript({ family: 4, nodePortAddresses: ['198.18.0.1'] }, [echo]);
    expect(s).toContain('add element ip kube-proxy nodeport-ips { 198.18.0.1 }');
    expect(rules(s, 'ip kube-proxy', 'services')[1]).toBe('ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports');
  });

  it.each([
    ['a ClusterIP of the other family', { clusterIP: 'fd00::1' }, 'clusterIP fd00::1 is not IPv4'],
    ['an endpoint of the other family', { endpoints: [{ ip: 'fd00::2', port: 80 }] }, 'endpoint fd00::2 is not IPv4'],
    ['a port out of range', { port: 0 }, 'port must be a port number (1-65535), not 0'],
    ['a NodePort out of range', { nodePort: 70000 }, 'nodePort must be a port number (1-65535), not 70000'],
    ['an endpoint port out of range', { endpoints: [{ ip: '10.47.1.2', port: 65536 }] }, 'endpoint port 65536 is not a port number'],
    ['a name that is no DNS label', { name: 'Echo;drop' }, 'names must be DNS labels'],
  ])('refuses %s, naming the service', (_, change, want) => {
    const bad = { ...echo, ...change } as KubeServicePort;
    const problems = servicesProblems(4, [bad]);
    expect(problems.join('\n')).toContain(want);
    expect(problems.every((p) => p.startsWith(`service default/${bad.name}:http`))).toBe(true);
    expect(() => kubeProxyScript({ family: 4 }, [bad])).toThrow(want);
  });
});
