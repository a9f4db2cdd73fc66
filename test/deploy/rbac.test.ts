/**
 * The RBAC of deploy/: exactly the verbs the router's API calls need, bound to the service
 * account the DaemonSet runs as, with the Leases' Role in the namespace the router uses.
 * Nodes: list and watch (discovery, src/k8s/node-discovery.ts), patch (its own Node's
 * annotations). Leases of IPAM blocks (src/k8s/blocks.ts): list (relisted), create (claim a
 * block), update (take over a deleted Node's block). NetworkPolicies, Pods and Namespaces
 * (src/k8s/policy-source.ts): list and watch, cluster-wide (test/k8s/policy-source.test.ts checks
 * these are exactly the calls it makes). Nothing is read with get, and Leases are never watched or deleted.
 */
import { describe, expect, it } from 'vitest';
import { SERVICE_ACCOUNT_DIR, validateConfig } from '../../src/daemon/config.js';
import type { RawConfig } from '../../src/daemon/options.js';
import { deployObject, deployPodSpec, loadDeployManifests, type V1ClusterRole, type V1DaemonSet, type V1Role, type V1RoleBinding, type V1ServiceAccount } from '../../lab/deploy-manifests.js';

const manifests = loadDeployManifests();
const spec = deployPodSpec(manifests);

describe('RBAC', () => {
  it('the ClusterRole: nodes list, watch, patch; pods, namespaces, networkpolicies list and watch; nothing else', () => {
    expect(deployObject<V1ClusterRole>('ClusterRole', 'weft', manifests).rules).toEqual([
      { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch', 'patch'] },
      { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['list', 'watch'] },
    ]);
  });

  it("the Role: leases list, create, update in the router's namespace, and nothing else", () => {
    const role = deployObject<V1Role>('Role', 'weft', manifests);
    expect(role.rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'create', 'update'] }]);
    // The namespace the router takes in a pod (its service account's), which is the DaemonSet's.
    const ns = deployObject<V1DaemonSet>('DaemonSet', 'weft', manifests).metadata?.namespace;
    const c = validateConfig(
      { name: 'n1', kubernetes: true, secretFile: '/s', unknown: [] } as unknown as RawConfig,
      { env: { NODE_NAME: 'n1' }, readFile: (p) => (p === `${SERVICE_ACCOUNT_DIR}/namespace` ? ns : p === `${SERVICE_ACCOUNT_DIR}/token` ? 't' : undefined), hostname: () => 'h' },
    );
    expect(role.metadata?.namespace).toBe(c.kubernetes!.namespace);
  });

  it('no other role, no wildcard, no secrets', () => {
    const roles = manifests.filter((m) => m.object.kind === 'Role' || m.object.kind === 'ClusterRole');
    expect(roles.length).toBe(2);
    for (const r of roles) {
      for (const rule of (r.object as V1Role).rules ?? []) {
        for (const list of [rule.apiGroups, rule.resources, rule.verbs]) expect(list).not.toContain('*');
        expect(rule.resources).not.toContain('secrets');
      }
    }
  });

  it.each([
    ['ClusterRoleBinding', 'ClusterRole'],
    ['RoleBinding', 'Role'],
  ])('the %s binds the %s to the service account the pods run as', (bindingKind, roleKind) => {
    const b = deployObject<V1RoleBinding>(bindingKind, 'weft', manifests);
    const sa = deployObject<V1ServiceAccount>('ServiceAccount', spec.serviceAccountName ?? '', manifests);
    expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: 'weft' });
    expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata?.name, namespace: sa.metadata?.namespace }]);
  });
});
