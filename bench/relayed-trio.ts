/**
 * The three-node lab of the relay scripts (relay-ratio.ts, relay-profile.ts): UDP between n1 and
 * n3 is blocked, so the mesh stays up over TCP and n1's traffic to n3 is relayed by n2, while
 * n1 reaches n2 directly. Resolves once the mesh is up and n1 sees those paths.
 */
import { WeftCluster } from '../lab/weft-cluster.js';

export async function startRelayedTrio(): Promise<WeftCluster> {
  const c = await WeftCluster.start({
    nodes: 3,
    extraArgs: ['--log-level', 'warn'],
    beforeRouters: async (lab) => {
      await lab.blockUdpBetween(lab.nodes[0]!, lab.nodes[2]!);
    },
  });
  try {
    await c.waitEstablished(45_000);
    await c.expectPaths(0, { n2: 'direct', n3: 'relay' }, 'paths from n1');
  } catch (err) {
    await c.destroy();
    throw err;
  }
  return c;
}
