/**
 * A pod's identity as the CNI plugin passes it to the router with an attach (K8S_POD_NAMESPACE and
 * K8S_POD_NAME of CNI_ARGS): checked the same way on both sides, so a hostile value is refused
 * where it enters and again where it is used.
 */
import { isDnsLabel, isDnsSubdomain } from '../core/dns-names.js';
import type { CniPodIdentity } from './types.js';

/** Why `v` is not a namespace name (a DNS-1123 label: at most 63 of a-z 0-9 -), or undefined. */
export function namespaceProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return 'must be a string';
  if (!isDnsLabel(v)) return `${JSON.stringify(v.slice(0, 80))} is not a namespace name (a DNS-1123 label: at most 63 of a-z, 0-9 and "-", starting and ending with a letter or digit)`;
  return undefined;
}

/** Why `v` is not a pod name (a DNS-1123 subdomain: at most 253 of a-z 0-9 - .), or undefined. */
export function podNameProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return 'must be a string';
  if (!isDnsSubdomain(v)) return `${JSON.stringify(v.slice(0, 80))} is not a pod name (a DNS-1123 subdomain: at most 253 of a-z, 0-9, "-" and ".")`;
  return undefined;
}

/** The identity in an attach request's `pod` field, or the problem naming the field (`pod.namespace: ...`). */
export function readPodIdentity(v: unknown): { pod: CniPodIdentity | undefined } | { problem: string } {
  if (v === undefined || v === null) return { pod: undefined };
  if (typeof v !== 'object' || Array.isArray(v)) return { problem: 'pod: must be an object {"namespace", "name"}' };
  const o = v as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== 'namespace' && k !== 'name');
  if (extra.length > 0) return { problem: `pod: unknown field ${JSON.stringify(extra[0]!.slice(0, 40))}` };
  const ns = namespaceProblem(o['namespace']);
  if (ns !== undefined) return { problem: `pod.namespace: ${ns}` };
  const name = podNameProblem(o['name']);
  if (name !== undefined) return { problem: `pod.name: ${name}` };
  return { pod: { namespace: o['namespace'] as string, name: o['name'] as string } };
}
