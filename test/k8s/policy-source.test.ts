/**
 * KubePolicySource against the fake API server through the real client-node: the snapshot once
 * all three kinds are listed, adds, changes and deletions of each kind, a bad object skipped and
 * listed (and used once fixed), the API server stopped and back, and exactly the calls RBAC grants.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { KubePolicySource } from '../../src/k8s/policy-source.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { kubeFixture, until, type KubeFixture } from './helpers.js';

let f: KubeFixture;
let source: KubePolicySource;
let changes: number;
let lines: Record<string, unknown>[];

function makeSource(): KubePolicySource {
  const rec = recordingLogger();
  lines = rec.lines;
  const s = new KubePolicySource({ kube: f.kube, clock: systemClock, logger: rec.logger }, { backoffMinMs: 20, backoffMaxMs: 100 });
  changes = 0;
  s.onChange(() => changes++);
  return s;
}

const policy = (name: string, namespace: string, spec: Record<string, unknown> = { podSelector: {} }) => ({ metadata: { name, namespace }, spec });
const pod = (name: string, namespace: string, labels: Record<string, string>, ip?: string) => ({
  metadata: { name, namespace, labels },
  spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'i', ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: ip === undefined ? {} : { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});

const names = (xs: { namespace?: string; name: string }[] | undefined): string[] => (xs ?? []).map((x) => (x.namespace === undefined ? x.name : `${x.namespace}/${x.name}`)).sort();

beforeEach(async () => {
  f = await kubeFixture({ bookmarkMs: 30 });
});

afterEach(async () => {
  await source?.stop();
  await f.close();
});

describe('KubePolicySource', () => {
  it('gives a snapshot once NetworkPolicies, Pods and Namespaces are listed: the objects as the model', async () => {
    f.api.createObject('namespaces', { metadata: { name: 'a', labels: { team: 'a' } } });
    f.api.createObject('pods', pod('web', 'a', { app: 'web' }, '10.1.0.5'));
    f.api.createObject('networkpolicies', policy('deny', 'a', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports: [{ port: 'http' }] }] }));
    source = makeSource();
    expect(source.snapshot()).toBeUndefined();
    await source.start();
    await until(() => source.snapshot() !== undefined);
    const s = source.snapshot()!;
    expect(s.namespaces).toEqual([{ name: 'a', labels: { team: 'a', 'kubernetes.io/metadata.name': 'a' } }]);
    expect(s.pods).toEqual([{ namespace: 'a', name: 'web', labels: { app: 'web' }, ips: ['10.1.0.5'], namedPorts: [{ name: 'http', protocol: 'TCP', port: 8080 }], node: 'n1', hostNetwork: false }]);
    expect(s.policies).toEqual([
      {
        namespace: 'a',
        name: 'deny',
        podSelector: { matchLabels: { app: 'web' }, matchExpressions: [] },
        ingress: true,
        egress: false,
        ingressRules: [{ peers: [], ports: [{ protocol: 'TCP', port: 'http', endPort: undefined }] }],
        egressRules: [],
      },
    ]);
    expect(source.describe()).toEqual({ kind: 'kubernetes', where: f.api.url, synced: true, problems: [], error: undefined });
    expect(changes).toBeGreaterThan(0);
  });

  it('follows adds, changes and deletions of each kind', async () => {
    source = makeSource();
    await source.start();
    await until(() => source.snapshot() !== undefined);
    expect(source.snapshot()).toEqual({ policies: [], pods: [], namespaces: [] });
    f.api.createObject('namespaces', { metadata: { name: 'a' } });
    f.api.createObject('pods', pod('p1', 'a', { app: 'x' }));
    f.api.createObject('networkpolicies', policy('np1', 'a'));
    await until(() => names(source.snapshot()?.policies).length === 1 && names(source.snapshot()?.pods).length === 1 && names(source.snapshot()?.namespaces).length === 1);
    // Changes: a namespace's labels, a pod's labels and address, a policy's types.
    f.api.patchObject('namespaces', 'a', { metadata: { labels: { env: 'prod' } } });
    f.api.updateObject('pods', { ...pod('p1', 'a', { app: 'y' }, '10.1.0.9') });
    f.api.patchObject('networkpolicies', 'np1', { spec: { policyTypes: ['Egress'] } }, 'a');
    await until(() => source.snapshot()?.policies[0]?.egress === true && source.snapshot()?.pods[0]?.ips[0] === '10.1.0.9' && source.snapshot()?.namespaces[0]?.labels['env'] === 'prod');
    expect(source.snapshot()?.pods[0]?.labels).toEqual({ app: 'y' });
    expect(source.snapshot()?.policies[0]).toMatchObject({ ingress: false, egress: true });
    // A pod that finished has no addresses (they may be reused).
    f.api.updateObject('pods', { ...pod('p1', 'a', { app: 'y' }, '10.1.0.9'), status: { phase: 'Succeeded', podIP: '10.1.0.9' } });
    await until(() => source.snapshot()?.pods[0]?.ips.length === 0);
    f.api.deleteObject('networkpolicies', 'np1', 'a');
    f.api.deleteObject('pods', 'p1', 'a');
    f.api.deleteObject('namespaces', 'a');
    await until(() => {
      const s = source.snapshot();
      return s !== undefined && s.policies.length + s.pods.length + s.namespaces.length === 0;
    });
  });

  it('a change of a Pod that policy does not read (its conditions) is no change for the engine; one it reads is', async () => {
    f.api.createObject('pods', pod('p1', 'a', { app: 'x' }, '10.1.0.5'));
    source = makeSource();
    await source.start();
    await until(() => source.snapshot() !== undefined);
    const before = changes;
    f.api.updateObject('pods', { ...pod('p1', 'a', { app: 'x' }, '10.1.0.5'), status: { phase: 'Running', podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }], conditions: [{ type: 'Ready', status: 'True' }] } });
    await until(() => source.status().unchanged === 1);
    expect(changes).toBe(before);
    f.api.updateObject('pods', pod('p1', 'a', { app: 'y' }, '10.1.0.5'));
    await until(() => changes > before);
    expect(source.snapshot()?.pods[0]?.labels).toEqual({ app: 'y' });
    expect(source.status().unchanged).toBe(1);
  });

  it('a bad object is skipped, listed and logged once; the others are used; fixed, it is used', async () => {
    f.api.createObject('networkpolicies', policy('good', 'a'));
    f.api.createObject('networkpolicies', policy('bad', 'a', { podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] }));
    f.api.createObject('pods', { ...pod('p', 'a', {}), status: { podIP: 'not-an-ip' } });
    source = makeSource();
    await source.start();
    await until(() => source.snapshot() !== undefined);
    expect(names(source.snapshot()?.policies)).toEqual(['a/good']);
    expect(source.snapshot()?.pods).toEqual([]);
    expect(source.describe().problems).toEqual([
      { where: 'NetworkPolicy a/bad', problem: 'spec.ingress[0].ports[0].port: 70000 is not a port (1-65535)' },
      { where: 'Pod a/p', problem: 'status.podIP: "not-an-ip" is not an IP address' },
    ]);
    expect(source.status()).toMatchObject({ skipped: 2, skippedTotal: 2 });
    // Changed in a way that keeps the same problem: not logged again.
    f.api.patchObject('networkpolicies', 'bad', { metadata: { labels: { x: 'y' } } }, 'a');
    f.api.patchObject('networkpolicies', 'bad', { spec: { ingress: [{ ports: [{ port: 7000 }] }] } }, 'a');
    await until(() => names(source.snapshot()?.policies).length === 2);
    expect(source.describe().problems).toEqual([{ where: 'Pod a/p', problem: 'status.podIP: "not-an-ip" is not an IP address' }]);
    const warnings = lines.filter((l) => l['level'] === 'warn' && String(l['msg']).startsWith('skipping'));
    expect(warnings.map((l) => l['msg'])).toEqual(['skipping NetworkPolicy a/bad: spec.ingress[0].ports[0].port: 70000 is not a port (1-65535)', 'skipping Pod a/p: status.podIP: "not-an-ip" is not an IP address']);
    expect(lines.some((l) => l['msg'] === 'NetworkPolicy a/bad is valid again and used')).toBe(true);
    expect(source.status()).toMatchObject({ skipped: 1, skippedTotal: 2 });
  });

  it('keeps the snapshot while the API server is away, says why, and catches up when it is back', async () => {
    f.api.createObject('networkpolicies', policy('one', 'a'));
    source = makeSource();
    await source.start();
    await until(() => source.snapshot()?.policies.length === 1);
    await f.api.stop();
    await until(() => source.describe().error !== undefined);
    expect(source.describe().error).toMatch(/NetworkPolicies|Pods|Namespaces/);
    expect(names(source.snapshot()?.policies)).toEqual(['a/one']);
    f.api.deleteObject('networkpolicies', 'one', 'a');
    f.api.createObject('networkpolicies', policy('two', 'b'));
    f.api.compact();
    await f.api.restart();
    await until(() => names(source.snapshot()?.policies).join() === 'b/two');
    await until(() => source.describe().error === undefined);
    expect(source.describe().synced).toBe(true);
  });

  it('no snapshot while the API server has never answered', async () => {
    await f.api.stop();
    source = makeSource();
    await source.start();
    await until(() => source.describe().error !== undefined);
    expect(source.snapshot()).toBeUndefined();
    expect(source.describe().synced).toBe(false);
    expect(changes).toBe(0);
    await f.api.restart();
    await until(() => source.snapshot() !== undefined);
  });

  it('makes exactly the calls deploy/01-rbac.yaml grants: list and watch of networkpolicies, pods, namespaces', async () => {
    source = makeSource();
    await source.start();
    await until(() => source.snapshot() !== undefined && source.status().pods.watching && source.status().networkPolicies.watching && source.status().namespaces.watching);
    const calls = new Set(f.api.requests.map((r) => `${r.method} ${r.path.split('?')[0]} ${r.path.includes('watch=true') ? 'watch' : 'list'}`));
    expect([...calls].sort()).toEqual([
      'GET /api/v1/namespaces list',
      'GET /api/v1/namespaces watch',
      'GET /api/v1/pods list',
      'GET /api/v1/pods watch',
      'GET /apis/networking.k8s.io/v1/networkpolicies list',
      'GET /apis/networking.k8s.io/v1/networkpolicies watch',
    ]);
  });
});
