/** The fake API server on loopback and a client-node configuration for it, for src/k8s tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKubeApi } from '../../lab/kube-api.js';
import { openKube, type KubeApis } from '../../src/k8s/client.js';

export interface KubeFixture {
  api: FakeKubeApi;
  kube: KubeApis;
  kubeconfig: string;
  close: () => Promise<void>;
}

export async function kubeFixture(init: { bookmarkMs?: number } = {}): Promise<KubeFixture> {
  const api = await FakeKubeApi.start({ bookmarkMs: init.bookmarkMs ?? 50 });
  const dir = mkdtempSync(join(tmpdir(), 'weft-k8s-'));
  const kubeconfig = join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig);
  return {
    api,
    kube: openKube(kubeconfig),
    kubeconfig,
    close: async () => {
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `pred` holds (the test's timeout bounds it). */
export async function until(pred: () => boolean, stepMs = 10): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, stepMs));
}
