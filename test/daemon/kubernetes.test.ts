import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { peerNameFromPublicKey } from '../../src/core/ids.js';
import { KubernetesMode, RECHECK_MS } from '../../src/daemon/kubernetes.js';
import { NODE_ANNOTATIONS } from '../../src/k8s/names.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { kubeFixture, until, type KubeFixture } from '../k8s/helpers.js';

function peerAnnotations(endpoint: string): { peer: string; annotations: Record<string, string> } {
  const key = randomBytes(32);
  const peer = peerNameFromPublicKey(key);
  return { peer, annotations: { [NODE_ANNOTATIONS.peer]: peer, [NODE_ANNOTATIONS.publicKey]: key.toString('base64'), [NODE_ANNOTATIONS.endpoint]: endpoint, [NODE_ANNOTATIONS.version]: '0.1.0' } };
}

let f: KubeFixture;
let mode: KubernetesMode;
let targets: { endpoint: string; peer: string }[][];
let forgotten: string[];
let lines: Record<string, unknown>[];
/** Peers the mesh reaches (what `reachable` answers). */
let alive: Set<string>;

beforeEach(async () => {
  f = await kubeFixture();
  targets = [];
  forgotten = [];
  alive = new Set();
  const rec = recordingLogger();
  lines = rec.lines;
  const key = randomBytes(32);
  mode = new KubernetesMode(
    {
      clock: systemClock,
      logger: rec.logger,
      kube: f.kube,
      setTargets: (t) => targets.push(t),
      forget: (peer) => {
        forgotten.push(peer);
        return 'forgotten from the topology';
      },
      reachable: (peer) => alive.has(peer),
    },
    {
      config: { kubeconfig: f.kubeconfig, nodeName: 'n1', namespace: 'kube-system', detected: false },
      peerName: peerNameFromPublicKey(key),
      publicKey: key,
      advertise: undefined,
      port: 6784,
      version: '0.1.0',
      backoffMinMs: 20,
      backoffMaxMs: 100,
    },
  );
});

afterEach(async () => {
  await mode.stop();
  await f.close();
});

describe('Kubernetes mode in the daemon', () => {
  it('hands the peers on Nodes to the mesh as its targets, and forgets a deleted Node once, then tells the listeners', async () => {
    const p2 = peerAnnotations('198.18.0.2:6784');
    const p3 = peerAnnotations('198.18.0.3:6784');
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', internalIP: '198.18.0.2', annotations: p2.annotations });
    f.api.createNode({ name: 'n3', internalIP: '198.18.0.3', annotations: p3.annotations });
    const heard: [string, string][] = [];
    mode.onNodeDeleted((peer, node) => {
      heard.push([peer, node]);
    });
    mode.onNodeDeleted(async () => {
      throw new Error('the block was not reclaimed');
    });
    mode.start();
    await until(() => targets.at(-1)?.length === 2);
    expect(targets.at(-1)).toEqual([
      { endpoint: '198.18.0.2:6784', peer: p2.peer },
      { endpoint: '198.18.0.3:6784', peer: p3.peer },
    ]);
    f.api.deleteNode('n3');
    await until(() => heard.length === 1 && lines.some((l) => l['msg'] === 'a Node-deleted listener failed'));
    expect(forgotten).toEqual([p3.peer]);
    expect(heard).toEqual([[p3.peer, 'n3']]);
    expect(targets.at(-1)).toEqual([{ endpoint: '198.18.0.2:6784', peer: p2.peer }]);
    await until(() => mode.status()?.ownNode === 'published');
    const st = mode.status()!;
    expect(st).toMatchObject({ node: 'n1', namespace: 'kube-system', server: f.api.url, synced: true, nodesSeen: 2, nodesDeleted: 1, ownNode: 'published', invalidNodes: 0 });
    expect(st.peersFromNodes).toEqual([{ node: 'n2', peer: p2.peer, endpoint: '198.18.0.2:6784', version: '0.1.0' }]);
  });

  it('a deleted Node whose router is still reachable is forgotten (and its blocks handed to the listeners) only once it is not', async () => {
    const p2 = peerAnnotations('198.18.0.2:6784');
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', internalIP: '198.18.0.2', annotations: p2.annotations });
    const heard: string[] = [];
    mode.onNodeDeleted((peer) => {
      heard.push(peer);
    });
    alive.add(p2.peer);
    mode.start();
    await until(() => targets.at(-1)?.length === 1);
    f.api.deleteNode('n2');
    await until(() => (mode.status()?.deletedButReachable.length ?? 0) === 1);
    expect(mode.status()!.deletedButReachable).toEqual([{ peer: p2.peer, node: 'n2' }]);
    expect(lines.some((l) => String(l['msg']).includes('still reachable'))).toBe(true);
    // Looked at again after RECHECK_MS: still reachable, still waiting.
    await new Promise((r) => setTimeout(r, RECHECK_MS + 500));
    expect(forgotten).toEqual([]);
    expect(heard).toEqual([]);
    alive.delete(p2.peer);
    await until(() => heard.length === 1, 10_000);
    expect(forgotten).toEqual([p2.peer]);
    expect(mode.status()).toMatchObject({ nodesDeleted: 1, deletedButReachable: [] });
  });

  it('starts while the API server is unreachable, and discovers once it is back', async () => {
    const p2 = peerAnnotations('198.18.0.2:6784');
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', annotations: p2.annotations });
    await f.api.stop();
    mode.start();
    await until(() => (mode.status()?.watch.errors ?? 0) >= 2);
    expect(mode.status()).toMatchObject({ synced: false, peersFromNodes: [] });
    expect(mode.status()?.watch.lastError).toMatch(/ECONNREFUSED/);
    await f.api.restart();
    await until(() => mode.status()?.synced === true && targets.length > 0);
    expect(targets.at(-1)).toEqual([{ endpoint: '198.18.0.2:6784', peer: p2.peer }]);
  });
});
