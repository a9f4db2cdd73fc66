import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy, policyId } from '../../src/policy/compile.js';
import type { CompiledPolicy } from '../../src/policy/model.js';
import { arbPolicies, arbWorld, toModel } from './arbitraries.js';
import { all, blockPeer, expr, labels, model, ns, pod, podsPeer, policy, port, rule } from './fixtures.js';

/** The elements of a set, failing when the set is not there. */
function elems(c: CompiledPolicy, name: string): string[] {
  const s = c.sets.find((x) => x.name === name);
  expect(s, `set ${name}`).toBeDefined();
  return s!.elements;
}
const setNames = (c: CompiledPolicy) => c.sets.map((s) => s.name);

const P = policyId('a', 'p');
const Q = policyId('a', 'q');

const web = pod('a', 'web', { labels: { app: 'web' }, ips: ['10.32.0.2'], namedPorts: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }] });
const client = pod('a', 'client', { labels: { app: 'client' }, ips: ['10.32.1.3'], node: 'n2' });
const other = pod('b', 'other', { labels: { app: 'client' }, ips: ['10.32.2.4'], node: 'n3' });

const HEAD = `  counter ingress_dropped { }
  counter egress_dropped { }
  counter ${P}_allowed { }
  counter ${P}_dropped { }
  set self4 { type ipv4_addr . ipv4_addr; }
  set self6 { type ipv6_addr . ipv6_addr; }
  set isolated_in4 { type ipv4_addr; }
  set isolated_in6 { type ipv6_addr; }
  set isolated_eg4 { type ipv4_addr; }
  set isolated_eg6 { type ipv6_addr; }
  set ${P}_sel4 { type ipv4_addr; }
  set ${P}_sel6 { type ipv6_addr; }
`;
const FORWARD = `  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    ip saddr . ip daddr @self4 accept
    ip6 saddr . ip6 daddr @self6 accept
    ip saddr @isolated_eg4 jump egress
    ip6 saddr @isolated_eg6 jump egress
    ip daddr @isolated_in4 jump ingress
    ip6 daddr @isolated_in6 jump ingress
  }
`;

describe('the policy compiler: whole tables', () => {
  it('no policy: the chains, nothing isolated, only the self sets filled', () => {
    const c = compilePolicy(model([], [web, client]));
    expect(c.rules).toBe(`  counter ingress_dropped { }
  counter egress_dropped { }
  set self4 { type ipv4_addr . ipv4_addr; }
  set self6 { type ipv6_addr . ipv6_addr; }
  set isolated_in4 { type ipv4_addr; }
  set isolated_in6 { type ipv6_addr; }
  set isolated_eg4 { type ipv4_addr; }
  set isolated_eg6 { type ipv6_addr; }
${FORWARD}  chain egress {
    counter name "egress_dropped" drop
  }
  chain ingress {
    counter name "ingress_dropped" drop
  }
`);
    expect(elems(c, 'self4')).toEqual(['10.32.0.2 . 10.32.0.2']); // the local pod only
    expect(c.sets.filter((s) => s.name !== 'self4').every((s) => s.elements.length === 0)).toBe(true);
    expect(c.counters).toEqual(['ingress_dropped', 'egress_dropped']);
    expect(c.policies).toEqual([]);
  });

  it('default deny ingress: the pods isolated, no allow rule, drops counted per policy', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true })], [web, client]));
    expect(c.rules).toBe(`${HEAD}${FORWARD}  chain egress {
    counter name "egress_dropped" drop
  }
  chain ingress {
    ip daddr @${P}_sel4 counter name "${P}_dropped"
    ip6 daddr @${P}_sel6 counter name "${P}_dropped"
    counter name "ingress_dropped" drop
  }
`);
    expect(elems(c, 'isolated_in4')).toEqual(['10.32.0.2']);
    expect(elems(c, 'isolated_eg4')).toEqual([]);
    expect(elems(c, `${P}_sel4`)).toEqual(['10.32.0.2']);
    expect(c.counters).toEqual(['ingress_dropped', 'egress_dropped', `${P}_allowed`, `${P}_dropped`]);
    expect(c.policies).toEqual([{ namespace: 'a', name: 'p', id: P, ingress: true, egress: false, selected: ['a/web'], allowedCounter: `${P}_allowed`, droppedCounter: `${P}_dropped` }]);
  });

  it('default deny egress', () => {
    const c = compilePolicy(model([policy('a', 'p', { egress: true })], [web]));
    expect(c.rules).toBe(`${HEAD}${FORWARD}  chain egress {
    ip saddr @${P}_sel4 counter name "${P}_dropped"
    ip6 saddr @${P}_sel6 counter name "${P}_dropped"
    counter name "egress_dropped" drop
  }
  chain ingress {
    counter name "ingress_dropped" drop
  }
`);
    expect(elems(c, 'isolated_eg4')).toEqual(['10.32.0.2']);
    expect(elems(c, 'isolated_in4')).toEqual([]);
  });

  it('allow all, both ways: one rule per family with no peer or port match; egress returns, ingress accepts', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, egress: true, ingressRules: [rule()], egressRules: [rule()] })], [web]));
    expect(c.rules).toBe(`${HEAD}${FORWARD}  chain egress {
    ip saddr @${P}_sel4 counter name "${P}_allowed" return
    ip6 saddr @${P}_sel6 counter name "${P}_allowed" return
    ip saddr @${P}_sel4 counter name "${P}_dropped"
    ip6 saddr @${P}_sel6 counter name "${P}_dropped"
    counter name "egress_dropped" drop
  }
  chain ingress {
    ip daddr @${P}_sel4 counter name "${P}_allowed" accept
    ip6 daddr @${P}_sel6 counter name "${P}_allowed" accept
    ip daddr @${P}_sel4 counter name "${P}_dropped"
    ip6 daddr @${P}_sel6 counter name "${P}_dropped"
    counter name "ingress_dropped" drop
  }
`);
  });

  it('ingress from pods on TCP 80: the peers set on the source, the ports set, both families', () => {
    const c = compilePolicy(model([policy('a', 'p', { podSelector: labels({ app: 'web' }), ingress: true, ingressRules: [rule([podsPeer(labels({ app: 'client' }))], [port(80)])] })], [web, client, other]));
    expect(c.rules).toBe(`${HEAD}  set ${P}_i0_pods4 { type ipv4_addr; }
  set ${P}_i0_pods6 { type ipv6_addr; }
  set ${P}_i0_ports { type inet_proto . inet_service; flags interval; }
${FORWARD}  chain egress {
    counter name "egress_dropped" drop
  }
  chain ingress {
    ip daddr @${P}_sel4 ip saddr @${P}_i0_pods4 meta l4proto . th dport @${P}_i0_ports counter name "${P}_allowed" accept
    ip6 daddr @${P}_sel6 ip6 saddr @${P}_i0_pods6 meta l4proto . th dport @${P}_i0_ports counter name "${P}_allowed" accept
    ip daddr @${P}_sel4 counter name "${P}_dropped"
    ip6 daddr @${P}_sel6 counter name "${P}_dropped"
    counter name "ingress_dropped" drop
  }
`);
    expect(elems(c, `${P}_i0_pods4`)).toEqual(['10.32.1.3']); // client (another node), not b/other
    expect(elems(c, `${P}_i0_pods6`)).toEqual([]);
    expect(elems(c, `${P}_i0_ports`)).toEqual(['tcp . 80']);
  });

  it('egress to an ipBlock (IPv4 only) on a named port: the net set on the destination, the named set, no IPv6 net rule', () => {
    const c = compilePolicy(model([policy('a', 'p', { egress: true, egressRules: [rule([blockPeer('10.32.0.0/16', '10.32.2.0/24')], [port('http')])] })], [web, client, other]));
    const egress = c.rules.slice(c.rules.indexOf('chain egress'), c.rules.indexOf('chain ingress'));
    expect(egress).toBe(`chain egress {
    ip saddr @${P}_sel4 ip daddr @${P}_e0_net4 ip daddr . meta l4proto . th dport @${P}_e0_named4 counter name "${P}_allowed" return
    ip saddr @${P}_sel4 counter name "${P}_dropped"
    ip6 saddr @${P}_sel6 counter name "${P}_dropped"
    counter name "egress_dropped" drop
  }
  `);
    expect(setNames(c)).not.toContain(`${P}_e0_net6`);
    expect(setNames(c)).not.toContain(`${P}_e0_ports`);
    expect(elems(c, `${P}_e0_net4`)).toEqual(['10.32.0.0/23', '10.32.3.0-10.32.255.255']);
    // named ports with an ipBlock peer: every known pod that has the port (the net match narrows it)
    expect(elems(c, `${P}_e0_named4`)).toEqual(['10.32.0.2 . tcp . 8080']);
  });
});

describe('the policy compiler: set elements per feature', () => {
  const nsA = ns('a', { team: 'x', env: 'prod' });
  const nsB = ns('b', { team: 'y', env: 'dev' });
  const nsC = ns('c', { team: 'z' });
  const inC = pod('c', 'db', { labels: { app: 'db' }, ips: ['10.32.3.5'], node: 'n2' });
  const pods = [web, client, other, inC];
  const ingressFrom = (...peers: ReturnType<typeof podsPeer>[]) => compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule(peers)] })], pods, [nsA, nsB, nsC]));

  it.each<[string, ReturnType<typeof podsPeer>, string[]]>([
    ['podSelector: pods of the policy namespace', podsPeer(labels({ app: 'client' })), ['10.32.1.3']],
    ['podSelector empty: every pod of the namespace', podsPeer(all()), ['10.32.0.2', '10.32.1.3']],
    ['namespaceSelector matchLabels', podsPeer(undefined, labels({ team: 'y' })), ['10.32.2.4']],
    ['namespaceSelector In', podsPeer(undefined, labels({}, expr('team', 'In', 'x', 'z'))), ['10.32.0.2', '10.32.1.3', '10.32.3.5']],
    ['namespaceSelector NotIn', podsPeer(undefined, labels({}, expr('env', 'NotIn', 'prod'))), ['10.32.2.4', '10.32.3.5']],
    ['namespaceSelector Exists', podsPeer(undefined, labels({}, expr('env', 'Exists'))), ['10.32.0.2', '10.32.1.3', '10.32.2.4']],
    ['namespaceSelector DoesNotExist', podsPeer(undefined, labels({}, expr('env', 'DoesNotExist'))), ['10.32.3.5']],
    ['namespaceSelector empty: every pod of every namespace', podsPeer(undefined, all()), ['10.32.0.2', '10.32.1.3', '10.32.2.4', '10.32.3.5']],
    ['both selectors: matching pods in matching namespaces', podsPeer(labels({ app: 'client' }), labels({}, expr('team', 'Exists'))), ['10.32.1.3', '10.32.2.4']],
    ['namespace by name label', podsPeer(undefined, labels({ 'kubernetes.io/metadata.name': 'c' })), ['10.32.3.5']],
  ])('peer pods, %s', (_, peer, expected) => {
    expect(elems(ingressFrom(peer), `${P}_i0_pods4`)).toEqual(expected);
  });

  it('several peers of one rule add up, each address once', () => {
    const c = ingressFrom(podsPeer(labels({ app: 'client' })), podsPeer(undefined, labels({ team: 'y' })), podsPeer(all()));
    expect(elems(c, `${P}_i0_pods4`)).toEqual(['10.32.0.2', '10.32.1.3', '10.32.2.4']);
  });

  it('a namespace missing from the model has only its name label', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule([podsPeer(undefined, labels({}, expr('team', 'DoesNotExist')))])] })], pods, [nsA]));
    expect(elems(c, `${P}_i0_pods4`)).toEqual(['10.32.2.4', '10.32.3.5']);
  });

  it('a peer set that matches nothing now is still there, empty', () => {
    const c = ingressFrom(podsPeer(labels({ app: 'nobody' })));
    expect(elems(c, `${P}_i0_pods4`)).toEqual([]);
    expect(elems(c, `${P}_i0_pods6`)).toEqual([]);
    expect(c.rules).toContain(`ip saddr @${P}_i0_pods4`);
  });

  it('ipBlock with except, IPv4 and IPv6 in one rule; other blocks add up and overlapping ones merge', () => {
    const c = compilePolicy(
      model(
        [policy('a', 'p', { ingress: true, ingressRules: [rule([blockPeer('192.168.0.0/16', '192.168.1.0/24'), blockPeer('fd00::/16', 'fd00:ab::/32'), blockPeer('192.168.1.128/25')])] })],
        [web],
      ),
    );
    expect(elems(c, `${P}_i0_net4`)).toEqual(['192.168.0.0/24', '192.168.1.128-192.168.255.255']);
    expect(elems(c, `${P}_i0_net6`)).toEqual(['fd00::-fd00:aa:ffff:ffff:ffff:ffff:ffff:ffff', 'fd00:ac::-fd00:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
    expect(setNames(c)).not.toContain(`${P}_i0_pods4`);
    expect(c.rules).toContain(`ip6 daddr @${P}_sel6 ip6 saddr @${P}_i0_net6 counter name "${P}_allowed" accept`);
  });

  it('pods and ipBlock peers in one rule: one rule line per peer kind', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule([podsPeer(all()), blockPeer('10.0.0.0/8')], [port(53, 'UDP')])] })], [web]));
    const lines = c.rules.split('\n').filter((l) => l.includes('_allowed" accept'));
    expect(lines.map((l) => l.trim())).toEqual([
      `ip daddr @${P}_sel4 ip saddr @${P}_i0_pods4 meta l4proto . th dport @${P}_i0_ports counter name "${P}_allowed" accept`,
      `ip daddr @${P}_sel4 ip saddr @${P}_i0_net4 meta l4proto . th dport @${P}_i0_ports counter name "${P}_allowed" accept`,
      `ip6 daddr @${P}_sel6 ip6 saddr @${P}_i0_pods6 meta l4proto . th dport @${P}_i0_ports counter name "${P}_allowed" accept`,
    ]);
  });

  it.each<[string, ReturnType<typeof port>[], string[]]>([
    ['TCP', [port(80)], ['tcp . 80']],
    ['UDP', [port(53, 'UDP')], ['udp . 53']],
    ['SCTP', [port(9, 'SCTP')], ['sctp . 9']],
    ['endPort: a range', [port(32000, 'TCP', 32768)], ['tcp . 32000-32768']],
    ['protocol only: every port', [port(undefined, 'UDP')], ['udp . 0-65535']],
    ['several, sorted by protocol then port, overlapping and adjacent ranges merged', [port(443), port(53, 'UDP'), port(80, 'TCP', 90), port(85, 'TCP', 100), port(101), port(9, 'SCTP')], ['tcp . 80-101', 'tcp . 443', 'udp . 53', 'sctp . 9']],
    ['protocol only swallows the numeric ports of that protocol', [port(80), port(undefined, 'TCP')], ['tcp . 0-65535']],
  ])('ports: %s', (_, ports, expected) => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule([], ports)] })], [web]));
    expect(elems(c, `${P}_i0_ports`)).toEqual(expected);
    expect(setNames(c).filter((n) => n.includes('named'))).toEqual([]);
  });

  it('named ports, ingress: resolved on the selected local pods, by name and protocol', () => {
    const web2 = pod('a', 'web2', { labels: { app: 'web' }, ips: ['10.32.0.9', 'fd00::9'], namedPorts: [{ name: 'http', protocol: 'TCP', port: 9090 }, { name: 'dns', protocol: 'TCP', port: 53 }] });
    const remote = pod('a', 'web3', { labels: { app: 'web' }, ips: ['10.32.1.9'], node: 'n2', namedPorts: [{ name: 'http', protocol: 'TCP', port: 7070 }] });
    const c = compilePolicy(model([policy('a', 'p', { podSelector: labels({ app: 'web' }), ingress: true, ingressRules: [rule([], [port('http'), port('dns', 'UDP'), port(22)])] })], [web, web2, remote]));
    expect(elems(c, `${P}_i0_named4`)).toEqual(['10.32.0.2 . tcp . 8080', '10.32.0.2 . udp . 5353', '10.32.0.9 . tcp . 9090']);
    expect(elems(c, `${P}_i0_named6`)).toEqual(['fd00::9 . tcp . 9090']);
    expect(elems(c, `${P}_i0_ports`)).toEqual(['tcp . 22']);
    expect(c.rules).toContain(`ip daddr @${P}_sel4 ip daddr . meta l4proto . th dport @${P}_i0_named4 counter name "${P}_allowed" accept`);
  });

  it('named ports, egress: resolved on the pods the peers select (any node); with no peers on every known pod', () => {
    const c = compilePolicy(
      model(
        [
          policy('a', 'p', { egress: true, egressRules: [rule([podsPeer(undefined, labels({ team: 'y' }))], [port('http')])] }),
          policy('a', 'q', { egress: true, egressRules: [rule([], [port('http')])] }),
        ],
        [web, client, { ...other, namedPorts: [{ name: 'http', protocol: 'TCP', port: 8000 }] }],
        [nsA, nsB],
      ),
    );
    expect(elems(c, `${P}_e0_named4`)).toEqual(['10.32.2.4 . tcp . 8000']);
    expect(elems(c, `${Q}_e0_named4`)).toEqual(['10.32.0.2 . tcp . 8080', '10.32.2.4 . tcp . 8000']);
    expect(c.rules).toContain(`ip saddr @${Q}_sel4 ip daddr . meta l4proto . th dport @${Q}_e0_named4 counter name "${Q}_allowed" return`);
  });

  it('egress and ingress of one policy, rules numbered per direction', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, egress: true, ingressRules: [rule([], [port(80)]), rule([], [port(81)])], egressRules: [rule([], [port(53, 'UDP')])] })], [web]));
    expect(elems(c, `${P}_i0_ports`)).toEqual(['tcp . 80']);
    expect(elems(c, `${P}_i1_ports`)).toEqual(['tcp . 81']);
    expect(elems(c, `${P}_e0_ports`)).toEqual(['udp . 53']);
    expect(elems(c, 'isolated_in4')).toEqual(['10.32.0.2']);
    expect(elems(c, 'isolated_eg4')).toEqual(['10.32.0.2']);
  });

  it('egress rules of a policy without egress are ignored', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, egressRules: [rule([], [port(53)])] })], [web]));
    expect(setNames(c).some((n) => n.includes('_e0_'))).toBe(false);
    expect(elems(c, 'isolated_eg4')).toEqual([]);
  });

  it('two policies on one pod: both select it, it is isolated once, each has its rules, dropped counted at each', () => {
    const c = compilePolicy(
      model(
        [
          policy('a', 'q', { podSelector: labels({ app: 'web' }), ingress: true, ingressRules: [rule([], [port(443)])] }),
          policy('a', 'p', { ingress: true, ingressRules: [rule([], [port(80)])] }),
        ],
        [web, pod('a', 'x', { ips: ['10.32.0.3'] })],
      ),
    );
    expect(c.policies.map((p) => [p.name, p.selected])).toEqual([
      ['p', ['a/web', 'a/x']],
      ['q', ['a/web']],
    ]);
    expect(elems(c, 'isolated_in4')).toEqual(['10.32.0.2', '10.32.0.3']);
    expect(elems(c, `${P}_sel4`)).toEqual(['10.32.0.2', '10.32.0.3']);
    expect(elems(c, `${Q}_sel4`)).toEqual(['10.32.0.2']);
    const ingress = c.rules.slice(c.rules.indexOf('chain ingress'));
    // policies in namespace/name order: p before q
    expect(ingress.indexOf(`@${P}_i0_ports`)).toBeLessThan(ingress.indexOf(`@${Q}_i0_ports`));
    expect(ingress).toContain(`ip daddr @${P}_sel4 counter name "${P}_dropped"\n    ip6 daddr @${P}_sel6 counter name "${P}_dropped"\n    ip daddr @${Q}_sel4 counter name "${Q}_dropped"`);
  });

  it('a hostNetwork pod is never selected, isolated, a peer or a self pair', () => {
    const host = pod('a', 'host', { labels: { app: 'web' }, ips: ['198.18.0.1'], hostNetwork: true, namedPorts: [{ name: 'http', protocol: 'TCP', port: 80 }] });
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, egress: true, ingressRules: [rule([podsPeer(all())], [port('http')])], egressRules: [rule([], [port('http')])] })], [host]));
    for (const s of c.sets) expect(s.elements, s.name).toEqual([]);
    expect(c.policies[0]!.selected).toEqual([]);
  });

  it('a pod without addresses is never selected; a pod with a bad address keeps its good ones', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule([podsPeer(all())])] })], [pod('a', 'none'), pod('a', 'bad', { ips: ['10.32.0.7', 'nope } flush ruleset'] })]));
    expect(c.policies[0]!.selected).toEqual(['a/bad']);
    expect(elems(c, `${P}_sel4`)).toEqual(['10.32.0.7']);
    expect(elems(c, `${P}_i0_pods4`)).toEqual(['10.32.0.7']);
    expect(c.sets.flatMap((s) => s.elements).join()).not.toContain('nope');
  });

  it('a dual-stack pod: both families in every set, IPv6 canonical, sorted numerically', () => {
    const d = pod('a', 'dual', { labels: { app: 'web' }, ips: ['FD00:0:0::10', '10.32.0.10', 'fd00::9'], namedPorts: [{ name: 'http', protocol: 'TCP', port: 80 }] });
    const peer = pod('a', 'peer', { ips: ['10.32.1.10', 'fd00::1:10'], node: 'n2' });
    const c = compilePolicy(model([policy('a', 'p', { podSelector: labels({ app: 'web' }), ingress: true, egress: true, ingressRules: [rule([podsPeer(all())], [port('http')])] })], [d, peer]));
    expect(elems(c, 'self4')).toEqual(['10.32.0.10 . 10.32.0.10']);
    expect(elems(c, 'self6')).toEqual(['fd00::9 . fd00::9', 'fd00::10 . fd00::10']);
    expect(elems(c, `${P}_sel6`)).toEqual(['fd00::9', 'fd00::10']);
    expect(elems(c, 'isolated_in6')).toEqual(['fd00::9', 'fd00::10']);
    expect(elems(c, 'isolated_eg6')).toEqual(['fd00::9', 'fd00::10']);
    expect(elems(c, `${P}_i0_pods4`)).toEqual(['10.32.0.10', '10.32.1.10']);
    expect(elems(c, `${P}_i0_pods6`)).toEqual(['fd00::9', 'fd00::10', 'fd00::1:10']);
    expect(elems(c, `${P}_i0_named6`)).toEqual(['fd00::9 . tcp . 80', 'fd00::10 . tcp . 80']);
  });

  it('only local pods are selected and isolated; remote ones are peers', () => {
    const c = compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule([podsPeer(all())])] })], [web, client]));
    expect(c.policies[0]!.selected).toEqual(['a/web']);
    expect(elems(c, `${P}_sel4`)).toEqual(['10.32.0.2']);
    expect(elems(c, `${P}_i0_pods4`)).toEqual(['10.32.0.2', '10.32.1.3']);
  });
});

describe('the policy compiler: names, order, what depends on what', () => {
  it('a policy id is p and 10 hex digits of sha256(namespace/name), a valid nft name', () => {
    expect(policyId('default', 'deny-all')).toMatch(/^p[0-9a-f]{10}$/);
    expect(policyId('default', 'deny-all')).toBe(policyId('default', 'deny-all'));
    expect(policyId('default', 'deny-all')).not.toBe(policyId('default', 'deny-all2'));
    expect(policyId('a', 'b/c')).not.toBe(policyId('a/b', 'c2'));
  });

  it('a policy listed twice is compiled once', () => {
    const p = policy('a', 'p', { ingress: true });
    const c = compilePolicy(model([p, p], [web]));
    expect(c.policies).toHaveLength(1);
    expect(c.counters.filter((n) => n === `${P}_dropped`)).toHaveLength(1);
  });


  it('rules depend on the policies only: any pods and namespaces, the same policies, the same rules (random)', () => {
    fc.assert(
      fc.property(arbPolicies, arbWorld, arbWorld, (policies, w1, w2) => {
        const a = compilePolicy(toModel(policies, w1));
        const b = compilePolicy(toModel(policies, w2));
        return a.rules === b.rules && JSON.stringify(a.counters) === JSON.stringify(b.counters) && a.sets.map((s) => `${s.name} ${s.declaration}`).join() === b.sets.map((s) => `${s.name} ${s.declaration}`).join();
      }),
      { numRuns: 300 },
    );
  });

  it('the output does not depend on the order of policies, pods or namespaces (random)', () => {
    fc.assert(
      fc.property(arbPolicies, arbWorld, (policies, w) => {
        const m = toModel(policies, w);
        const a = compilePolicy(m);
        const b = compilePolicy({ ...m, policies: [...m.policies].reverse(), pods: [...m.pods].reverse(), namespaces: [...m.namespaces].reverse() });
        return JSON.stringify(a) === JSON.stringify(b);
      }),
      { numRuns: 200 },
    );
  });

  it('every set is declared in the rules and every set a rule names exists (random)', () => {
    fc.assert(
      fc.property(arbPolicies, arbWorld, (policies, w) => {
        const c = compilePolicy(toModel(policies, w));
        const declared = new Set([...c.rules.matchAll(/^ {2}set (\S+) \{/gm)].map((m) => m[1]));
        const used = new Set([...c.rules.matchAll(/@(\w+)/g)].map((m) => m[1]));
        const names = c.sets.map((s) => s.name);
        return names.every((n) => declared.has(n)) && declared.size === names.length && [...used].every((n) => declared.has(n));
      }),
      { numRuns: 200 },
    );
  });
});
