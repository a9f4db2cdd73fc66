/**
 * Kubernetes mode in the router: Node discovery (src/k8s) feeds the mesh its connection targets
 * (added ones dialled, removed ones no longer redialled; --peer targets stay), and a Node deleted
 * that carried a peer is forgotten here as `weft forget` forgets (without its refusal of a
 * reachable peer), then handed to the listeners of `onNodeDeleted` (IPAM blocks reclaim through
 * the API). Starting never waits for the API server: an unreachable one is retried in the
 * background while the router runs on what it knows.
 */
import type { KubernetesStatus } from '../api/types.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import { openKube, type KubeApis } from '../k8s/client.js';
import { NodeDiscovery, type DiscoveredPeer, type NodeDiscoveryInit } from '../k8s/node-discovery.js';
import type { KubernetesConfig } from './config.js';

export interface KubernetesComponents {
  clock: Clock;
  logger: Logger;
  /** The mesh's discovered targets, the whole set each time (Mesh.setDiscoveredTargets). */
  setTargets: (targets: { endpoint: string; peer: string }[]) => void;
  /** Forgets a peer whose Node was deleted (the daemon's forget path); returns what it did, for logs. */
  forget: (peer: string, nodeName: string) => string;
  /**
   * Whether the peer is reachable in the mesh now. A deleted Node's router that still runs (its
   * Node deleted before it was drained or stopped) is forgotten, and its IPAM blocks taken, only
   * once it is not: taking the blocks of a live router would hand out its pods' addresses again.
   * Default: never reachable.
   */
  reachable?: (peer: string) => boolean;
  /** The API's clients (tests give theirs); default: opened from `config.kubeconfig`. */
  kube?: KubeApis;
}

/** What discovery needs (node-discovery.ts), its Node's name taken from `config`. */
export interface KubernetesInit extends Omit<NodeDiscoveryInit, 'nodeName'> {
  config: KubernetesConfig;
}

/** How often a deleted Node's still-reachable peer is looked at again. */
export const RECHECK_MS = 2000;

export type NodeDeletedListener = (peer: string, nodeName: string) => void | Promise<void>;

export class KubernetesMode implements Startable {
  private readonly c: KubernetesComponents;
  private readonly init: KubernetesInit;
  private readonly log: Logger;
  private kube: KubeApis | undefined;
  private discovery: NodeDiscovery | undefined;
  private readonly deletedListeners = new Set<NodeDeletedListener>();
  private nodesDeleted = 0;
  /** Deleted Nodes' peers still reachable: looked at again every `RECHECK_MS`. */
  private readonly waiting = new Map<string, { node: string; timer: TimerHandle }>();

  constructor(components: KubernetesComponents, init: KubernetesInit) {
    this.c = components;
    this.init = init;
    this.log = components.logger;
  }

  /** The API's clients once started (for other Kubernetes-mode parts, e.g. IPAM blocks). */
  get apis(): KubeApis | undefined {
    return this.kube;
  }

  /**
   * Called after this router has forgotten a peer whose Node was deleted (once per deletion seen).
   * A listener's failure is logged; the others still run. Returns an unsubscribe.
   */
  onNodeDeleted(listener: NodeDeletedListener): () => void {
    this.deletedListeners.add(listener);
    return () => this.deletedListeners.delete(listener);
  }

  /** Throws ERR_KUBE_CONFIG only when the credentials cannot be loaded; an unreachable server is retried. */
  start(): void {
    this.kube = this.c.kube ?? openKube(this.init.config.kubeconfig);
    const { config, ...init } = this.init;
    const discovery = new NodeDiscovery({ kube: this.kube, clock: this.c.clock, logger: this.log }, { ...init, nodeName: config.nodeName });
    discovery.onPeers((peers) => this.onPeers(peers));
    discovery.onNodeDeleted((peer, node) => this.onDeleted(peer, node));
    this.discovery = discovery;
    discovery.start();
    this.log.info('Kubernetes mode: discovering peers from Node objects', { server: this.kube.server, node: this.init.config.nodeName });
  }

  async stop(): Promise<void> {
    for (const w of this.waiting.values()) w.timer.cancel();
    this.waiting.clear();
    await this.discovery?.stop();
    this.discovery = undefined;
  }

  status(): KubernetesStatus | undefined {
    const d = this.discovery;
    if (d === undefined) return undefined;
    const s = d.status();
    return {
      node: this.init.config.nodeName,
      namespace: this.init.config.namespace,
      server: this.kube?.server ?? '',
      synced: s.synced,
      nodesSeen: s.nodesSeen,
      peersFromNodes: s.peers.map((p) => ({ node: p.nodeName, peer: p.peer, endpoint: p.endpoint, version: p.version })),
      ownNode: s.ownNode,
      ownNodeProblem: s.ownNodeProblem,
      publishes: s.publishes,
      publishFailures: s.publishFailures,
      invalidNodes: s.invalidNodes,
      invalid: s.invalid,
      nodesDeleted: this.nodesDeleted,
      deletedButReachable: [...this.waiting].map(([peer, w]) => ({ peer, node: w.node })),
      watch: {
        watching: s.watch.watching,
        resourceVersion: s.watch.resourceVersion,
        lists: s.watch.lists,
        relists: s.watch.relists,
        watchRestarts: s.watch.watchRestarts,
        expired: s.watch.expired,
        errors: s.watch.errors,
        lastError: s.watch.lastError ?? null,
        badEvents: s.watch.badEvents,
      },
    };
  }

  /** The peers on Nodes now (the mesh's discovered targets). */
  peers(): DiscoveredPeer[] {
    return this.discovery?.peers() ?? [];
  }

  private onPeers(peers: DiscoveredPeer[]): void {
    this.c.setTargets(peers.map((p) => ({ endpoint: p.endpoint, peer: p.peer })));
  }

  private onDeleted(peer: string, node: string): void {
    const prior = this.waiting.get(peer);
    prior?.timer.cancel();
    this.waiting.delete(peer);
    if (this.discovery === undefined) return;
    // Its Node is back (the same peer on a Node again): nothing to forget.
    if (prior !== undefined && this.discovery.peers().some((p) => p.peer === peer)) {
      this.log.info('a deleted Node\'s peer is on a Node again; not forgetting it', { node, peer });
      return;
    }
    if (this.c.reachable?.(peer) === true) {
      if (prior === undefined) {
        this.log.warn('a deleted Node\'s router is still reachable: it is forgotten, and its IPAM blocks taken, once it is not (stop or drain it)', { node, peer });
      }
      this.waiting.set(peer, { node, timer: this.c.clock.setTimeout(() => this.onDeleted(peer, node), RECHECK_MS) });
      return;
    }
    this.nodesDeleted++;
    let what: string;
    try {
      what = this.c.forget(peer, node);
    } catch (err) {
      what = `not forgotten: ${describeError(err)}`;
    }
    this.log.info('forgot the peer of a deleted Node', { node, peer, result: what });
    for (const fn of this.deletedListeners) {
      try {
        const r = fn(peer, node);
        if (r instanceof Promise) r.catch((err: unknown) => this.log.error('a Node-deleted listener failed', { node, peer, err: describeError(err) }));
      } catch (err) {
        this.log.error('a Node-deleted listener failed', { node, peer, err: describeError(err) });
      }
    }
  }
}
