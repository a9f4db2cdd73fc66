/**
 * Attacks through Node objects (Kubernetes mode). Every router may patch every Node (RBAC cannot
 * limit a patch to the router's own Node), so a compromised member, or anyone with that right,
 * can write weft's annotations anywhere. Driven through the real client-node against the fake API
 * server; the victim is a router's KubernetesMode with the daemon's forget path recorded.
 *
 *   - a live router's annotations copied onto another Node, which is then deleted: the live
 *     router is not forgotten (nor its IPAM blocks handed to the reclaim listeners)
 *   - garbage annotations (oversized, not base64, a name that does not match its key, an endpoint
 *     that does not parse): ignored, counted once per Node and problem, the other peers unaffected,
 *     and the deletion of such a Node forgets nobody
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { peerNameFromPublicKey } from '../../src/core/ids.js';
import { KubernetesMode } from '../../src/daemon/kubernetes.js';
import { NODE_ANNOTATIONS } from '../../src/k8s/names.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { kubeFixture, until, type KubeFixture } from '../k8s/helpers.js';

function router(endpoint: string): { peer: string; annotations: Record<string, string> } {
  const key = randomBytes(32);
  const peer = peerNameFromPublicKey(key);
  return { peer, annotations: { [NODE_ANNOTATIONS.peer]: peer, [NODE_ANNOTATIONS.publicKey]: key.toString('base64'), [NODE_ANNOTATIONS.endpoint]: endpoint, [NODE_ANNOTATIONS.version]: '0.1.0' } };
}

let f: KubeFixture;
let mode: KubernetesMode;
let forgotten: string[];
let reclaimed: string[];
let targets: { endpoint: string; peer: string }[][];

beforeEach(async () => {
  f = await kubeFixture();
  forgotten = [];
  reclaimed = [];
  targets = [];
  const key = randomBytes(32);
  mode = new KubernetesMode(
    {
      clock: systemClock,
      logger: recordingLogger().logger,
      kube: f.kube,
      setTargets: (t) => targets.push(t),
      forget: (peer) => {
        forgotten.push(peer);
        return 'forgotten';
      },
      reachable: () => false,
    },
    { config: { kubeconfig: f.kubeconfig, nodeName: 'n1', namespace: 'kube-system', detected: false }, peerName: peerNameFromPublicKey(key), publicKey: key, advertise: undefined, port: 6784, version: '0.1.0', backoffMinMs: 20, backoffMaxMs: 100 },
  );
  mode.onNodeDeleted((peer) => {
    reclaimed.push(peer);
  });
});

afterEach(async () => {
  await mode.stop();
  await f.close();
});

describe('attack: weft annotations written on Nodes by someone else', () => {
  it("a live router's annotations copied onto another Node, which is then deleted: the router is neither forgotten nor its blocks reclaimed", async () => {
    const victim = router('198.18.0.2:6784');
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', internalIP: '198.18.0.2', annotations: victim.annotations });
    f.api.createNode({ name: 'decoy', internalIP: '198.18.0.66' });
    mode.start();
    await until(() => targets.at(-1)?.length === 1);
    f.api.patchNode('decoy', { metadata: { annotations: { ...victim.annotations, [NODE_ANNOTATIONS.endpoint]: '198.18.0.66:6784' } } });
    await until(() => mode.peers().length === 2);
    f.api.deleteNode('decoy');
    await until(() => mode.peers().length === 1);
    // The deletion has been handled (the decoy is gone from the peers); give a listener time to run.
    await new Promise((r) => setTimeout(r, 100));
    expect(forgotten).toEqual([]);
    expect(reclaimed).toEqual([]);
    expect(mode.status()!.nodesDeleted).toBe(0);
    expect(targets.at(-1)).toEqual([{ endpoint: '198.18.0.2:6784', peer: victim.peer }]);
  });

  it('garbage annotations are ignored and counted once; the other peers stay, and deleting such a Node forgets nobody', async () => {
    const good = router('198.18.0.2:6784');
    const other = router('198.18.0.4:6784');
    const key = randomBytes(32).toString('base64');
    const bad: Record<string, Record<string, string>> = {
      huge: { ...good.annotations, [NODE_ANNOTATIONS.peer]: 'f'.repeat(100_000) },
      notBase64: { [NODE_ANNOTATIONS.peer]: other.peer, [NODE_ANNOTATIONS.publicKey]: '%%%not base64%%%', [NODE_ANNOTATIONS.endpoint]: '198.18.0.5:6784' },
      wrongKey: { [NODE_ANNOTATIONS.peer]: other.peer, [NODE_ANNOTATIONS.publicKey]: key, [NODE_ANNOTATIONS.endpoint]: '198.18.0.6:6784' },
      badEndpoint: { ...other.annotations, [NODE_ANNOTATIONS.endpoint]: 'x'.repeat(10_000) },
    };
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', internalIP: '198.18.0.2', annotations: good.annotations });
    for (const [name, annotations] of Object.entries(bad)) f.api.createNode({ name: name.toLowerCase(), annotations });
    mode.start();
    await until(() => (mode.status()?.invalidNodes ?? 0) === 4 && mode.peers().length === 1);
    // The same garbage again (a relist, a no-op patch) is not counted again.
    f.api.patchNode('huge', { metadata: { labels: { touched: 'yes' } } });
    await new Promise((r) => setTimeout(r, 200));
    expect(mode.status()!.invalidNodes).toBe(4);
    expect(mode.peers().map((p) => p.peer)).toEqual([good.peer]);
    for (const name of Object.keys(bad)) f.api.deleteNode(name.toLowerCase());
    await until(() => mode.status()!.invalid.length === 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(forgotten).toEqual([]);
    expect(reclaimed).toEqual([]);
    expect(mode.peers().map((p) => p.peer)).toEqual([good.peer]);
  });
});
