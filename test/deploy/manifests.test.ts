/**
 * deploy/'s manifests against the Kubernetes API types (offline: kubectl's --validate and
 * --dry-run=client both need a server), and proof that the check catches what kubectl would
 * refuse: a misspelt field, a wrong type, a missing required field, a kind in the wrong group.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDeployManifests } from '../../lab/deploy-manifests.js';
import { manifestProblems } from '../../lab/k8s-schema.js';

const manifests = loadDeployManifests();

function where(m: { file: string; object: Record<string, unknown> }): string {
  return `${m.file} ${String(m.object.kind)} ${String((m.object.metadata as { name?: string }).name)}`;
}

describe('deploy/ manifests', () => {
  it('hold exactly the objects an install needs, namespaced ones in kube-system', () => {
    expect(manifests.map((m) => `${m.file} ${String(m.object.kind)}/${String((m.object.metadata as { name: string }).name)}`)).toEqual([
      'deploy/01-rbac.yaml ServiceAccount/weft',
      'deploy/01-rbac.yaml ClusterRole/weft',
      'deploy/01-rbac.yaml ClusterRoleBinding/weft',
      'deploy/01-rbac.yaml Role/weft',
      'deploy/01-rbac.yaml RoleBinding/weft',
      'deploy/02-secret.yaml Secret/weft-secret',
      'deploy/03-config.yaml ConfigMap/weft-config',
      'deploy/04-daemonset.yaml DaemonSet/weft',
    ]);
    for (const m of manifests) {
      const ns = (m.object.metadata as { namespace?: string }).namespace;
      expect(ns, where(m)).toBe(m.object.kind === 'ClusterRole' || m.object.kind === 'ClusterRoleBinding' ? undefined : 'kube-system');
    }
  });

  it('hold no plain scalar that YAML 1.1 (the API server, kubectl) and 1.2 (this check) read differently', () => {
    // yes/no/on/off are booleans in 1.1 only; 0400 is octal in 1.1 and decimal in 1.2; 0o400 is octal in 1.2 only.
    const ambiguous = /(?::|^\s*-)\s+(?:y|n|yes|no|on|off|0\d+|0o[0-7]+)\s*(?:#.*)?$/i;
    for (const file of [...new Set(manifests.map((m) => m.file))]) {
      const lines = readFileSync(file, 'utf8').split('\n');
      expect(lines.filter((l) => !l.trimStart().startsWith('#') && ambiguous.test(l)), file).toEqual([]);
    }
    expect(ambiguous.test('            defaultMode: 0400')).toBe(true);
    expect(ambiguous.test('  enabled: on # comment')).toBe(true);
  });

  it.each(manifests.map((m) => [where(m), m] as const))('%s passes the schema check', (name, m) => {
    expect(manifestProblems(m.object, name)).toEqual([]);
  });
});

/** A copy of `object` with the value at a dotted path (`spec.containers.0.name`) set, or deleted when `to` is absent. */
function edited(object: Record<string, unknown>, path: string, change: { to: unknown } | 'delete'): Record<string, unknown> {
  const copy = structuredClone(object);
  const keys = path.split('.');
  let at = copy;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  if (change === 'delete') delete at[keys.at(-1)!];
  else at[keys.at(-1)!] = change.to;
  return copy;
}

function objectOf(kind: string): Record<string, unknown> {
  return manifests.find((m) => m.object.kind === kind)!.object;
}

describe('the schema check', () => {
  const P = 'spec.template.spec';
  const cases: { name: string; kind?: string; path: string; change: { to: unknown } | 'delete'; problem: string }[] = [
    { name: 'a misspelt field in a container', path: `${P}.containers.0.imagePullPolicyy`, change: { to: 'IfNotPresent' }, problem: `ds.${P}.containers[0].imagePullPolicyy: unknown field` },
    { name: 'a misspelt field in the pod spec', path: `${P}.hostNetwrok`, change: { to: true }, problem: `ds.${P}.hostNetwrok: unknown field` },
    { name: 'a string for a boolean', path: `${P}.hostNetwork`, change: { to: 'true' }, problem: `ds.${P}.hostNetwork: expected a boolean, got string "true"` },
    { name: 'a fraction for an integer', path: `${P}.terminationGracePeriodSeconds`, change: { to: 1.5 }, problem: `ds.${P}.terminationGracePeriodSeconds: expected an integer, got 1.5` },
    { name: 'an object for a list', path: `${P}.tolerations`, change: { to: { operator: 'Exists' } }, problem: `ds.${P}.tolerations: expected an array, got an object` },
    { name: 'a number among the args', path: `${P}.containers.0.args.1`, change: { to: 6784 }, problem: `ds.${P}.containers[0].args[1]: expected a string, got number 6784` },
    { name: 'a container without its name', path: `${P}.containers.0.name`, change: 'delete', problem: `ds.${P}.containers[0].name: required field missing (V1Container)` },
    { name: 'a DaemonSet without a selector', path: 'spec.selector', change: 'delete', problem: 'ds.spec.selector: required field missing (V1DaemonSetSpec)' },
    { name: 'a hostPath without its path', path: `${P}.volumes.0.hostPath.path`, change: 'delete', problem: `ds.${P}.volumes[0].hostPath.path: required field missing (V1HostPathVolumeSource)` },
    { name: 'a number in a map of strings', path: 'metadata.labels.version', change: { to: 1 }, problem: 'ds.metadata.labels.version: expected a string, got number 1' },
    { name: 'the wrong API group', path: 'apiVersion', change: { to: 'v1' }, problem: 'ds: DaemonSet is in the API group "apps", not "" (apiVersion v1)' },
    { name: 'a version without the type', path: 'apiVersion', change: { to: 'apps/v1beta9' }, problem: 'ds: no API type for DaemonSet in apps/v1beta9' },
    { name: 'an unknown kind', path: 'kind', change: { to: 'DaemonSett' }, problem: 'ds: kind DaemonSett is not one this check knows' },
    { name: 'a misspelt verb list in a Role', kind: 'Role', path: 'rules.0.verb', change: { to: ['get'] }, problem: 'ds.rules[0].verb: unknown field' },
    { name: 'a rule without its verbs', kind: 'Role', path: 'rules.0.verbs', change: 'delete', problem: 'ds.rules[0].verbs: required field missing (V1PolicyRule)' },
    { name: 'a subject without its kind', kind: 'RoleBinding', path: 'subjects.0.kind', change: 'delete', problem: 'ds.subjects[0].kind: required field missing (RbacV1Subject)' },
    { name: 'a number as Secret data', kind: 'Secret', path: 'stringData.secret', change: { to: 12345 }, problem: 'ds.stringData.secret: expected a string, got number 12345' },
  ];

  it.each(cases)('finds $name', ({ kind, path, change, problem }) => {
    const object = objectOf(kind ?? 'DaemonSet');
    expect(manifestProblems(object, 'ds')).toEqual([]);
    const problems = manifestProblems(edited(object, path, change), 'ds');
    expect(problems.length, problems.join('\n')).toBe(1);
    expect(problems[0]!.startsWith(problem), problems[0]).toBe(true);
  });
});
