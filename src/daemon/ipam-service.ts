/**
 * The daemon's side of the cluster-wide IPAM (gossip/ipam): the Ipam on the mesh's "ipam"
 * channel, its state file in the state directory, the local API routes the CNI plugin and
 * `weft ipam` use, and the replay of releases the plugin journaled while the router was down
 * (src/core/release-journal.ts). In Kubernetes mode (`ownership: 'kubernetes'`) there is no
 * channel: the blocks are Leases in the API server (src/k8s/blocks.ts), and `reclaim` takes
 * over a departed router's blocks (its Node deleted, or `weft forget`).
 *
 *   POST /v1/ipam/allocate     { containerId, ifName, network?, timeoutMs? } → { addresses: [{ address, prefixLength, family }], existing? }
 *   POST /v1/ipam/release      { containerId, ifName?, network?, before? }   → { released: [address], skipped? }
 *   GET  /v1/ipam/allocations                            → { allocations: [...] }
 *   GET  /v1/ipam/status                                 → IpamStatus
 *
 * Errors (their statuses: src/api/errors.ts): 400 ERR_IPAM_BAD_REQUEST, 503 ERR_IPAM_NOT_READY,
 * 507 ERR_IPAM_EXHAUSTED. With IPAM off the same routes answer 503 ERR_IPAM_NOT_READY.
 */
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { ReleaseJournal } from '../api/release-journal.js';
import type { Startable } from '../core/startable.js';
import type { GossipChannel } from '../mesh/gossip-channel.js';
import { IPAM_CHANNEL } from '../ipam/ring-codec.js';
import { Ipam } from '../ipam/ipam.js';
import { ringWriter } from '../ipam/ring-signing.js';
import { FileIpamStore } from '../ipam/state-file.js';
import { atomicWriteFile } from '../platform/linux/atomic-file.js';
import type { Identity } from '../mesh/identity.js';
import type { Mesh } from '../mesh/mesh.js';
import type { Routes } from '../mesh/routes.js';
import { ApiError } from '../api/errors.js';
import type { ApiServer } from './api-server.js';
import type { IpamConfig, KubernetesConfig } from './config.js';
import { openKube, type KubeApis } from '../k8s/client.js';
import { LeaseBlocks, coordinationLeases } from '../k8s/blocks.js';
import type { BlockOwnership, ReclaimResult } from '../ipam/ownership.js';
import { WeftError } from '../core/errors.js';

/** With IPAM off (--ipam-range none), its routes answer 503 ERR_IPAM_NOT_READY, as before it is ready (not 404). */
export function ipamOffRoutes(api: ApiServer): void {
  const off = (): never => {
    throw new ApiError('ERR_IPAM_NOT_READY', 'IPAM is off on this router (--ipam-range none)');
  };
  api.route('POST', '/v1/ipam/allocate', off);
  api.route('POST', '/v1/ipam/release', off);
  api.route('GET', '/v1/ipam/allocations', off);
  api.route('GET', '/v1/ipam/status', off);
}

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

/** A field that may be absent (null counts as absent). */
function optional(body: unknown, name: string): unknown {
  const v = field(body, name);
  return v === null ? undefined : v;
}

export class IpamService implements Startable {
  readonly ipam: Ipam;
  readonly journal: ReleaseJournal;
  /** Kubernetes mode: the blocks' Leases (undefined: the ring, on the channel). */
  readonly blocks: LeaseBlocks | undefined;
  private readonly channel: GossipChannel | undefined;
  private readonly clock: Clock;
  private readonly log: Logger;
  private timer: TimerHandle | undefined = undefined;
  private replaying = false;
  private readonly reportedUnreadable = new Set<string>();

  constructor(
    /** `kube`: the API server's client (Kubernetes mode; opened from `init.kubernetes` when not given). */
    components: { mesh: Mesh; routes: Routes; clock: Clock; logger: Logger; identity: Identity; kube?: KubeApis },
    init: { config: IpamConfig; stateDir: string; clusterId: string; gossipIntervalMs?: number; kubernetes?: KubernetesConfig | undefined },
  ) {
    const { mesh, routes, clock, logger } = components;
    this.clock = clock;
    this.log = logger;
    // Ties the state file to this cluster (cluster-secrets.ts: pinned, from the secret at first use).
    const clusterId = init.clusterId;
    let ownership: BlockOwnership | undefined;
    if (init.config.ownership === 'kubernetes') {
      const k = init.kubernetes;
      if (k === undefined) throw new WeftError('ERR_CONFIG_INVALID', 'IPAM ownership through the API server needs Kubernetes mode (--kubernetes)');
      const kube = components.kube ?? openKube(k.kubeconfig);
      this.blocks = new LeaseBlocks(
        { leases: coordinationLeases(kube.coordination), clock, log: logger },
        { self: components.identity.name, nodeName: k.nodeName, namespace: k.namespace, ranges: init.config.ranges, server: kube.server },
      );
      ownership = this.blocks;
    } else this.blocks = undefined;
    this.ipam = new Ipam(
      {
        clock,
        transport: mesh,
        routes,
        store: new FileIpamStore(join(init.stateDir, 'ipam.state'), { write: atomicWriteFile }),
        log: logger,
        writer: ringWriter(components.identity),
        ...(ownership === undefined ? {} : { ownership }),
      },
      { self: components.identity.name, ranges: init.config.ranges, init: init.config.init, quarantineMs: init.config.quarantineMs, clusterId },
    );
    // Kubernetes mode: nothing of IPAM goes over the mesh.
    this.channel = ownership === undefined ? mesh.newChannel(IPAM_CHANNEL, this.ipam, { intervalMs: init.gossipIntervalMs ?? 30_000 }) : undefined;
    this.journal = new ReleaseJournal(join(init.stateDir, 'pending-releases'));
  }

  routes(api: ApiServer): void {
    api.route('POST', '/v1/ipam/allocate', (body) => {
      const network = optional(body, 'network');
      const timeoutMs = optional(body, 'timeoutMs');
      return this.ipam.allocate({
        containerId: field(body, 'containerId') as string,
        ifName: field(body, 'ifName') as string,
        ...(network === undefined ? {} : { network: network as string }),
        ...(timeoutMs === undefined ? {} : { timeoutMs: timeoutMs as number }),
      });
    });
    api.route('POST', '/v1/ipam/release', (body) => {
      const ifName = optional(body, 'ifName');
      const network = optional(body, 'network');
      const before = optional(body, 'before');
      const cond = network === undefined && before === undefined ? undefined : { ...(network === undefined ? {} : { network: network as string }), ...(before === undefined ? {} : { before: before as number }) };
      return this.ipam.release(field(body, 'containerId') as string, ifName as string | undefined, cond);
    });
    api.route('GET', '/v1/ipam/allocations', () => ({ allocations: this.ipam.list() }));
    api.route('GET', '/v1/ipam/status', () => this.ipam.status());
  }

  /**
   * Kubernetes mode: takes over the blocks of a router that left (its Node was deleted; the
   * discovery's hook calls this). Exactly one router gets each block.
   */
  reclaim(peer: string): Promise<ReclaimResult> {
    return this.ipam.reclaim(peer);
  }

  async start(): Promise<void> {
    await this.blocks?.start();
    try {
      await this.ipam.start();
    } catch (err) {
      await this.blocks?.stop();
      throw err;
    }
    this.channel?.start();
    await this.replay();
    this.timer = this.clock.setInterval(() => void this.replay(), 5000);
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    this.channel?.stop();
    await this.ipam.stop();
    await this.blocks?.stop();
  }

  /** Releases the CNI plugin journaled while the router was unreachable; each entry goes once done. */
  private async replay(): Promise<void> {
    if (this.replaying) return;
    this.replaying = true;
    try {
      const pending = this.journal.pending();
      for (const file of this.journal.unreadable) {
        if (this.reportedUnreadable.has(file)) continue;
        this.reportedUnreadable.add(file);
        this.log.warn('a journaled release cannot be read; it is left in place for a human to check', { file });
      }
      for (const entry of pending) {
        try {
          // Only what the DEL meant: not an allocation a later ADD of the same attachment made,
          // reused or is making (the router may only have been stopped while the DEL journaled).
          const r = await this.ipam.release(entry.containerId, entry.ifName, { before: entry.at });
          // An ADD still adding it: it confirms (then it is newer) or its lease runs out; look again then.
          if (r.skipped?.some((x) => x.reason === 'adding') === true) continue;
          this.journal.done(entry);
          this.log.info('replayed a journaled release', { containerId: entry.containerId, ifName: entry.ifName, released: r.released, ...(r.skipped === undefined ? {} : { skipped: r.skipped }) });
        } catch (err) {
          this.log.warn('cannot replay a journaled release yet', { containerId: entry.containerId, err: describeError(err) });
          break;
        }
      }
    } finally {
      this.replaying = false;
    }
  }
}
