/**
 * Builders of policy model objects for the compiler's tests: every field filled, overridable.
 */
import type { IpBlock, LabelSelector, NetworkPolicy, PolicyModel, PolicyNamespace, PolicyPeer, PolicyPod, PolicyPort, PolicyRule, SelectorRequirement } from '../../src/policy/model.js';
import { podKey } from '../../src/policy/model.js';

export const all = (): LabelSelector => ({ matchLabels: {}, matchExpressions: [] });

export function labels(matchLabels: Record<string, string>, ...matchExpressions: SelectorRequirement[]): LabelSelector {
  return { matchLabels, matchExpressions };
}

export function expr(key: string, operator: SelectorRequirement['operator'], ...values: string[]): SelectorRequirement {
  return { key, operator, values };
}

export function pod(namespace: string, name: string, init: Partial<PolicyPod> = {}): PolicyPod {
  return { namespace, name, labels: {}, ips: [], namedPorts: [], node: 'n1', hostNetwork: false, ...init };
}

export function ns(name: string, l: Record<string, string> = {}): PolicyNamespace {
  return { name, labels: { ...l, 'kubernetes.io/metadata.name': name } };
}

export function policy(namespace: string, name: string, init: Partial<NetworkPolicy> = {}): NetworkPolicy {
  return { namespace, name, podSelector: all(), ingress: false, egress: false, ingressRules: [], egressRules: [], ...init };
}

export function rule(peers: PolicyPeer[] = [], ports: PolicyPort[] = []): PolicyRule {
  return { peers, ports };
}

export function podsPeer(podSelector: LabelSelector | undefined, namespaceSelector?: LabelSelector): PolicyPeer {
  return { podSelector, namespaceSelector, ipBlock: undefined };
}

export function blockPeer(cidr: string, ...except: string[]): PolicyPeer {
  const ipBlock: IpBlock = { cidr, except };
  return { podSelector: undefined, namespaceSelector: undefined, ipBlock };
}

export function port(port: number | string | undefined, protocol: PolicyPort['protocol'] = 'TCP', endPort?: number): PolicyPort {
  return { protocol, port, endPort };
}

/** A model whose local pods are those on node `n1`. */
export function model(policies: NetworkPolicy[], pods: PolicyPod[], namespaces: PolicyNamespace[] = []): PolicyModel {
  return { policies, pods, namespaces, local: new Set(pods.filter((p) => p.node === 'n1').map(podKey)) };
}
