/**
 * deploy/'s manifests against the Kubernetes API types (offline: kubectl's --validate and
 * --dry-run=client both need a server), and proof that the check catches what kubectl would
 * refuse: a misspelt field, a wrong type, a missing required field, a kind in the wrong group.
 */
import { describe, expect, it } from 'vitest';
import { loadDeployManifests } from '../../lab/deploy-manifests.js';
import { manifestProblems } from '../../lab/k8s-schema.js';

const manifests = loadDeployManifests();

function daemonSet(): Record<string, unknown> {
  return structuredClone(manifests.find((m) => m.object.kind === 'DaemonSet')!.object);
}

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

  it.each(manifests.map((m) => [where(m), m] as const))('%s passes the schema check', (name, m) => {
    expect(manifestProblems(m.object, name)).toEqual([]);
  });
});

describe('the schema check', () => {
  const cases: { name: string; change: (ds: Record<string, any>) => void; problem: string }[] = [
    {
      name: 'a misspelt field in a container',
      change: (ds) => (ds.spec.template.spec.containers[0].imagePullPolicyy = 'IfNotPresent'),
      problem: 'ds.spec.template.spec.containers[0].imagePullPolicyy: unknown field',
    },
    {
      name: 'a misspelt field at the top of the pod spec',
      change: (ds) => {
        ds.spec.template.spec.hostNetwrok = true;
      },
      problem: 'ds.spec.template.spec.hostNetwrok: unknown field',
    },
    { name: 'a string for a boolean', change: (ds) => (ds.spec.template.spec.hostNetwork = 'true'), problem: 'ds.spec.template.spec.hostNetwork: expected a boolean, got string "true"' },
    {
      name: 'a fraction for an integer',
      change: (ds) => (ds.spec.template.spec.terminationGracePeriodSeconds = 1.5),
      problem: 'ds.spec.template.spec.terminationGracePeriodSeconds: expected an integer, got 1.5',
    },
    { name: 'an object for a list', change: (ds) => (ds.spec.template.spec.tolerations = { operator: 'Exists' }), problem: 'ds.spec.template.spec.tolerations: expected an array, got an object' },
    { name: 'a number for a string in args', change: (ds) => (ds.spec.template.spec.containers[0].args[1] = 6784), problem: 'ds.spec.template.spec.containers[0].args[1]: expected a string, got number 6784' },
    { name: 'a container without its name', change: (ds) => delete ds.spec.template.spec.containers[0].name, problem: 'ds.spec.template.spec.containers[0].name: required field missing (V1Container)' },
    { name: 'a DaemonSet without a selector', change: (ds) => delete ds.spec.selector, problem: 'ds.spec.selector: required field missing (V1DaemonSetSpec)' },
    { name: 'a hostPath without its path', change: (ds) => delete ds.spec.template.spec.volumes[0].hostPath.path, problem: 'ds.spec.template.spec.volumes[0].hostPath.path: required field missing (V1HostPathVolumeSource)' },
    { name: 'a map of strings holding a number', change: (ds) => (ds.metadata.labels.version = 1), problem: 'ds.metadata.labels.version: expected a string, got number 1' },
    { name: 'the wrong API group', change: (ds) => (ds.apiVersion = 'v1'), problem: 'ds: DaemonSet is in the API group "apps", not "" (apiVersion v1)' },
    { name: 'a version without the type', change: (ds) => (ds.apiVersion = 'apps/v1beta9'), problem: 'ds: no API type for DaemonSet in apps/v1beta9' },
    { name: 'an unknown kind', change: (ds) => (ds.kind = 'DaemonSett'), problem: 'ds: kind DaemonSett is not one this check knows' },
  ];

  it.each(cases)('finds $name', ({ change, problem }) => {
    const ds = daemonSet();
    expect(manifestProblems(ds, 'ds')).toEqual([]);
    change(ds);
    const problems = manifestProblems(ds, 'ds');
    expect(problems.length).toBe(1);
    expect(problems[0]!.startsWith(problem), problems[0]).toBe(true);
  });

  it('checks the RBAC objects too: a misspelt verb list and a subject without its kind', () => {
    const role = structuredClone(manifests.find((m) => m.object.kind === 'Role')!.object) as Record<string, any>;
    role.rules[0].verb = role.rules[0].verbs;
    delete role.rules[0].verbs;
    expect(manifestProblems(role, 'role')).toEqual([expect.stringMatching(/^role\.rules\[0\]\.verb: unknown field/), 'role.rules[0].verbs: required field missing (V1PolicyRule)']);
    const binding = structuredClone(manifests.find((m) => m.object.kind === 'RoleBinding')!.object) as Record<string, any>;
    delete binding.subjects[0].kind;
    expect(manifestProblems(binding, 'rb')).toEqual(['rb.subjects[0].kind: required field missing (RbacV1Subject)']);
  });
});
