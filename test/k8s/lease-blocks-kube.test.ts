/** LeaseBlocks against the fake API server (lab/kube-api.ts) through the real @kubernetes/client-node. */
import type { V1Lease } from '@kubernetes/client-node';
import { coordinationLeases } from '../../src/k8s/blocks.js';
import { kubeStatus } from '../../src/k8s/client.js';
import { kubeFixture } from './helpers.js';
import { leaseBlocksSuite } from './lease-blocks-suite.js';

leaseBlocksSuite('LeaseBlocks (fake API server, client-node)', async () => {
  const f = await kubeFixture();
  const api = f.kube.coordination;
  const get = async (namespace: string, name: string): Promise<V1Lease | undefined> => {
    try {
      return await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (kubeStatus(err) === 404) return undefined;
      throw err;
    }
  };
  return {
    leases: coordinationLeases(api),
    put: async (namespace, lease) => {
      const cur = await get(namespace, lease.metadata!.name!);
      if (cur === undefined) await api.createNamespacedLease({ namespace, body: lease });
      else await api.replaceNamespacedLease({ name: lease.metadata!.name!, namespace, body: { ...lease, metadata: { ...lease.metadata, resourceVersion: cur.metadata!.resourceVersion! } } });
    },
    get,
    remove: async (namespace, name) => void (await api.deleteNamespacedLease({ name, namespace })),
    setDown: async (down) => (down ? f.api.stop() : f.api.restart()),
    close: f.close,
  };
});
