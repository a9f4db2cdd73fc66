/** What one variant of the sleeve suite runs on: a lab with a client and a server pod, and the tunnel's processes. */
import type { Lab, LabPod } from '../../lab/index.js';

export interface Bed {
  lab: Lab;
  client: LabPod;
  server: LabPod;
  pids: number[];
  /** Throws when the variant's traffic went anywhere but through its tunnel (a weft router's peer off the sleeve). */
  onSleeve?: () => Promise<void>;
  /** weft only: the routers' ROUTER_RX_DROPS, summed over both. */
  rxDrops?: () => Promise<Record<string, number>>;
  destroy(): Promise<void>;
}
