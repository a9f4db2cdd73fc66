/**
 * The PolicySource contract (src/policy/model.ts), one suite for every implementation: no
 * snapshot before the first full read; a snapshot with the objects as the model; onChange after a
 * change; a bad object skipped and listed with the rest kept; an object removed is gone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicySource } from '../../src/policy/model.js';
import { until } from '../k8s/helpers.js';

/** Raw objects as a user writes them (kind, metadata, spec, status). */
export type RawObject = Record<string, unknown> & { kind: 'NetworkPolicy' | 'Pod' | 'Namespace' };

export interface SourceHarness {
  source: PolicySource;
  /** Makes the source's world hold exactly these objects (the file rewritten, or API objects created and deleted). */
  set(objects: RawObject[]): Promise<void>;
  close(): Promise<void>;
}

export function policySourceSuite(name: string, make: (initial: RawObject[]) => Promise<SourceHarness>): void {
  describe(`PolicySource contract: ${name}`, () => {
    let h: SourceHarness | undefined;

    afterEach(async () => {
      await h?.source.stop();
      await h?.close();
      h = undefined;
    });

    const ns: RawObject = { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'a', labels: { team: 'a' } } };
    const pod: RawObject = { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'web', namespace: 'a', labels: { app: 'web' } }, spec: { containers: [] }, status: { podIP: '10.1.0.4' } };
    const deny: RawObject = { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', metadata: { name: 'deny', namespace: 'a' }, spec: { podSelector: {} } };
    const bad: RawObject = { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', metadata: { name: 'bad', namespace: 'a' }, spec: { podSelector: { matchExpressions: [{ key: 'x', operator: 'In' }] } } };

    it('no snapshot before start; after, the objects as the model and synced', async () => {
      h = await make([ns, pod, deny]);
      expect(h.source.snapshot()).toBeUndefined();
      await h.source.start();
      await until(() => h!.source.snapshot() !== undefined);
      const s = h.source.snapshot()!;
      expect(s.policies.map((p) => `${p.namespace}/${p.name}`)).toEqual(['a/deny']);
      expect(s.pods.map((p) => [p.name, p.ips])).toEqual([['web', ['10.1.0.4']]]);
      expect(s.namespaces.map((n) => n.labels)).toEqual([{ team: 'a', 'kubernetes.io/metadata.name': 'a' }]);
      expect(h.source.describe()).toMatchObject({ synced: true, problems: [], error: undefined });
    });

    it('onChange after a change; a bad object is skipped and listed, the rest kept; a removed one is gone', async () => {
      h = await make([ns, deny]);
      let changes = 0;
      h.source.onChange(() => changes++);
      await h.source.start();
      await until(() => h!.source.snapshot() !== undefined);
      const before = changes;
      await h.set([ns, deny, bad, pod]);
      await until(() => h!.source.snapshot()?.pods.length === 1);
      expect(changes).toBeGreaterThan(before);
      expect(h.source.snapshot()?.policies.map((p) => p.name)).toEqual(['deny']);
      const problems = h.source.describe().problems;
      expect(problems).toHaveLength(1);
      expect(problems[0]!.where).toContain('NetworkPolicy a/bad');
      expect(problems[0]!.problem).toBe('spec.podSelector.matchExpressions[0].values: must have at least one value for In');
      await h.set([ns]);
      await until(() => h!.source.snapshot()?.policies.length === 0 && h!.source.snapshot()?.pods.length === 0);
      expect(h.source.describe().problems).toEqual([]);
    });
  });
}
