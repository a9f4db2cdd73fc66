/**
 * Validation of NetworkPolicy, Pod and Namespace objects into the model: each rule of the
 * Kubernetes API's validation, good and bad, with the problem naming the field; hostile shapes.
 */
import { describe, expect, it } from 'vitest';
import { parseNamespace, parseNetworkPolicy, parsePod, type ParseResult } from '../../src/policy/objects.js';
import type { NetworkPolicy, PolicyPeer, PolicyPod } from '../../src/policy/model.js';

function np(spec: unknown, metadata: unknown = { name: 'p', namespace: 'ns1' }): unknown {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec };
}

function ok<T>(r: ParseResult<T>): T {
  if (!('ok' in r)) throw new Error(`expected ok, got ${JSON.stringify(r.problems)}`);
  return r.ok;
}

function problems<T>(r: ParseResult<T>): string[] {
  if ('ok' in r) throw new Error(`expected problems, got ${JSON.stringify(r.ok)}`);
  return r.problems.map((p) => p.problem);
}

const ingressPeer = (peer: unknown): unknown => np({ podSelector: {}, ingress: [{ from: [peer] }] });
const ingressPort = (port: unknown): unknown => np({ podSelector: {}, ingress: [{ ports: [port] }] });
const firstPeer = (p: NetworkPolicy): PolicyPeer => p.ingressRules[0]!.peers[0]!;

describe('parseNetworkPolicy: accepted, with the model it gives', () => {
  it.each<[string, unknown, (p: NetworkPolicy) => unknown, unknown]>([
    ['empty spec: every pod, ingress only, no rules (deny all ingress)', np({}), (p) => [p.ingress, p.egress, p.ingressRules, p.podSelector], [true, false, [], { matchLabels: {}, matchExpressions: [] }]],
    ['egress rules present, no policyTypes: both', np({ podSelector: {}, egress: [{}] }), (p) => [p.ingress, p.egress], [true, true]],
    ['policyTypes [Egress] only: no ingress even with ingress rules', np({ podSelector: {}, ingress: [{}], policyTypes: ['Egress'] }), (p) => [p.ingress, p.egress], [false, true]],
    ['policyTypes [Ingress] with egress rules: no egress (as Kubernetes)', np({ podSelector: {}, egress: [{}], policyTypes: ['Ingress'] }), (p) => [p.ingress, p.egress], [true, false]],
    ['policyTypes both', np({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] }), (p) => [p.ingress, p.egress], [true, true]],
    ['no namespace: default', np({}, { name: 'p' }), (p) => [p.namespace, p.name], ['default', 'p']],
    ['an empty rule: allow all', np({ ingress: [{}] }), (p) => p.ingressRules, [{ peers: [], ports: [] }]],
    ['null lists are empty', np({ ingress: [{ from: null, ports: null }], egress: null }), (p) => [p.ingressRules, p.egress], [[{ peers: [], ports: [] }], false]],
    [
      'selectors: matchLabels and every operator',
      ingressPeer({
        podSelector: { matchLabels: { app: 'web', 'example.com/tier': '' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['a', 'b'] }, { key: 'x', operator: 'Exists' }, { key: 'y', operator: 'DoesNotExist', values: [] }, { key: 'z', operator: 'NotIn', values: ['q'] }] },
        namespaceSelector: {},
      }),
      firstPeer,
      {
        podSelector: {
          matchLabels: { app: 'web', 'example.com/tier': '' },
          matchExpressions: [
            { key: 'env', operator: 'In', values: ['a', 'b'] },
            { key: 'x', operator: 'Exists', values: [] },
            { key: 'y', operator: 'DoesNotExist', values: [] },
            { key: 'z', operator: 'NotIn', values: ['q'] },
          ],
        },
        namespaceSelector: { matchLabels: {}, matchExpressions: [] },
        ipBlock: undefined,
      },
    ],
    ['ipBlock normalized (host bits cleared), except inside', ingressPeer({ ipBlock: { cidr: '10.1.2.3/8', except: ['10.1.0.0/16', '10.2.3.4/24'] } }), (p) => firstPeer(p).ipBlock, { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.3.0/24'] }],
    ['ipBlock IPv6 normalized', ingressPeer({ ipBlock: { cidr: 'FD00:0:0::1/64', except: ['fd00::8000:0:0:0/65'] } }), (p) => firstPeer(p).ipBlock, { cidr: 'fd00::/64', except: ['fd00::8000:0:0:0/65'] }],
    ['ipBlock 0.0.0.0/0', ingressPeer({ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }), (p) => firstPeer(p).ipBlock, { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }],
    ['port: default TCP, numeric', ingressPort({ port: 80 }), (p) => p.ingressRules[0]!.ports, [{ protocol: 'TCP', port: 80, endPort: undefined }]],
    ['port: named, UDP', ingressPort({ port: 'dns-udp', protocol: 'UDP' }), (p) => p.ingressRules[0]!.ports, [{ protocol: 'UDP', port: 'dns-udp', endPort: undefined }]],
    ['port: range with endPort, SCTP', ingressPort({ port: 1000, endPort: 2000, protocol: 'SCTP' }), (p) => p.ingressRules[0]!.ports, [{ protocol: 'SCTP', port: 1000, endPort: 2000 }]],
    ['port: endPort equal to port', ingressPort({ port: 1000, endPort: 1000 }), (p) => p.ingressRules[0]!.ports[0]!.endPort, 1000],
    ['port: protocol only (every port)', ingressPort({ protocol: 'UDP' }), (p) => p.ingressRules[0]!.ports, [{ protocol: 'UDP', port: undefined, endPort: undefined }]],
    ['unknown fields ignored', np({ podSelector: {}, future: 1, ingress: [{ from: [{ podSelector: {}, other: true }], extra: 'x' }] }), (p) => p.ingressRules.length, 1],
    ['egress to', np({ egress: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24' } }], ports: [{ port: 53, protocol: 'UDP' }] }] }), (p) => p.egressRules[0]!.peers[0]!.ipBlock, { cidr: '192.0.2.0/24', except: [] }],
  ])('%s', (_name, obj, pick, want) => {
    expect(pick(ok(parseNetworkPolicy(obj)))).toEqual(want);
  });
});

describe('parseNetworkPolicy: refused, the problem naming the field', () => {
  it.each<[string, unknown, string]>([
    ['not an object', 'hello', 'a NetworkPolicy must be an object, not "hello"'],
    ['an array', [1], 'a NetworkPolicy must be an object, not a list'],
    ['null', null, 'a NetworkPolicy must be an object, not null'],
    ['no spec', { metadata: { name: 'p' } }, 'spec: is required'],
    ['spec a list', { metadata: { name: 'p' }, spec: [] }, 'spec: must be an object, not a list'],
    ['no name', np({}, { namespace: 'a' }), 'metadata.name: is required'],
    ['name not a DNS subdomain', np({}, { name: 'Bad_Name' }), 'metadata.name: "Bad_Name" is not a DNS subdomain'],
    ['name too long', np({}, { name: 'a'.repeat(254) }), 'metadata.name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa… is longer than 253 characters'],
    ['namespace not a DNS label', np({}, { name: 'p', namespace: 'a.b' }), 'metadata.namespace: "a.b" is not a DNS label'],
    ['namespace a number', np({}, { name: 'p', namespace: 5 }), 'metadata.namespace: must be a string, not 5'],
    ['podSelector a string', np({ podSelector: 'app=web' }), 'spec.podSelector: must be a label selector (an object), not "app=web"'],
    ['matchLabels bad key', np({ podSelector: { matchLabels: { '-x': 'a' } } }), 'spec.podSelector.matchLabels: the key "-x" is not a label key'],
    ['matchLabels bad key prefix', np({ podSelector: { matchLabels: { 'Ex_ample.com/x': 'a' } } }), 'spec.podSelector.matchLabels: the prefix of the key "Ex_ample.com/x"'],
    ['matchLabels empty prefix', np({ podSelector: { matchLabels: { '/x': 'a' } } }), 'spec.podSelector.matchLabels: the key "/x" has an empty prefix'],
    ['matchLabels value too long', np({ podSelector: { matchLabels: { a: 'v'.repeat(64) } } }), 'spec.podSelector.matchLabels["a"]: the value "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv… is longer than 63 characters'],
    ['matchLabels value bad', np({ podSelector: { matchLabels: { a: 'a b' } } }), 'spec.podSelector.matchLabels["a"]: the value "a b" is not a label value'],
    ['matchLabels value a number', np({ podSelector: { matchLabels: { a: 1 } } }), 'spec.podSelector.matchLabels["a"]: must be a string, not 1'],
    ['matchLabels a list', np({ podSelector: { matchLabels: ['a'] } }), 'spec.podSelector.matchLabels: must be a map of labels, not a list'],
    ['In without values', np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }), 'spec.podSelector.matchExpressions[0].values: must have at least one value for In'],
    ['NotIn with empty values', np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] } }), 'spec.podSelector.matchExpressions[0].values: must have at least one value for NotIn'],
    ['Exists with values', np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }), 'spec.podSelector.matchExpressions[0].values: must be empty for Exists'],
    ['DoesNotExist with values', np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] } }), 'spec.podSelector.matchExpressions[0].values: must be empty for DoesNotExist'],
    ['unknown operator', np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] } }), 'spec.podSelector.matchExpressions[0].operator: "Gt" is not one of In, NotIn, Exists, DoesNotExist'],
    ['expression without key', np({ podSelector: { matchExpressions: [{ operator: 'Exists' }] } }), 'spec.podSelector.matchExpressions[0].key: is required'],
    ['expression value bad', np({ podSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', '!'] }] } }), 'spec.podSelector.matchExpressions[0].values[1]: the value "!" is not a label value'],
    ['ingress an object', np({ ingress: { from: [] } }), 'spec.ingress: must be a list, not an object'],
    ['ingress rule a string', np({ ingress: ['x'] }), 'spec.ingress[0]: must be an object, not "x"'],
    ['peer with nothing', ingressPeer({}), 'spec.ingress[0].from[0]: must name a peer: podSelector, namespaceSelector or ipBlock'],
    ['peer with ipBlock and podSelector', ingressPeer({ podSelector: {}, ipBlock: { cidr: '10.0.0.0/8' } }), 'spec.ingress[0].from[0]: may not have both an ipBlock and a podSelector or namespaceSelector'],
    ['peer with ipBlock and namespaceSelector', ingressPeer({ namespaceSelector: {}, ipBlock: { cidr: '10.0.0.0/8' } }), 'spec.ingress[0].from[0]: may not have both'],
    ['peer a number', ingressPeer(3), 'spec.ingress[0].from[0]: must be an object, not 3'],
    ['ipBlock without cidr', ingressPeer({ ipBlock: {} }), 'spec.ingress[0].from[0].ipBlock.cidr: is required'],
    ['ipBlock cidr no prefix', ingressPeer({ ipBlock: { cidr: '10.0.0.1' } }), 'spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.1" is not a CIDR prefix'],
    ['ipBlock cidr bad length', ingressPeer({ ipBlock: { cidr: '10.0.0.0/33' } }), 'spec.ingress[0].from[0].ipBlock.cidr: "10.0.0.0/33" has an invalid prefix length'],
    ['ipBlock cidr garbage', ingressPeer({ ipBlock: { cidr: 'ten/8' } }), 'spec.ingress[0].from[0].ipBlock.cidr: "ten/8" does not start with an IP address'],
    ['except outside cidr', ingressPeer({ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] } }), 'spec.ingress[0].from[0].ipBlock.except[0]: "11.0.0.0/16" is not a strict subset of the cidr 10.0.0.0/8'],
    ['except equal to cidr', ingressPeer({ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }), 'spec.ingress[0].from[0].ipBlock.except[0]: "10.0.0.0/8" is not a strict subset'],
    ['except of the other family', ingressPeer({ ipBlock: { cidr: '0.0.0.0/0', except: ['fd00::/8'] } }), 'spec.ingress[0].from[0].ipBlock.except[0]: "fd00::/8" is not a strict subset'],
    ['except bad', egressTo({ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', 'x'] } }), 'spec.egress[0].to[0].ipBlock.except[1]: "x" is not a CIDR prefix'],
    ['port 0', ingressPort({ port: 0 }), 'spec.ingress[0].ports[0].port: 0 is not a port (1-65535)'],
    ['port 65536', ingressPort({ port: 65536 }), 'spec.ingress[0].ports[0].port: 65536 is not a port (1-65535)'],
    ['port fractional', ingressPort({ port: 80.5 }), 'spec.ingress[0].ports[0].port: 80.5 is not a port'],
    ['port a boolean', ingressPort({ port: true }), 'spec.ingress[0].ports[0].port: must be a number or a port name, not true'],
    ['port name of digits', ingressPort({ port: '80' }), 'spec.ingress[0].ports[0].port: "80" has no letter'],
    ['port name too long', ingressPort({ port: 'abcdefghijklmnop' }), 'spec.ingress[0].ports[0].port: "abcdefghijklmnop" is longer than 15 characters'],
    ['port name uppercase', ingressPort({ port: 'HTTP' }), 'spec.ingress[0].ports[0].port: "HTTP" is not a port name'],
    ['port name with --', ingressPort({ port: 'a--b' }), "spec.ingress[0].ports[0].port: \"a--b\" has '--' in it"],
    ['port name ends in -', ingressPort({ port: 'http-' }), 'spec.ingress[0].ports[0].port: "http-" is not a port name'],
    ['protocol ICMP', ingressPort({ protocol: 'ICMP' }), 'spec.ingress[0].ports[0].protocol: "ICMP" is not one of TCP, UDP, SCTP'],
    ['protocol lowercase', ingressPort({ protocol: 'tcp' }), 'spec.ingress[0].ports[0].protocol: "tcp" is not one of'],
    ['endPort without port', ingressPort({ endPort: 90 }), 'spec.ingress[0].ports[0].endPort: needs a port'],
    ['endPort with a named port', ingressPort({ port: 'http', endPort: 90 }), 'spec.ingress[0].ports[0].endPort: may not be given with a named port'],
    ['endPort below port', ingressPort({ port: 90, endPort: 80 }), 'spec.ingress[0].ports[0].endPort: 80 is less than the port 90'],
    ['endPort not a port', ingressPort({ port: 90, endPort: 70000 }), 'spec.ingress[0].ports[0].endPort: 70000 is not a port'],
    ['policyTypes unknown', np({ policyTypes: ['Ingress', 'Sideways'] }), 'spec.policyTypes[1]: "Sideways" is not Ingress or Egress'],
    ['policyTypes three', np({ policyTypes: ['Ingress', 'Egress', 'Ingress'] }), 'spec.policyTypes: has 3 entries, at most 2'],
    ['policyTypes a string', np({ policyTypes: 'Ingress' }), 'spec.policyTypes: must be a list, not "Ingress"'],
    ['too many rules', np({ ingress: Array.from({ length: 1001 }, () => ({})) }), 'spec.ingress: has 1001 entries, more than the 1000 allowed'],
    ['too many peers', np({ ingress: [{ from: Array.from({ length: 1001 }, () => ({ podSelector: {} })) }] }), 'spec.ingress[0].from: has 1001 entries, more than the 1000 allowed'],
    ['too many ports', np({ egress: [{ ports: Array.from({ length: 1001 }, () => ({ port: 80 })) }] }), 'spec.egress[0].ports: has 1001 entries, more than the 1000 allowed'],
  ])('%s', (_name, obj, want) => {
    const got = problems(parseNetworkPolicy(obj));
    expect(got.some((p) => p.startsWith(want)), `${JSON.stringify(got)} has no problem starting ${want}`).toBe(true);
  });

  it("names the object in each problem's where, after the caller's", () => {
    const r = parseNetworkPolicy(ingressPort({ port: 0 }), 'policies.yaml document 2');
    expect('problems' in r && r.problems[0]).toEqual({ where: 'policies.yaml document 2 (NetworkPolicy ns1/p)', problem: 'spec.ingress[0].ports[0].port: 0 is not a port (1-65535)' });
    const r2 = parseNetworkPolicy(np({ ingress: 1 }, { name: 'x', namespace: 'y' }));
    expect('problems' in r2 && r2.problems[0]!.where).toBe('NetworkPolicy y/x');
  });

  it('gathers every problem, at most 20 and a count of the rest', () => {
    const bad = np({ ingress: [{ ports: Array.from({ length: 30 }, () => ({ port: 0 })) }] });
    const got = problems(parseNetworkPolicy(bad));
    expect(got.length).toBe(21);
    expect(got[20]).toBe('and 10 more problems');
  });
});

function egressTo(peer: unknown): unknown {
  return np({ egress: [{ to: [peer] }] });
}

describe('hostile shapes', () => {
  it('prototype keys are data: a label key "constructor" is a label; "__proto__" is refused', () => {
    const json = JSON.parse('{"metadata":{"name":"p","namespace":"a"},"spec":{"podSelector":{"matchLabels":{"constructor":"x"}}}}') as unknown;
    const p = ok(parseNetworkPolicy(json));
    expect(Object.keys(p.podSelector.matchLabels)).toEqual(['constructor']);
    const pod = ok(parsePod({ metadata: { name: 'a', namespace: 'b', labels: {} } }));
    // No inherited properties: a selector on "constructor" or "toString" does not find one.
    expect(pod.labels['constructor']).toBeUndefined();
    expect(pod.labels['toString']).toBeUndefined();
    const proto = JSON.parse('{"metadata":{"name":"p","namespace":"a"},"spec":{"podSelector":{"matchLabels":{"__proto__":"x"}}}}') as unknown;
    expect(problems(parseNetworkPolicy(proto))[0]).toMatch(/^spec.podSelector.matchLabels: the key "__proto__" is not a label key/);
  });

  it('a spec inherited from a prototype is not read', () => {
    const o = Object.create({ spec: {} }) as Record<string, unknown>;
    o['metadata'] = { name: 'p' };
    expect(problems(parseNetworkPolicy(o))).toEqual(['spec: is required']);
  });

  it('huge strings are refused and not echoed whole', () => {
    const huge = 'x'.repeat(1_000_000);
    const got = problems(parseNetworkPolicy(np({ podSelector: { matchLabels: { a: huge } }, ingress: [{ ports: [{ port: huge }] }] }, { name: huge, namespace: 'n' })));
    expect(got.length).toBe(3);
    for (const p of got) expect(p.length).toBeLessThan(200);
  });

  it.each([
    ['spec.ingress[0].from: a string', np({ ingress: [{ from: 'everyone' }] }), 'spec.ingress[0].from: must be a list, not "everyone"'],
    ['spec.egress[0].ports[0]: an array', np({ egress: [{ ports: [[80]] }] }), 'spec.egress[0].ports[0]: must be an object, not a list'],
    ['ipBlock: a string', ingressPeer({ ipBlock: '10.0.0.0/8' }), 'spec.ingress[0].from[0].ipBlock: must be an object, not "10.0.0.0/8"'],
    ['metadata: a number', { metadata: 7, spec: {} }, 'metadata: must be an object, not 7'],
    ['matchExpressions entry null', np({ podSelector: { matchExpressions: [null] } }), 'spec.podSelector.matchExpressions[0]: must be an object, not null'],
  ])('%s', (_name, obj, want) => {
    expect(problems(parseNetworkPolicy(obj))).toContain(want);
  });
});

function pod(over: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): unknown {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'ns1', labels: { app: 'web' }, ...meta }, spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 9000 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] }] }, status: { phase: 'Running', podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }, { ip: 'FD00::0005' }] }, ...over };
}

describe('parsePod', () => {
  it('labels, addresses (IPv6 normalized), node, named ports', () => {
    const p = ok(parsePod(pod()));
    expect(p).toEqual({
      namespace: 'ns1',
      name: 'web-1',
      labels: { app: 'web' },
      ips: ['10.1.0.5', 'fd00::5'],
      namedPorts: [
        { name: 'http', protocol: 'TCP', port: 8080 },
        { name: 'dns', protocol: 'UDP', port: 53 },
      ],
      node: 'n1',
      hostNetwork: false,
    });
  });

  it.each<[string, unknown, (p: PolicyPod) => unknown, unknown]>([
    ['podIP alone', pod({ status: { podIP: '10.1.0.9' } }), (p) => p.ips, ['10.1.0.9']],
    ['no status: no addresses', pod({ status: undefined }), (p) => p.ips, []],
    ['Succeeded: no addresses', pod({ status: { phase: 'Succeeded', podIPs: [{ ip: '10.1.0.5' }] } }), (p) => p.ips, []],
    ['Failed: no addresses', pod({ status: { phase: 'Failed', podIP: '10.1.0.5' } }), (p) => p.ips, []],
    ['Pending with an address', pod({ status: { phase: 'Pending', podIP: '10.1.0.5' } }), (p) => p.ips, ['10.1.0.5']],
    ['hostNetwork', pod({ spec: { hostNetwork: true, containers: [] } }), (p) => [p.hostNetwork, p.node], [true, undefined]],
    ['no namespace: default', pod({}, { namespace: undefined }), (p) => p.namespace, 'default'],
    ['sidecar init container ports; plain init containers not', pod({ spec: { containers: [], initContainers: [{ restartPolicy: 'Always', ports: [{ name: 'metrics', containerPort: 9090 }] }, { ports: [{ name: 'once', containerPort: 1 }] }] } }), (p) => p.namedPorts, [{ name: 'metrics', protocol: 'TCP', port: 9090 }]],
    ['no labels', pod({}, { labels: undefined }), (p) => p.labels, {}],
  ])('%s', (_name, obj, pick, want) => {
    expect(pick(ok(parsePod(obj)))).toEqual(want);
  });

  it.each<[string, unknown, string]>([
    ['bad address', pod({ status: { podIPs: [{ ip: '10.1.0.300' }] } }), 'status.podIPs[0].ip: "10.1.0.300" is not an IP address'],
    ['address a number', pod({ status: { podIP: 5 } }), 'status.podIP: must be an IP address, not 5'],
    ['two of one family', pod({ status: { podIPs: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }] } }), 'status.podIPs: has two addresses of one family'],
    ['three addresses', pod({ status: { podIPs: [{ ip: '10.0.0.1' }, { ip: 'fd00::1' }, { ip: '10.0.0.2' }] } }), 'status.podIPs: has 3 entries, more than the 2 allowed'],
    ['bad port name', pod({ spec: { containers: [{ ports: [{ name: 'HTTP', containerPort: 80 }] }] } }), 'spec.containers[0].ports[0].name: "HTTP" is not a port name'],
    ['bad containerPort', pod({ spec: { containers: [{ ports: [{ name: 'http', containerPort: 0 }] }] } }), 'spec.containers[0].ports[0].containerPort: 0 is not a port (1-65535)'],
    ['bad container protocol', pod({ spec: { containers: [{ ports: [{ containerPort: 80, protocol: 'ICMP' }] }] } }), 'spec.containers[0].ports[0].protocol: "ICMP" is not one of TCP, UDP, SCTP'],
    ['containers an object', pod({ spec: { containers: {} } }), 'spec.containers: must be a list, not an object'],
    ['hostNetwork a string', pod({ spec: { hostNetwork: 'yes' } }), 'spec.hostNetwork: must be true or false, not "yes"'],
    ['bad label', pod({}, { labels: { app: 'we b' } }), 'metadata.labels["app"]: the value "we b" is not a label value'],
    ['labels a list', pod({}, { labels: ['a'] }), 'metadata.labels: must be a map of labels, not a list'],
    ['bad name', pod({}, { name: 'Web' }), 'metadata.name: "Web" is not a DNS subdomain'],
    ['nodeName a number', pod({ spec: { nodeName: 3 } }), 'spec.nodeName: must be a string, not 3'],
  ])('refused: %s', (_name, obj, want) => {
    const r = parsePod(obj);
    expect(problems(r).some((p) => p.startsWith(want)), JSON.stringify(r)).toBe(true);
    expect('problems' in r && r.problems[0]!.where).toMatch(/^Pod /);
  });
});

describe('parseNamespace', () => {
  it('labels plus kubernetes.io/metadata.name (the name wins over a wrong one)', () => {
    expect(ok(parseNamespace({ metadata: { name: 'team-a', labels: { team: 'a' } } }))).toEqual({ name: 'team-a', labels: { team: 'a', 'kubernetes.io/metadata.name': 'team-a' } });
    expect(ok(parseNamespace({ metadata: { name: 'b', labels: { 'kubernetes.io/metadata.name': 'other' } } })).labels).toEqual({ 'kubernetes.io/metadata.name': 'b' });
  });

  it.each<[string, unknown, string]>([
    ['name with a dot', { metadata: { name: 'a.b' } }, 'metadata.name: "a.b" is not a DNS label'],
    ['name too long', { metadata: { name: 'a'.repeat(64) } }, 'metadata.name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa… is longer than 63 characters'],
    ['no metadata', {}, 'metadata.name: is required'],
    ['bad label key', { metadata: { name: 'a', labels: { 'a b': 'x' } } }, 'metadata.labels: the key "a b" is not a label key'],
    ['a string', 'ns', 'a Namespace must be an object, not "ns"'],
  ])('refused: %s', (_name, obj, want) => {
    const r = parseNamespace(obj);
    expect(problems(r).some((p) => p.startsWith(want)), JSON.stringify(r)).toBe(true);
  });
});
