/**
 * Kubernetes label selectors and which pods a policy's selectors pick, as the NetworkPolicy API
 * defines them:
 * - a selector matches when every matchLabels pair and every matchExpressions requirement holds
 *   (In: the label is there with one of the values; NotIn: absent, or not one of them; Exists;
 *   DoesNotExist); both parts empty select everything;
 * - a policy selects the pods of its own namespace that its podSelector matches;
 * - a peer with podSelector only: pods of the policy's namespace; namespaceSelector only: every
 *   pod of the namespaces it matches; both: the pods podSelector matches in those namespaces;
 * - a pod without addresses or on the host's network is never selected (by a policy or a peer);
 * - a namespace that is not known has the one label `kubernetes.io/metadata.name`.
 */
import type { LabelSelector, NetworkPolicy, PolicyNamespace, PolicyPeer, PolicyPod } from './model.js';

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  const want = selector.matchLabels;
  for (const k in want) {
    if (Object.hasOwn(want, k) && (!Object.hasOwn(labels, k) || labels[k] !== want[k])) return false;
  }
  for (const r of selector.matchExpressions) {
    const has = Object.hasOwn(labels, r.key);
    switch (r.operator) {
      case 'In':
        if (!has || !r.values.includes(labels[r.key]!)) return false;
        break;
      case 'NotIn':
        if (has && r.values.includes(labels[r.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        // an operator the model does not know selects nothing (objects.ts rejects them first)
        return false;
    }
  }
  return true;
}

/** Namespaces by name, each with its `kubernetes.io/metadata.name` label; unknown names get that label alone. */
export class NamespaceLabels {
  private readonly byName = new Map<string, Record<string, string>>();

  constructor(namespaces: readonly PolicyNamespace[]) {
    for (const ns of namespaces) this.byName.set(ns.name, { ...ns.labels, [NAMESPACE_NAME_LABEL]: ns.name });
  }

  of(name: string): Record<string, string> {
    return this.byName.get(name) ?? { [NAMESPACE_NAME_LABEL]: name };
  }
}

/** Whether a pod can be selected at all: it has addresses and is not on the host's network. */
export function selectable(pod: PolicyPod): boolean {
  return !pod.hostNetwork && pod.ips.length > 0;
}

/** Whether `policy` applies to `pod` (its namespace, its podSelector; the pod selectable). */
export function policySelects(policy: NetworkPolicy, pod: PolicyPod): boolean {
  return selectable(pod) && pod.namespace === policy.namespace && selectorMatches(policy.podSelector, pod.labels);
}

/** Whether `peer` (a pod peer of a rule of a policy in `policyNamespace`) picks `pod`; an ipBlock-only peer picks no pod. */
export function peerSelects(peer: PolicyPeer, policyNamespace: string, pod: PolicyPod, namespaces: NamespaceLabels): boolean {
  if (!selectable(pod)) return false;
  if (peer.namespaceSelector === undefined) {
    if (peer.podSelector === undefined) return false;
    return pod.namespace === policyNamespace && selectorMatches(peer.podSelector, pod.labels);
  }
  if (!selectorMatches(peer.namespaceSelector, namespaces.of(pod.namespace))) return false;
  return peer.podSelector === undefined || selectorMatches(peer.podSelector, pod.labels);
}

/** A peer that names pods (rather than an ipBlock). */
export function isPodPeer(peer: PolicyPeer): boolean {
  return peer.podSelector !== undefined || peer.namespaceSelector !== undefined;
}
