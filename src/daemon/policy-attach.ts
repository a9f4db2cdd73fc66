/**
 * CNI attach and NetworkPolicy: after the pod guard has the port, a pod with an identity (from
 * CNI_ARGS) becomes a local pod of the policy engine with the guard's addresses. Never fails the
 * ADD: the engine's wait is bounded, and anything unexpected is logged.
 */
import type { CniPodIdentity } from '../api/types.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { GuardedPod } from './pod-guard-rules.js';
import type { PolicyEngine } from './policy.js';

/** The pod's global addresses as the guard holds them (its link-local left out). */
export function guardedAddresses(pod: GuardedPod): string[] {
  return [...pod.ipv4, ...pod.ipv6.filter((a) => !a.toLowerCase().startsWith('fe80:'))];
}

export async function attachPolicy(
  policy: Pick<PolicyEngine, 'podAttached'> | undefined,
  log: Logger,
  a: { containerId: string; ifName: string; pod: CniPodIdentity | undefined; guarded: GuardedPod },
): Promise<void> {
  if (policy === undefined || a.pod === undefined) return;
  try {
    await policy.podAttached(a.containerId, a.ifName, a.pod.namespace, a.pod.name, guardedAddresses(a.guarded));
  } catch (err) {
    log.warn('NetworkPolicy could not take the new pod', { containerId: a.containerId, ifName: a.ifName, pod: `${a.pod.namespace}/${a.pod.name}`, err: describeError(err) });
  }
}
