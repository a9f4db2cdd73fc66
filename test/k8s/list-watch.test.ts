import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { V1Node } from '@kubernetes/client-node';
import { systemClock } from '../../src/core/clock.js';
import { ListWatch, type CacheEvent } from '../../src/k8s/list-watch.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { kubeFixture, until, type KubeFixture } from './helpers.js';

let f: KubeFixture;
let lw: ListWatch<V1Node>;
let events: string[];
let logLines: Record<string, unknown>[];

function describeEvent(e: CacheEvent<V1Node>): string {
  return `${e.type} ${e.object.metadata?.name}`;
}

beforeEach(async () => {
  f = await kubeFixture({ bookmarkMs: 30 });
  events = [];
  const { logger, lines } = recordingLogger();
  logLines = lines;
  lw = new ListWatch<V1Node>(
    { config: f.kube.config, list: () => f.kube.core.listNode(), clock: systemClock, logger, onEvent: (e) => events.push(describeEvent(e)) },
    { path: '/api/v1/nodes', what: 'Nodes', backoffMinMs: 20, backoffMaxMs: 100 },
  );
});

afterEach(async () => {
  await lw.stop();
  await f.close();
});

describe('ListWatch against the fake API server', () => {
  it('lists, then watches: the cache follows adds, changes and deletions', async () => {
    f.api.createNode({ name: 'n1' });
    lw.start();
    await until(() => lw.status().synced);
    expect(events).toEqual(['added n1']);
    f.api.createNode({ name: 'n2' });
    f.api.patchNode('n1', { metadata: { annotations: { a: 'b' } } });
    f.api.deleteNode('n2');
    await until(() => events.length >= 4);
    expect(events).toEqual(['added n1', 'added n2', 'modified n1', 'deleted n2']);
    expect(lw.objects().map((n) => n.metadata?.name)).toEqual(['n1']);
    expect(lw.get('n1')?.metadata?.annotations).toEqual({ a: 'b' });
    expect(lw.status()).toMatchObject({ lists: 1, relists: 0, expired: 0, errors: 0, objects: 1 });
  });

  it('a 410 Gone is answered by a relist that emits exactly the differences', async () => {
    f.api.createNode({ name: 'n1' });
    f.api.createNode({ name: 'n2' });
    lw.start();
    await until(() => lw.status().synced && lw.status().watching);
    await f.api.stop();
    // While the watch is away: one Node goes, one changes, one comes; the history is forgotten.
    f.api.deleteNode('n1');
    f.api.patchNode('n2', { metadata: { labels: { x: 'y' } } });
    f.api.createNode({ name: 'n3' });
    f.api.compact();
    events.length = 0;
    await f.api.restart();
    await until(() => lw.status().relists === 1 && events.length >= 3);
    expect(events.sort()).toEqual(['added n3', 'deleted n1', 'modified n2']);
    expect(lw.status()).toMatchObject({ expired: 1, relists: 1, lists: 2, objects: 2 });
    expect(lw.status().resourceVersion).toBe(f.api.resourceVersion);
  });

  it('bookmarks advance the resourceVersion, so a watch resumed after a compaction needs no relist', async () => {
    f.api.createNode({ name: 'n1' });
    lw.start();
    await until(() => lw.status().watching);
    // Writes of other kinds advance the store's version; only a bookmark tells the Node watch.
    await f.kube.coordination.createNamespacedLease({ namespace: 'kube-system', body: { metadata: { name: 'l1' } } });
    const rv = f.api.resourceVersion;
    await until(() => lw.status().resourceVersion === rv);
    f.api.compact();
    f.api.dropWatches();
    f.api.createNode({ name: 'n2' });
    await until(() => events.includes('added n2'));
    expect(lw.status()).toMatchObject({ expired: 0, relists: 0, lists: 1 });
  });

  it('a dropped watch resumes from its version without a relist and misses nothing', async () => {
    lw.start();
    await until(() => lw.status().watching);
    f.api.dropWatches();
    f.api.createNode({ name: 'n1' });
    await until(() => events.includes('added n1'));
    f.api.dropWatches(true);
    f.api.createNode({ name: 'n2' });
    await until(() => events.includes('added n2'));
    expect(events).toEqual(['added n1', 'added n2']);
    expect(lw.status().lists).toBe(1);
    expect(lw.status().watchRestarts).toBeGreaterThanOrEqual(2);
  });

  it('while the API server is away: the cache is kept, errors counted and logged once, and it resumes', async () => {
    f.api.createNode({ name: 'n1' });
    lw.start();
    await until(() => lw.status().watching);
    await f.api.stop();
    await until(() => lw.status().errors >= 3);
    expect(lw.objects().map((n) => n.metadata?.name)).toEqual(['n1']);
    expect(lw.status().lastError).toMatch(/ECONNREFUSED/);
    expect(lw.status().failing).toBe(true);
    expect(logLines.filter((l) => String(l['msg']).includes('ECONNREFUSED'))).toHaveLength(1);
    f.api.createNode({ name: 'n2' });
    await f.api.restart();
    await until(() => events.includes('added n2'));
    // The last error is kept for status; failing says it is over.
    expect(lw.status()).toMatchObject({ failing: false, lastError: expect.stringMatching(/ECONNREFUSED/) });
    expect(lw.status().relists).toBe(0);
    expect(events).toEqual(['added n1', 'added n2']);
  });

  it('starts with the API server unreachable and syncs once it comes', async () => {
    await f.api.stop();
    f.api.createNode({ name: 'n1' });
    lw.start();
    await until(() => lw.status().errors >= 2);
    expect(lw.status().synced).toBe(false);
    await f.api.restart();
    await until(() => lw.status().synced);
    expect(events).toEqual(['added n1']);
  });

  it('a throwing handler is logged and the loop goes on', async () => {
    const { logger, lines } = recordingLogger();
    const seen: string[] = [];
    const bad = new ListWatch<V1Node>(
      {
        config: f.kube.config,
        list: () => f.kube.core.listNode(),
        clock: systemClock,
        logger,
        onEvent: (e) => {
          seen.push(describeEvent(e));
          if (e.object.metadata?.name === 'n1') throw new Error('boom');
        },
      },
      { path: '/api/v1/nodes', what: 'Nodes', backoffMinMs: 20 },
    );
    f.api.createNode({ name: 'n1' });
    bad.start();
    await until(() => bad.status().watching);
    f.api.createNode({ name: 'n2' });
    await until(() => seen.length >= 2);
    await bad.stop();
    expect(seen).toEqual(['added n1', 'added n2']);
    expect(lines.some((l) => l['level'] === 'error' && l['err'] === 'boom')).toBe(true);
  });
});

describe('ListWatch refused by the API server', () => {
  it('a wrong token: every call is refused with 401, counted, logged once, nothing cached', async () => {
    const g = await kubeFixture();
    try {
      (g.kube.config.getCurrentUser() as { token?: string }).token = 'wrong';
      const { logger, lines } = recordingLogger();
      const refused = new ListWatch<V1Node>(
        { config: g.kube.config, list: () => g.kube.core.listNode(), clock: systemClock, logger, onEvent: () => undefined },
        { path: '/api/v1/nodes', what: 'Nodes', backoffMinMs: 10, backoffMaxMs: 20 },
      );
      g.api.createNode({ name: 'n1' });
      refused.start();
      await until(() => refused.status().errors >= 3);
      await refused.stop();
      expect(refused.status()).toMatchObject({ synced: false, objects: 0, lists: 0 });
      expect(refused.status().lastError).toBe('listing Nodes: the API server answered 401');
      expect(lines.filter((l) => l['level'] === 'warn')).toHaveLength(1);
    } finally {
      await g.close();
    }
  });

  it('keep: the cache holds what keep returns, for listed and watched objects; a throw is as if the object were gone', async () => {
    type Slim = { metadata: { name?: string; resourceVersion?: string }; role: string };
    f.api.createNode({ name: 'n1', labels: { role: 'a' } });
    const seen: string[] = [];
    const { logger, lines } = recordingLogger();
    const slim = new ListWatch<Slim>(
      {
        config: f.kube.config,
        list: () => f.kube.core.listNode() as unknown as Promise<{ items: Slim[] }>,
        clock: systemClock,
        logger,
        onEvent: (e) => seen.push(`${e.type} ${e.object.metadata.name} ${e.object.role}`),
        keep: (raw) => {
          const n = raw as unknown as V1Node;
          if (n.metadata?.labels?.['role'] === 'boom') throw new Error('cannot');
          return { metadata: { name: n.metadata?.name, resourceVersion: n.metadata?.resourceVersion }, role: n.metadata?.labels?.['role'] ?? '' };
        },
      },
      { path: '/api/v1/nodes', what: 'Nodes', backoffMinMs: 20, backoffMaxMs: 100 },
    );
    try {
      slim.start();
      await until(() => slim.status().synced);
      f.api.createNode({ name: 'n2', labels: { role: 'b' } });
      f.api.patchNode('n1', { metadata: { labels: { role: 'boom' } } });
      await until(() => seen.length >= 3);
      expect(seen).toEqual(['added n1 a', 'added n2 b', 'deleted n1 a']);
      expect(slim.objects()).toEqual([{ metadata: { name: 'n2', resourceVersion: expect.any(String) }, role: 'b' }]);
      expect(slim.status().badEvents).toBe(1);
      expect(lines.some((l) => l['msg'] === 'cannot use an object of Nodes the API server sent' && l['name'] === 'n1')).toBe(true);
    } finally {
      await slim.stop();
    }
  });
});
