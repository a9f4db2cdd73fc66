import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { peerNameFromPublicKey } from '../../src/core/ids.js';
import { NODE_ANNOTATIONS, PUBLIC_ENDPOINT_ANNOTATION } from '../../src/k8s/names.js';
import { NodeDiscovery, type DiscoveredPeer, type NodeDiscoveryInit } from '../../src/k8s/node-discovery.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { kubeFixture, until, type KubeFixture } from './helpers.js';

function identity(): { key: Buffer; peer: string; b64: string } {
  const key = randomBytes(32);
  return { key, peer: peerNameFromPublicKey(key), b64: key.toString('base64') };
}

function annotations(id: { peer: string; b64: string }, endpoint: string, version = '0.1.0'): Record<string, string> {
  return { [NODE_ANNOTATIONS.peer]: id.peer, [NODE_ANNOTATIONS.publicKey]: id.b64, [NODE_ANNOTATIONS.endpoint]: endpoint, [NODE_ANNOTATIONS.version]: version };
}

let f: KubeFixture;
let d: NodeDiscovery;
let me: ReturnType<typeof identity>;
let lines: Record<string, unknown>[];
let peerUpdates: DiscoveredPeer[][];
let deletions: [string, string][];

function makeDiscovery(over: Partial<NodeDiscoveryInit> = {}): NodeDiscovery {
  const rec = recordingLogger();
  lines = rec.lines;
  const disc = new NodeDiscovery(
    { kube: f.kube, clock: systemClock, logger: rec.logger },
    { nodeName: 'n1', peerName: me.peer, publicKey: me.key, advertise: undefined, port: 6784, version: '0.1.0', backoffMinMs: 20, backoffMaxMs: 100, ...over },
  );
  peerUpdates = [];
  deletions = [];
  disc.onPeers((p) => peerUpdates.push(p));
  disc.onNodeDeleted((peer, node) => deletions.push([peer, node]));
  return disc;
}

function ownAnnotations(): Record<string, string> {
  return ((f.api.getObject('nodes', 'n1') as { metadata: { annotations?: Record<string, string> } } | undefined)?.metadata.annotations) ?? {};
}

beforeEach(async () => {
  f = await kubeFixture();
  me = identity();
});

afterEach(async () => {
  await d?.stop();
  await f.close();
});

describe('NodeDiscovery: publishing this router', () => {
  it('writes peer, public key, the InternalIP endpoint with our port and the version on its own Node', async () => {
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    d = makeDiscovery();
    d.start();
    await until(() => d.status().ownNode === 'published');
    expect(ownAnnotations()).toEqual(annotations(me, '198.18.0.1:6784'));
    expect(d.status().publishes).toBe(1);
  });

  it('prefers the first --advertise endpoint, and formats an IPv6 InternalIP with brackets', async () => {
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    d = makeDiscovery({ advertise: '203.0.113.7:7000' });
    d.start();
    await until(() => d.status().ownNode === 'published');
    expect(ownAnnotations()[NODE_ANNOTATIONS.endpoint]).toBe('203.0.113.7:7000');
    await d.stop();
    f.api.deleteNode('n1');
    f.api.createNode({ name: 'n1', internalIP: 'fd00::1' });
    d = makeDiscovery();
    d.start();
    await until(() => d.status().ownNode === 'published');
    expect(ownAnnotations()[NODE_ANNOTATIONS.endpoint]).toBe('[fd00::1]:6784');
  });

  it('writes them again when they are removed or changed', async () => {
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    d = makeDiscovery();
    d.start();
    await until(() => d.status().ownNode === 'published');
    f.api.patchNode('n1', { metadata: { annotations: { [NODE_ANNOTATIONS.peer]: null } } });
    await until(() => d.status().publishes === 2 && ownAnnotations()[NODE_ANNOTATIONS.peer] === me.peer);
    f.api.patchNode('n1', { metadata: { annotations: { [NODE_ANNOTATIONS.endpoint]: '10.0.0.9:1' } } });
    await until(() => d.status().publishes === 3 && ownAnnotations()[NODE_ANNOTATIONS.endpoint] === '198.18.0.1:6784');
    expect(ownAnnotations()).toEqual(annotations(me, '198.18.0.1:6784'));
    expect(lines.filter((l) => String(l['msg']).includes('changed or removed'))).toHaveLength(2);
  });

  it('keeps trying while the API server is away, and publishes once it comes', async () => {
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    await f.api.stop();
    d = makeDiscovery();
    d.start();
    await until(() => d.status().watch.errors >= 2);
    expect(d.status().ownNode).toBe('unknown');
    await f.api.restart();
    await until(() => d.status().ownNode === 'published');
    expect(ownAnnotations()[NODE_ANNOTATIONS.peer]).toBe(me.peer);
  });

  it('reports its own Node missing, deleted (keeps running, logs an error) and publishes when it comes back', async () => {
    d = makeDiscovery();
    d.start();
    await until(() => d.status().ownNode === 'missing');
    expect(d.status().ownNodeProblem).toContain('check --node-name');
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    await until(() => d.status().ownNode === 'published');
    f.api.deleteNode('n1');
    await until(() => d.status().ownNode === 'deleted');
    expect(lines.some((l) => l['level'] === 'error' && String(l['msg']).includes('own Node was deleted'))).toBe(true);
    expect(deletions).toEqual([]);
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    await until(() => d.status().ownNode === 'published');
  });

  it('says why it cannot publish when its Node has no InternalIP and there is no --advertise', async () => {
    f.api.createNode({ name: 'n1' });
    d = makeDiscovery();
    d.start();
    await until(() => d.status().ownNode === 'no-endpoint');
    expect(d.status().ownNodeProblem).toContain('no InternalIP');
    expect(ownAnnotations()).toEqual({});
  });
});

describe('NodeDiscovery: other routers', () => {
  it('takes peers from other Nodes, prefers weft.dev/public-endpoint, ignores Nodes without a router', async () => {
    const p2 = identity();
    const p3 = identity();
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', internalIP: '198.18.0.2', annotations: annotations(p2, '198.18.0.2:6784') });
    f.api.createNode({ name: 'n3', internalIP: '198.18.0.3', annotations: { ...annotations(p3, '198.18.0.3:6784'), [PUBLIC_ENDPOINT_ANNOTATION]: '203.0.113.3' } });
    f.api.createNode({ name: 'n4', internalIP: '198.18.0.4' });
    d = makeDiscovery();
    d.start();
    await until(() => d.peers().length === 2);
    expect(d.peers()).toEqual([
      { nodeName: 'n2', peer: p2.peer, endpoint: '198.18.0.2:6784', version: '0.1.0' },
      { nodeName: 'n3', peer: p3.peer, endpoint: '203.0.113.3:6784', version: '0.1.0' },
    ]);
    f.api.patchNode('n2', { metadata: { annotations: { [PUBLIC_ENDPOINT_ANNOTATION]: '[2001:db8::2]:9000' } } });
    await until(() => d.peers()[0]?.endpoint === '[2001:db8::2]:9000');
    expect(peerUpdates.at(-1)?.map((p) => p.endpoint)).toEqual(['[2001:db8::2]:9000', '203.0.113.3:6784']);
    expect(d.status()).toMatchObject({ invalidNodes: 0, nodesSeen: 4 });
  });

  const good = identity();
  const other = identity();
  const cases: [string, Record<string, string>, RegExp][] = [
    ['a peer name that is not 16 hex digits', { ...annotations(good, '198.18.0.2:6784'), [NODE_ANNOTATIONS.peer]: 'not-a-peer' }, /not a peer name/],
    ['a peer name that does not match the key', { ...annotations(good, '198.18.0.2:6784'), [NODE_ANNOTATIONS.publicKey]: other.b64 }, /does not match/],
    ['a public key that is not 32 bytes of base64', { ...annotations(good, '198.18.0.2:6784'), [NODE_ANNOTATIONS.publicKey]: 'AAAA' }, /base64 of 32 bytes/],
    ['a bad endpoint', annotations(good, 'nowhere:x'), /weft\.dev\/endpoint/],
    ['a bad public endpoint', { ...annotations(good, '198.18.0.2:6784'), [PUBLIC_ENDPOINT_ANNOTATION]: 'example.com' }, /public-endpoint/],
    ['no endpoint at all', { [NODE_ANNOTATIONS.peer]: good.peer, [NODE_ANNOTATIONS.publicKey]: good.b64 }, /no weft\.dev\/endpoint/],
  ];
  it.each(cases)('ignores a Node with %s, counts and logs it once', async (_what, bad, problem) => {
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', internalIP: '198.18.0.2', annotations: bad });
    d = makeDiscovery();
    d.start();
    await until(() => d.status().invalidNodes === 1);
    // The same bad annotations seen again (another change of the Node) are not counted again.
    f.api.patchNode('n2', { metadata: { labels: { touched: 'yes' } } });
    await until(() => (d.status().watch.resourceVersion === f.api.resourceVersion));
    expect(d.peers()).toEqual([]);
    expect(d.status().invalidNodes).toBe(1);
    expect(d.status().invalid).toEqual([{ node: 'n2', problem: expect.stringMatching(problem) }]);
    expect(lines.filter((l) => l['msg'] === 'ignoring the weft annotations of a Node')).toHaveLength(1);
    // Fixed: it becomes a peer.
    f.api.patchNode('n2', { metadata: { annotations: { ...annotations(good, '198.18.0.2:6784'), [PUBLIC_ENDPOINT_ANNOTATION]: null } } });
    await until(() => d.peers().length === 1);
    expect(d.status().invalid).toEqual([]);
  });

  it('refuses a Node that claims this router\'s own peer name', async () => {
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', annotations: annotations(me, '198.18.0.2:6784') });
    d = makeDiscovery();
    d.start();
    await until(() => d.status().invalidNodes === 1);
    expect(d.status().invalid[0]?.problem).toContain('own peer name');
  });

  it('keeps a peer of another version, and logs it when the minor differs', async () => {
    const p2 = identity();
    const p3 = identity();
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', annotations: annotations(p2, '198.18.0.2:6784', '0.2.0') });
    f.api.createNode({ name: 'n3', annotations: annotations(p3, '198.18.0.3:6784', '0.1.7') });
    d = makeDiscovery();
    d.start();
    await until(() => d.peers().length === 2);
    const notes = lines.filter((l) => String(l['msg']).includes('another minor version'));
    expect(notes.map((l) => l['node'])).toEqual(['n2']);
  });

  it('announces a deleted Node that carried a peer once (watch DELETED), and not one without a peer', async () => {
    const p2 = identity();
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', annotations: annotations(p2, '198.18.0.2:6784') });
    f.api.createNode({ name: 'n3' });
    d = makeDiscovery();
    d.start();
    await until(() => d.peers().length === 1);
    f.api.deleteNode('n3');
    f.api.deleteNode('n2');
    await until(() => deletions.length === 1 && d.status().nodesSeen === 1);
    f.api.createNode({ name: 'n5' });
    await until(() => d.status().nodesSeen === 2);
    expect(deletions).toEqual([[p2.peer, 'n2']]);
    expect(d.peers()).toEqual([]);
    expect(peerUpdates.at(-1)).toEqual([]);
  });

  it('does not announce a deleted Node whose peer another Node still carries (the router moved, or its annotations were copied)', async () => {
    const p2 = identity();
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', annotations: annotations(p2, '198.18.0.2:6784') });
    f.api.createNode({ name: 'n2-new', annotations: annotations(p2, '198.18.0.12:6784') });
    d = makeDiscovery();
    d.start();
    await until(() => d.peers().length === 2);
    f.api.deleteNode('n2');
    await until(() => d.peers().length === 1);
    expect(d.peers().map((p) => p.nodeName)).toEqual(['n2-new']);
    f.api.deleteNode('n2-new');
    await until(() => deletions.length === 1);
    expect(deletions).toEqual([[p2.peer, 'n2-new']]);
    expect(lines.some((l) => String(l['msg']).includes('another Node still carries'))).toBe(true);
  });

  it('announces a Node gone during an outage once, from the relist after a 410', async () => {
    const p2 = identity();
    f.api.createNode({ name: 'n1', internalIP: '198.18.0.1' });
    f.api.createNode({ name: 'n2', annotations: annotations(p2, '198.18.0.2:6784') });
    d = makeDiscovery();
    d.start();
    await until(() => d.peers().length === 1 && d.status().watch.watching);
    await f.api.stop();
    f.api.deleteNode('n2');
    f.api.compact();
    await f.api.restart();
    await until(() => deletions.length === 1 && d.status().watch.relists === 1);
    f.api.createNode({ name: 'n9' });
    await until(() => d.status().nodesSeen === 2);
    expect(deletions).toEqual([[p2.peer, 'n2']]);
  });
});
