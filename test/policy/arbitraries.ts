/**
 * Random policies and worlds (pods, namespaces) for property tests of the compiler, small enough
 * that selectors often match: a few namespaces, labels, names, ports and CIDRs.
 */
import fc from 'fast-check';
import type { IpBlock, LabelSelector, NetworkPolicy, PolicyPeer, PolicyPod } from '../../src/policy/model.js';
import { model } from './fixtures.js';

const arbLabels = fc.dictionary(fc.constantFrom('app', 'tier', 'team', 'env'), fc.constantFrom('web', 'db', 'x', 'y', ''), { maxKeys: 3 });
const arbPod = fc.record({
  namespace: fc.constantFrom('a', 'b', 'c'),
  name: fc.constantFrom('p1', 'p2', 'p3', 'p4', 'p5', 'p6'),
  labels: arbLabels,
  ips: fc.array(fc.oneof(fc.ipV4(), fc.ipV6()), { maxLength: 3 }),
  namedPorts: fc.array(fc.record({ name: fc.constantFrom('http', 'dns'), protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 2 }),
  node: fc.constantFrom('n1', 'n2', undefined),
  hostNetwork: fc.boolean(),
});
export const arbWorld = fc.record({
  pods: fc.array(arbPod, { maxLength: 12 }),
  namespaces: fc.array(fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd'), labels: arbLabels }), { maxLength: 4 }),
});
const selector: fc.Arbitrary<LabelSelector> = fc.record({ matchLabels: fc.dictionary(fc.constantFrom('app', 'team'), fc.constantFrom('web', 'x'), { maxKeys: 1 }), matchExpressions: fc.array(fc.record({ key: fc.constantFrom('app', 'env'), operator: fc.constantFrom('In' as const, 'NotIn' as const, 'Exists' as const, 'DoesNotExist' as const), values: fc.constantFrom('web', 'x,y').map((v) => v.split(',')) }), { maxLength: 1 }) });
const arbPeer: fc.Arbitrary<PolicyPeer> = fc.oneof(
  fc.record({ podSelector: fc.option(selector, { nil: undefined }), namespaceSelector: selector, ipBlock: fc.constant(undefined) }),
  fc.record({ podSelector: selector, namespaceSelector: fc.constant(undefined), ipBlock: fc.constant(undefined) }),
  fc.record({ podSelector: fc.constant(undefined), namespaceSelector: fc.constant(undefined), ipBlock: fc.constantFrom('10.0.0.0/8 10.1.0.0/16', 'fd00::/8').map((t): IpBlock => { const [cidr, ...except] = t.split(' '); return { cidr: cidr!, except }; }) }),
);
const arbPort = fc.oneof(
  fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const, 'SCTP' as const), port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), endPort: fc.constant(undefined) }),
  fc.record({ protocol: fc.constantFrom('TCP' as const, 'UDP' as const), port: fc.constantFrom('http', 'dns'), endPort: fc.constant(undefined) }),
  fc
    .tuple(fc.constantFrom('TCP' as const, 'SCTP' as const), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 2000 }))
    .map(([protocol, port, span]) => ({ protocol, port, endPort: Math.min(65535, port + span) })),
);
const arbRule = fc.record({ peers: fc.array(arbPeer, { maxLength: 2 }), ports: fc.array(arbPort, { maxLength: 2 }) });
export const arbPolicies = fc.uniqueArray(
  fc.record({
    namespace: fc.constantFrom('a', 'b'),
    name: fc.constantFrom('p', 'q', 'r'),
    podSelector: selector,
    ingress: fc.boolean(),
    egress: fc.boolean(),
    ingressRules: fc.array(arbRule, { maxLength: 2 }),
    egressRules: fc.array(arbRule, { maxLength: 2 }),
  }),
  { maxLength: 3, selector: (p) => `${p.namespace}/${p.name}` },
);
export const toModel = (policies: NetworkPolicy[], w: { pods: PolicyPod[]; namespaces: { name: string; labels: Record<string, string> }[] }) => {
  const pods = [...new Map(w.pods.map((p) => [`${p.namespace}/${p.name}`, p])).values()];
  const nss = [...new Map(w.namespaces.map((n) => [n.name, n])).values()];
  return model(policies, pods, nss);
};
