/**
 * The fake API server driven through the real @kubernetes/client-node, as weft drives a real one:
 * list, watch with bookmarks, 410 after a compaction, 409 on a stale update and a second create,
 * a dropped watch, a stopped and restarted server, 401 without the token, and the Status bodies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiException, CoordinationV1Api, CoreV1Api, KubeConfig, NetworkingV1Api, PatchStrategy, Watch, setHeaderOptions, type V1Lease } from '@kubernetes/client-node';
import { FakeKubeApi } from '../../lab/kube-api.js';
import { KubeApiControl, serveKubeApiControl } from '../../lab/kube-api-control.js';

interface Seen {
  type: string;
  object: Record<string, unknown> & { metadata?: { name?: string; resourceVersion?: string } };
}

let api: FakeKubeApi;
let dir: string;
let kc: KubeConfig;
let core: CoreV1Api;
let coordination: CoordinationV1Api;

beforeEach(async () => {
  api = await FakeKubeApi.start({ bookmarkMs: 50 });
  dir = mkdtempSync(join(tmpdir(), 'weft-kube-api-'));
  api.writeKubeconfig(join(dir, 'kubeconfig'));
  kc = new KubeConfig();
  kc.loadFromFile(join(dir, 'kubeconfig'));
  core = kc.makeApiClient(CoreV1Api);
  coordination = kc.makeApiClient(CoordinationV1Api);
});

afterEach(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const e = err as ApiException<unknown>;
    return { code: e.code, body: (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as Record<string, unknown> };
  }
  throw new Error('the call succeeded');
}

/** A watch through client-node's Watch, collecting events until `done`. */
function watch(path: string, params: Record<string, string | number | boolean | undefined>) {
  const events: Seen[] = [];
  let ended: unknown = 'open';
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  const ctl = new Watch(kc).watch(
    path,
    params,
    (type, object) => {
      events.push({ type, object: object as Seen['object'] });
      wake();
    },
    (err) => {
      ended = err;
      wake();
    },
  );
  const until = async (pred: () => boolean) => {
    while (!pred()) await new Promise<void>((r) => waiters.push(r));
  };
  return { events, ended: () => ended, until, abort: async () => (await ctl).abort() };
}

describe('the fake API server through @kubernetes/client-node', () => {
  it('lists Nodes with the store resourceVersion, label and field selectors', async () => {
    api.createNode({ name: 'n1', internalIP: '198.18.0.1', labels: { role: 'a' } });
    api.createNode({ name: 'n2', internalIP: '198.18.0.2', labels: { role: 'b' } });
    const all = await core.listNode();
    expect(all.items.map((n) => n.metadata?.name)).toEqual(['n1', 'n2']);
    expect(all.metadata?.resourceVersion).toBe(api.resourceVersion);
    expect(all.items[0]?.status?.addresses).toContainEqual({ type: 'InternalIP', address: '198.18.0.1' });
    expect((await core.listNode({ labelSelector: 'role=b' })).items.map((n) => n.metadata?.name)).toEqual(['n2']);
    expect((await core.listNode({ labelSelector: 'role!=b' })).items.map((n) => n.metadata?.name)).toEqual(['n1']);
    expect((await core.listNode({ fieldSelector: 'metadata.name=n1' })).items.map((n) => n.metadata?.name)).toEqual(['n1']);
    expect((await failure(core.listNode({ labelSelector: 'role=(' }))).code).toBe(400);
  });

  it('gets, patches (merge and JSON patch) and deletes a Node; no-op writes keep the resourceVersion', async () => {
    const made = api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    const patched = await core.patchNode({ name: 'n1', body: { metadata: { annotations: { 'weft.dev/peer': 'abc' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(patched.metadata?.annotations).toEqual({ 'weft.dev/peer': 'abc' });
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(made.metadata.resourceVersion));
    const again = await core.patchNode({ name: 'n1', body: { metadata: { annotations: { 'weft.dev/peer': 'abc' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(again.metadata?.resourceVersion).toBe(patched.metadata?.resourceVersion);
    const strategic = await core.patchNode({ name: 'n1', body: { metadata: { annotations: { x: '1' } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    expect(strategic.metadata?.annotations).toEqual({ 'weft.dev/peer': 'abc', x: '1' });
    const json = await core.patchNode({ name: 'n1', body: [{ op: 'remove', path: '/metadata/annotations/x' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    expect(json.metadata?.annotations).toEqual({ 'weft.dev/peer': 'abc' });
    expect((await core.readNode({ name: 'n1' })).metadata?.uid).toBe(made.metadata.uid);
    await core.deleteNode({ name: 'n1' });
    const gone = await failure(core.readNode({ name: 'n1' }));
    expect(gone).toEqual({
      code: 404,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'nodes "n1" not found', reason: 'NotFound', details: { name: 'n1', kind: 'nodes' }, code: 404 },
    });
  });

  it('answers 409 AlreadyExists on a second create and 409 Conflict on a stale update (Leases)', async () => {
    const body: V1Lease = { metadata: { name: 'b1', labels: { 'weft.dev/component': 'ipam-block' } }, spec: { holderIdentity: 'p1' } };
    const first = await coordination.createNamespacedLease({ namespace: 'kube-system', body });
    expect(first.metadata?.namespace).toBe('kube-system');
    const second = await failure(coordination.createNamespacedLease({ namespace: 'kube-system', body }));
    expect(second.code).toBe(409);
    expect(second.body).toMatchObject({ reason: 'AlreadyExists', message: 'leases.coordination.k8s.io "b1" already exists', details: { name: 'b1', group: 'coordination.k8s.io', kind: 'leases' } });
    const won = await coordination.replaceNamespacedLease({ name: 'b1', namespace: 'kube-system', body: { ...first, spec: { holderIdentity: 'p2' } } });
    expect(won.spec?.holderIdentity).toBe('p2');
    const lost = await failure(coordination.replaceNamespacedLease({ name: 'b1', namespace: 'kube-system', body: { ...first, spec: { holderIdentity: 'p3' } } }));
    expect(lost.code).toBe(409);
    expect(lost.body).toMatchObject({ reason: 'Conflict', status: 'Failure', kind: 'Status' });
    expect(String(lost.body['message'])).toContain('the object has been modified');
    expect((await failure(coordination.replaceNamespacedLease({ name: 'nope', namespace: 'kube-system', body: { metadata: { name: 'nope' } } }))).code).toBe(404);
    expect((await coordination.listNamespacedLease({ namespace: 'kube-system', labelSelector: 'weft.dev/component=ipam-block' })).items).toHaveLength(1);
    expect((await coordination.listNamespacedLease({ namespace: 'other' })).items).toHaveLength(0);
  });

  it('watches: current objects first, then changes; bookmarks carry the latest resourceVersion', async () => {
    api.createNode({ name: 'n1' });
    const w = watch('/api/v1/nodes', { allowWatchBookmarks: true });
    await w.until(() => w.events.some((e) => e.type === 'ADDED'));
    api.createNode({ name: 'n2' });
    api.patchNode('n1', { metadata: { annotations: { a: 'b' } } });
    api.deleteNode('n2');
    const rv = api.resourceVersion;
    await w.until(() => w.events.some((e) => e.type === 'BOOKMARK' && e.object.metadata?.resourceVersion === rv));
    expect(w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED n1', 'ADDED n2', 'MODIFIED n1', 'DELETED n2']);
    const bookmark = w.events.find((e) => e.type === 'BOOKMARK')!;
    expect(bookmark.object).toEqual({ kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: expect.any(String) } });
    await w.abort();
  });

  it('resumes a watch from a resourceVersion with the events after it; 410 Expired after a compaction', async () => {
    api.createNode({ name: 'n1' });
    const from = api.resourceVersion;
    api.createNode({ name: 'n2' });
    const resumed = watch('/api/v1/nodes', { resourceVersion: from });
    await resumed.until(() => resumed.events.length >= 1);
    expect(resumed.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED n2']);
    await resumed.abort();
    api.compact();
    const expired = watch('/api/v1/nodes', { resourceVersion: from });
    await expired.until(() => expired.ended() !== 'open');
    expect(expired.events).toEqual([
      { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${api.resourceVersion})`, reason: 'Expired', code: 410 } },
    ]);
    // A list is served from the current state whatever the resourceVersion ("not older than").
    expect((await core.listNode({ resourceVersion: from })).items).toHaveLength(2);
    expect((await failure(core.listNode({ resourceVersion: from, resourceVersionMatch: 'Exact' }))).code).toBe(410);
    // Watching from the current version is still fine after a compaction.
    const current = watch('/api/v1/nodes', { resourceVersion: api.resourceVersion });
    api.createNode({ name: 'n3' });
    await current.until(() => current.events.length >= 1);
    expect(current.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED n3']);
    await current.abort();
  });

  it('keeps historyLimit events: a watch from before them is 410, from within them is served', async () => {
    const small = await FakeKubeApi.start({ historyLimit: 2 });
    try {
      small.createNode({ name: 'n1' });
      const first = small.resourceVersion;
      small.createNode({ name: 'n2' });
      const second = small.resourceVersion;
      small.createNode({ name: 'n3' });
      small.createNode({ name: 'n4' });
      const auth = { Authorization: `Bearer ${small.token}` };
      const read = async (rv: string) => {
        const res = await fetch(`${small.url}/api/v1/nodes?watch=true&resourceVersion=${rv}&timeoutSeconds=1`, { headers: auth });
        return (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Seen);
      };
      expect((await read(first)).map((e) => `${e.type} ${String(e.object['code'] ?? e.object.metadata?.name)}`)).toEqual(['ERROR 410']);
      expect((await read(second)).map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED n3', 'ADDED n4']);
    } finally {
      await small.stop();
    }
  });

  it('a selector watch sees an object that stops matching as DELETED and one that starts as ADDED', async () => {
    api.createNode({ name: 'n1', labels: { on: 'yes' } });
    const w = watch('/api/v1/nodes', { labelSelector: 'on=yes' });
    await w.until(() => w.events.length >= 1);
    api.patchNode('n1', { metadata: { labels: { on: 'no' } } });
    api.patchNode('n1', { metadata: { labels: { on: 'yes' } } });
    await w.until(() => w.events.length >= 3);
    expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'DELETED', 'ADDED']);
    await w.abort();
  });

  it('dropWatches ends the stream (client-node calls done without an error); stop refuses, restart keeps the state', async () => {
    api.createNode({ name: 'n1' });
    const w = watch('/api/v1/nodes', {});
    await w.until(() => w.events.length >= 1);
    api.dropWatches();
    await w.until(() => w.ended() !== 'open');
    expect(w.ended()).toBeNull();
    await api.stop();
    const refused = await core.listNode().then(() => 'answered', (err: unknown) => String((err as { code?: string }).code ?? err));
    expect(refused).toContain('ECONNREFUSED');
    await api.restart();
    expect((await core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['n1']);
  });

  it('answers 401 Unauthorized without the token, and a Status 404 for an unknown resource', async () => {
    const res = await fetch(`${api.url}/api/v1/nodes`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    const auth = { Authorization: `Bearer ${api.token}` };
    const unknown = await fetch(`${api.url}/api/v1/services`, { headers: auth });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    const bad = await fetch(`${api.url}/api/v1/nodes`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
    expect(api.requests.map((r) => r.status)).toEqual([401, 404, 400]);
  });

  it('is driven through its control socket with the same operations', async () => {
    const socket = join(dir, 'control.sock');
    const server = await serveKubeApiControl(api, socket);
    try {
      const ctl = new KubeApiControl(socket);
      await ctl.createNode({ name: 'n1', internalIP: '198.18.0.1' });
      expect((await core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['n1']);
      expect(await ctl.getObject('nodes', 'n1')).toMatchObject({ kind: 'Node', metadata: { name: 'n1' } });
      expect(await ctl.getObject('nodes', 'n9')).toBeUndefined();
      await expect(ctl.createNode({ name: 'n1' })).rejects.toThrow(/already exists/);
      expect((await ctl.info()).url).toBe(api.url);
      await ctl.deleteNode('n1');
      expect(await ctl.listObjects('nodes')).toEqual([]);
      // Any kind: create, update (a Pod's status with it), patch, delete.
      await ctl.createObject('pods', { metadata: { name: 'p1', namespace: 'a', labels: { app: 'x' } }, spec: { containers: [] } });
      const pod = (await ctl.getObject('pods', 'p1', 'a')) as { metadata: Record<string, unknown>; spec: unknown };
      await ctl.updateObject('pods', { ...pod, status: { podIP: '10.0.0.1' } });
      await ctl.patchObject('pods', 'p1', { metadata: { labels: { app: 'y' } } }, 'a');
      const read = await core.readNamespacedPod({ name: 'p1', namespace: 'a' });
      expect([read.metadata?.labels, read.status?.podIP]).toEqual([{ app: 'y' }, '10.0.0.1']);
      await ctl.deleteObject('pods', 'p1', 'a');
      expect(await ctl.listObjects('pods')).toEqual([]);
      await expect(ctl.deleteObject('networkpolicies', 'none', 'a')).rejects.toThrow(/networkpolicies.networking.k8s.io "none" not found/);
    } finally {
      server.close();
    }
  });
});

describe('Pods, Namespaces and NetworkPolicies', () => {
  it('Namespaces are cluster-scoped and get their kubernetes.io/metadata.name label', async () => {
    const made = await core.createNamespace({ body: { metadata: { name: 'team-a', labels: { team: 'a', 'kubernetes.io/metadata.name': 'wrong' } } } });
    expect(made.metadata?.labels).toEqual({ team: 'a', 'kubernetes.io/metadata.name': 'team-a' });
    api.createObject('namespaces', { metadata: { name: 'team-b' } });
    expect((await core.listNamespace({ labelSelector: 'kubernetes.io/metadata.name in (team-b)' })).items.map((n) => n.metadata?.name)).toEqual(['team-b']);
    const patched = await core.patchNamespace({ name: 'team-b', body: { metadata: { labels: { 'kubernetes.io/metadata.name': null, x: 'y' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(patched.metadata?.labels).toEqual({ x: 'y', 'kubernetes.io/metadata.name': 'team-b' });
    await core.deleteNamespace({ name: 'team-a' });
    expect((await core.listNamespace()).items.map((n) => n.metadata?.name)).toEqual(['team-b']);
  });

  it('Pods: per namespace and across all, with label selectors; a watch of all namespaces sees each', async () => {
    await core.createNamespacedPod({ namespace: 'a', body: { metadata: { name: 'p1', labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } });
    api.createObject('pods', { metadata: { name: 'p2', namespace: 'b', labels: { app: 'db' } }, spec: { containers: [] }, status: { podIPs: [{ ip: '10.1.0.2' }] } });
    expect((await core.listPodForAllNamespaces()).items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(['a/p1', 'b/p2']);
    expect((await core.listNamespacedPod({ namespace: 'b' })).items.map((p) => p.status?.podIPs)).toEqual([[{ ip: '10.1.0.2' }]]);
    expect((await core.listPodForAllNamespaces({ labelSelector: 'app=web' })).items.map((p) => p.metadata?.name)).toEqual(['p1']);
    const all = watch('/api/v1/pods', {});
    const inA = watch('/api/v1/namespaces/a/pods', {});
    await all.until(() => all.events.length >= 2);
    await inA.until(() => inA.events.length >= 1);
    api.createObject('pods', { metadata: { name: 'p3', namespace: 'c' } });
    api.deleteObject('pods', 'p1', 'a');
    await all.until(() => all.events.length >= 4);
    await inA.until(() => inA.events.length >= 2);
    expect(all.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED p1', 'ADDED p2', 'ADDED p3', 'DELETED p1']);
    expect(inA.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED p1', 'DELETED p1']);
    expect(all.events[0]?.object['kind']).toBe('Pod');
    await all.abort();
    await inA.abort();
    expect((await failure(core.readNamespacedPod({ name: 'p1', namespace: 'a' }))).body['message']).toBe('pods "p1" not found');
  });

  it('NetworkPolicies (networking.k8s.io/v1): create, list across namespaces, replace, watch', async () => {
    const net = kc.makeApiClient(NetworkingV1Api);
    const made = await net.createNamespacedNetworkPolicy({ namespace: 'a', body: { metadata: { name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } } });
    expect([made.apiVersion, made.kind, made.metadata?.namespace]).toEqual(['networking.k8s.io/v1', 'NetworkPolicy', 'a']);
    const w = watch('/apis/networking.k8s.io/v1/networkpolicies', { allowWatchBookmarks: true });
    await w.until(() => w.events.length >= 1);
    await net.replaceNamespacedNetworkPolicy({ name: 'deny', namespace: 'a', body: { ...made, spec: { podSelector: { matchLabels: { app: 'x' } } } } });
    api.createObject('networkpolicies', { metadata: { name: 'allow', namespace: 'b' }, spec: { podSelector: {}, ingress: [{}] } });
    await w.until(() => w.events.filter((e) => e.type !== 'BOOKMARK').length >= 3);
    expect(w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED deny', 'MODIFIED deny', 'ADDED allow']);
    await w.abort();
    expect((await net.listNetworkPolicyForAllNamespaces()).items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(['a/deny', 'b/allow']);
    expect((await net.listNamespacedNetworkPolicy({ namespace: 'a' })).items[0]?.spec?.podSelector).toEqual({ matchLabels: { app: 'x' } });
    const gone = await failure(net.readNamespacedNetworkPolicy({ name: 'nope', namespace: 'a' }));
    expect(gone.body).toMatchObject({ message: 'networkpolicies.networking.k8s.io "nope" not found', details: { name: 'nope', group: 'networking.k8s.io', kind: 'networkpolicies' } });
    // Not a path: a NetworkPolicy by name without a namespace.
    expect((await fetch(`${api.url}/apis/networking.k8s.io/v1/networkpolicies/deny`, { headers: { Authorization: `Bearer ${api.token}` } })).status).toBe(404);
  });
});
