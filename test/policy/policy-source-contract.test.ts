/** The PolicySource contract suite run against both sources: the policy file and the API server. */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { KubePolicySource } from '../../src/k8s/policy-source.js';
import { FilePolicySource } from '../../src/policy/file-source.js';
import type { KubeKind } from '../../lab/kube-store.js';
import { kubeFixture } from '../k8s/helpers.js';
import { policySourceSuite, type RawObject } from './policy-source-suite.js';

policySourceSuite('FilePolicySource', async (initial) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-policy-contract-'));
  const file = join(dir, 'policies.yaml');
  // JSON documents are YAML documents.
  const write = (objects: RawObject[]): void => {
    writeFileSync(`${file}.tmp`, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
    renameSync(`${file}.tmp`, file);
  };
  write(initial);
  return {
    source: new FilePolicySource({ clock: systemClock, logger: silentLogger }, { path: file, pollMs: 50, settleMs: 5 }),
    set: (objects) => Promise.resolve(write(objects)),
    close: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
});

const KINDS: Record<RawObject['kind'], KubeKind> = { NetworkPolicy: 'networkpolicies', Pod: 'pods', Namespace: 'namespaces' };

policySourceSuite('KubePolicySource', async (initial) => {
  const f = await kubeFixture({ bookmarkMs: 30 });
  const present = new Map<string, RawObject>();
  const keyOf = (o: RawObject): string => {
    const m = o['metadata'] as { name: string; namespace?: string };
    return `${o.kind} ${m.namespace ?? ''} ${m.name}`;
  };
  const set = (objects: RawObject[]): Promise<void> => {
    const want = new Map(objects.map((o) => [keyOf(o), o]));
    for (const [k, o] of present) {
      if (want.has(k)) continue;
      const m = o['metadata'] as { name: string; namespace?: string };
      f.api.deleteObject(KINDS[o.kind], m.name, m.namespace);
      present.delete(k);
    }
    for (const [k, o] of want) {
      if (present.has(k)) continue;
      f.api.createObject(KINDS[o.kind], o);
      present.set(k, o);
    }
    return Promise.resolve();
  };
  await set(initial);
  return {
    source: new KubePolicySource({ kube: f.kube, clock: systemClock, logger: silentLogger }, { backoffMinMs: 20, backoffMaxMs: 100 }),
    set,
    close: () => f.close(),
  };
});
