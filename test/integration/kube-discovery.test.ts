/**
 * Discovery from Node objects in a lab: the fake API server (lab/kube-api-main) runs on an
 * underlay host, the Nodes exist first (as kubelets make them), and three routers start with
 * --kubernetes and no --peer. The mesh forms from the Nodes; a deleted Node is forgotten by every
 * other router without a manual step; an API server that goes away leaves the data plane alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_ANNOTATIONS } from '../../src/k8s/names.js';
import type { KubeApiControl} from '../../lab/index.js';
import { WeftCluster, ping } from '../../lab/index.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('Kubernetes discovery (fake API server on the underlay)', () => {
  let c: WeftCluster;
  let kube: KubeApiControl;

  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 3, podsPerNode: 1, kubernetes: {} });
    kube = c.kube!.control;
  });

  afterAll(async () => {
    await c?.destroy();
  });

  it('each router publishes itself on its Node, and the mesh forms from the Nodes alone: pods ping across', async () => {
    for (let i = 0; i < 3; i++) {
      const s = await until(`router n${i + 1} published`, async () => {
        const st = await c.apiStatus(i);
        return st.kubernetes?.ownNode === 'published' && st.kubernetes.peersFromNodes.length === 2 ? st : undefined;
      });
      expect(s.kubernetes!.peersFromNodes.map((p) => p.endpoint).sort()).toEqual(c.lab.nodes.filter((_, k) => k !== i).map((n) => `${n.address}:6784`).sort());
      const node = (await kube.getObject('nodes', `n${i + 1}`)) as { metadata: { annotations: Record<string, string> } };
      expect(node.metadata.annotations[NODE_ANNOTATIONS.peer]).toBe(s.name);
      expect(node.metadata.annotations[NODE_ANNOTATIONS.endpoint]).toBe(`${c.lab.nodes[i]!.address}:6784`);
      expect(node.metadata.annotations[NODE_ANNOTATIONS.version]).toBe(s.build.version);
      expect(s.mesh.targets.every((t) => t.discovered === true && !t.configured)).toBe(true);
    }
    await c.waitEstablished(30_000);
    for (const [a, b] of c.podPairs()) {
      expect((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 2 })).received, `${a.ns} -> ${b.ipv4}`).toBe(1);
    }
  });

  it('the API server stopped: pods keep pinging; restarted: discovery resumes (an annotation removed is written back)', async () => {
    await kube.stop();
    // The open watch breaks first (premature close), then the calls are refused.
    await until('router n1 is refused by the API server', async () => (/ECONNREFUSED/.test((await c.apiStatus(0)).kubernetes!.watch.lastError ?? '') ? true : undefined));
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    expect((await ping(c.lab, a.ns, b.ipv4!, { count: 3, intervalS: 0.2 })).received).toBe(3);
    const away = (await c.apiStatus(0)).kubernetes!;
    expect(away.peersFromNodes).toHaveLength(2);
    expect(away.watch.watching).toBe(false);
    await kube.restart();
    await kube.patchNode('n1', { metadata: { annotations: { [NODE_ANNOTATIONS.peer]: null } } });
    await until('n1 writes its annotation back', async () => {
      const node = (await kube.getObject('nodes', 'n1')) as { metadata: { annotations: Record<string, string> } };
      return node.metadata.annotations[NODE_ANNOTATIONS.peer] !== undefined ? true : undefined;
    }, 60_000);
    expect((await c.apiStatus(0)).kubernetes!.watch.watching).toBe(true);
  });

  it('a Node deleted: every other router forgets its peer, without a manual step', async () => {
    const gone = (await c.apiStatus(2)).name;
    await c.stopRouter(2);
    await kube.deleteNode('n3');
    for (const i of [0, 1]) {
      const s = await until(`router n${i + 1} forgets n3`, async () => {
        const st = await c.apiStatus(i);
        return st.kubernetes!.nodesDeleted === 1 && !st.mesh.peers.some((p) => p.name === gone) ? st : undefined;
      });
      expect(s.kubernetes!.peersFromNodes.map((p) => p.node)).toEqual([i === 0 ? 'n2' : 'n1']);
      expect(s.mesh.targets.map((t) => t.address)).not.toContain(`${c.lab.nodes[2]!.address}:6784`);
    }
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    expect((await ping(c.lab, a.ns, b.ipv4!, { count: 2, intervalS: 0.2 })).received).toBe(2);
  });
});
