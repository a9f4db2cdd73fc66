/**
 * Node discovery: this router publishes who it is on its own Node (peer name, public key,
 * endpoint, version: merge-patched, retried until it holds, and again whenever someone changes or
 * removes them), and learns the other routers from theirs. A Node deleted that carried a peer is
 * announced once, so the daemon forgets it everywhere without a manual step.
 *
 * A peer is another Node with a valid `weft.dev/peer`: 16 hex digits matching the public key
 * (`weft.dev/public-key`, base64 of 32 bytes) and an endpoint to dial (`weft.dev/public-endpoint`
 * set by an operator for a node behind NAT, else `weft.dev/endpoint`). Anything else on a Node is
 * ignored, logged once per Node and problem, and counted. A peer of another version is a peer.
 */
import type { V1Node, V1NodeAddress } from '@kubernetes/client-node';
import { clientNode } from './client-node.js';
import { compareText } from '../core/compare.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { isPeerName, peerNameFromPublicKey } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { formatEndpoint, parseEndpoint } from '../core/net.js';
import { describeKubeError, kubeStatus, type KubeApis } from './client.js';
import { ListWatch, type CacheEvent, type ListWatchCounters } from './list-watch.js';
import { NODE_ANNOTATIONS, PUBLIC_ENDPOINT_ANNOTATION } from './names.js';

export interface DiscoveredPeer {
  nodeName: string;
  /** Peer name (16 hex digits). */
  peer: string;
  /** Where to dial it: "addr:port" or "[v6]:port". */
  endpoint: string;
  /** weft.dev/version as published ('' when absent). */
  version: string;
}

/** Why this router's own Node does not carry its annotations ('' when it does). */
export type OwnNodeState = 'unknown' | 'published' | 'publishing' | 'missing' | 'deleted' | 'no-endpoint';

export interface NodeDiscoveryStatus {
  node: string;
  synced: boolean;
  nodesSeen: number;
  peers: DiscoveredPeer[];
  ownNode: OwnNodeState;
  /** What is wrong with this router's own Node, for status ("" when nothing). */
  ownNodeProblem: string;
  /** Annotation writes that succeeded. */
  publishes: number;
  publishFailures: number;
  /** Nodes whose weft annotations were refused (counted once per Node and problem). */
  invalidNodes: number;
  /** The Nodes refused now, with why. */
  invalid: { node: string; problem: string }[];
  watch: ListWatchCounters;
}

export interface NodeDiscoveryComponents {
  kube: KubeApis;
  clock: Clock;
  logger: Logger;
}

export interface NodeDiscoveryInit {
  /** This router's Node. */
  nodeName: string;
  /** This router's peer name and public key (32 bytes). */
  peerName: string;
  publicKey: Uint8Array;
  /** The first --advertise endpoint; undefined: the Node's InternalIP with `port`. */
  advertise: string | undefined;
  /** This router's mesh port (for the InternalIP endpoint, and a public endpoint without a port). */
  port: number;
  /** weft's version string. */
  version: string;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

type Listener<A extends unknown[]> = (...args: A) => void;

export class NodeDiscovery {
  private readonly c: NodeDiscoveryComponents;
  private readonly init: NodeDiscoveryInit;
  private readonly log: Logger;
  private readonly nodes: ListWatch<V1Node>;
  private readonly publicKeyB64: string;
  private readonly peerByNode = new Map<string, DiscoveredPeer>();
  private readonly problems = new Map<string, string>();
  private readonly versionsNoted = new Map<string, string>();
  private readonly peerListeners = new Set<Listener<[DiscoveredPeer[]]>>();
  private readonly deleteListeners = new Set<Listener<[string, string]>>();
  private lastPeersKey = '';
  private ownNode: OwnNodeState = 'unknown';
  private ownNodeProblem = '';
  private publishes = 0;
  private publishFailures = 0;
  private invalidNodes = 0;
  private inFlight = false;
  private retry: TimerHandle | undefined;
  private retryMs: number;
  private running = false;

  constructor(components: NodeDiscoveryComponents, init: NodeDiscoveryInit) {
    this.c = components;
    this.init = init;
    this.log = components.logger;
    this.publicKeyB64 = Buffer.from(init.publicKey).toString('base64');
    this.retryMs = init.backoffMinMs ?? 1000;
    const kube = components.kube;
    this.nodes = new ListWatch<V1Node>(
      {
        config: kube.config,
        list: () => kube.core.listNode(),
        clock: components.clock,
        logger: components.logger,
        onEvent: (e) => this.onNodeEvent(e),
        onSynced: () => this.afterSync(),
      },
      { path: '/api/v1/nodes', what: 'Nodes', ...(init.backoffMinMs === undefined ? {} : { backoffMinMs: init.backoffMinMs }), ...(init.backoffMaxMs === undefined ? {} : { backoffMaxMs: init.backoffMaxMs }) },
    );
  }

  /** Never fails: an API server that is away is retried in the background. */
  start(): void {
    this.running = true;
    this.nodes.start();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.retry?.cancel();
    this.retry = undefined;
    await this.nodes.stop();
  }

  /** Called with every peer (other Nodes) each time the set changes; returns an unsubscribe. */
  onPeers(fn: Listener<[DiscoveredPeer[]]>): () => void {
    this.peerListeners.add(fn);
    return () => this.peerListeners.delete(fn);
  }

  /** Called once when a Node that carried a peer is gone (deleted, or absent from a relist). */
  onNodeDeleted(fn: Listener<[string, string]>): () => void {
    this.deleteListeners.add(fn);
    return () => this.deleteListeners.delete(fn);
  }

  peers(): DiscoveredPeer[] {
    return [...this.peerByNode.values()].sort((a, b) => compareText(a.nodeName, b.nodeName));
  }

  status(): NodeDiscoveryStatus {
    const watch = this.nodes.status();
    return {
      node: this.init.nodeName,
      synced: watch.synced,
      nodesSeen: watch.objects,
      peers: this.peers(),
      ownNode: this.ownNode,
      ownNodeProblem: this.ownNodeProblem,
      publishes: this.publishes,
      publishFailures: this.publishFailures,
      invalidNodes: this.invalidNodes,
      invalid: [...this.problems].map(([node, problem]) => ({ node, problem })),
      watch,
    };
  }

  private onNodeEvent(e: CacheEvent<V1Node>): void {
    const name = e.object.metadata?.name ?? '';
    if (name === this.init.nodeName) {
      if (e.type === 'deleted') {
        this.setOwn('deleted', `this router's Node ${name} was deleted; the router keeps running on what it knows`);
        this.log.error('this router\'s own Node was deleted; discovery goes on, the annotations come back if the Node does', { node: name });
      } else {
        this.reconcile();
      }
      return;
    }
    if (e.type === 'deleted') {
      this.problems.delete(name);
      const gone = this.peerByNode.get(name);
      this.peerByNode.delete(name);
      this.emitPeers();
      if (gone !== undefined) {
        // The same peer still on another Node (it moved, or a Node copied its annotations): a
        // live router must not be forgotten, nor its IPAM blocks taken.
        const elsewhere = [...this.peerByNode.values()].find((p) => p.peer === gone.peer);
        if (elsewhere !== undefined) {
          this.log.warn('a deleted Node carried a peer that another Node still carries; not forgetting it', { node: name, peer: gone.peer, stillOn: elsewhere.nodeName });
          return;
        }
        this.log.info('a Node that carried a peer was deleted', { node: name, peer: gone.peer });
        for (const fn of this.deleteListeners) this.call(() => fn(gone.peer, name));
      }
      return;
    }
    this.readPeer(e.object);
    this.emitPeers();
  }

  private afterSync(): void {
    if (this.nodes.get(this.init.nodeName) === undefined) {
      if (this.ownNode !== 'missing') this.log.error('this router\'s Node does not exist in the API server; check --node-name', { node: this.init.nodeName });
      this.setOwn('missing', `no Node named ${this.init.nodeName} in the API server (check --node-name)`);
    }
    this.emitPeers();
  }

  /** Validates one other Node's annotations and updates the peer it carries. */
  private readPeer(node: V1Node): void {
    const name = node.metadata?.name ?? '';
    const a = node.metadata?.annotations ?? {};
    const peer = a[NODE_ANNOTATIONS.peer];
    if (peer === undefined) {
      // No router there (yet): not a peer, not a problem.
      this.peerByNode.delete(name);
      this.problems.delete(name);
      return;
    }
    const result = this.validate(name, a);
    if (typeof result === 'string') {
      this.peerByNode.delete(name);
      if (this.problems.get(name) !== result) {
        this.problems.set(name, result);
        this.invalidNodes++;
        this.log.warn('ignoring the weft annotations of a Node', { node: name, problem: result });
      }
      return;
    }
    this.problems.delete(name);
    this.peerByNode.set(name, result);
    this.noteVersion(name, result.version);
  }

  private validate(node: string, a: Record<string, string>): DiscoveredPeer | string {
    const peer = a[NODE_ANNOTATIONS.peer] ?? '';
    if (!isPeerName(peer)) return `${NODE_ANNOTATIONS.peer} ${JSON.stringify(peer)} is not a peer name (16 hex digits)`;
    if (peer === this.init.peerName) return `${NODE_ANNOTATIONS.peer} is this router's own peer name (a copied identity?)`;
    const keyText = a[NODE_ANNOTATIONS.publicKey] ?? '';
    const key = Buffer.from(keyText, 'base64');
    if (key.length !== 32 || key.toString('base64') !== keyText) return `${NODE_ANNOTATIONS.publicKey} is not the base64 of 32 bytes`;
    if (peerNameFromPublicKey(key) !== peer) return `${NODE_ANNOTATIONS.peer} ${peer} does not match ${NODE_ANNOTATIONS.publicKey} (its peer name is ${peerNameFromPublicKey(key)})`;
    const published = a[NODE_ANNOTATIONS.endpoint];
    const own = published === undefined ? undefined : parseEndpoint(published);
    if (typeof own === 'string') return `${NODE_ANNOTATIONS.endpoint}: ${own}`;
    const publicText = a[PUBLIC_ENDPOINT_ANNOTATION];
    let endpoint = own;
    if (publicText !== undefined) {
      const pub = parseEndpoint(publicText, own?.port ?? this.init.port);
      if (typeof pub === 'string') return `${PUBLIC_ENDPOINT_ANNOTATION}: ${pub}`;
      endpoint = pub;
    }
    if (endpoint === undefined) return `no ${NODE_ANNOTATIONS.endpoint} or ${PUBLIC_ENDPOINT_ANNOTATION} to dial`;
    return { nodeName: node, peer, endpoint: formatEndpoint(endpoint), version: a[NODE_ANNOTATIONS.version] ?? '' };
  }

  private noteVersion(node: string, version: string): void {
    if (this.versionsNoted.get(node) === version) return;
    this.versionsNoted.set(node, version);
    const ours = minorOf(this.init.version);
    const theirs = minorOf(version);
    if (ours !== theirs) this.log.info('a peer runs another minor version; it stays a peer', { node, version: version === '' ? '(none)' : version, ours: this.init.version });
  }

  private emitPeers(): void {
    const peers = this.peers();
    const key = JSON.stringify(peers);
    if (key === this.lastPeersKey) return;
    this.lastPeersKey = key;
    for (const fn of this.peerListeners) this.call(() => fn(peers));
  }

  /** The annotations this router wants on its Node; a string says why it cannot have them. */
  private wanted(node: V1Node): Record<string, string> | string {
    let endpoint = this.init.advertise;
    if (endpoint === undefined) {
      const ip = (node.status?.addresses ?? []).find((x: V1NodeAddress) => x.type === 'InternalIP')?.address;
      if (ip === undefined) return `Node ${this.init.nodeName} has no InternalIP and the router has no --advertise: other routers cannot dial it`;
      endpoint = formatEndpoint({ address: ip, port: this.init.port });
    }
    return {
      [NODE_ANNOTATIONS.peer]: this.init.peerName,
      [NODE_ANNOTATIONS.publicKey]: this.publicKeyB64,
      [NODE_ANNOTATIONS.endpoint]: endpoint,
      [NODE_ANNOTATIONS.version]: this.init.version,
    };
  }

  /** Patches our annotations when the cached Node lacks them (one write at a time; retried on failure). */
  private reconcile(): void {
    if (!this.running || this.inFlight || this.retry !== undefined) return;
    const node = this.nodes.get(this.init.nodeName);
    if (node === undefined) return;
    const want = this.wanted(node);
    if (typeof want === 'string') {
      if (this.ownNode !== 'no-endpoint') this.log.error('cannot publish this router on its Node', { node: this.init.nodeName, problem: want });
      this.setOwn('no-endpoint', want);
      return;
    }
    const have = node.metadata?.annotations ?? {};
    if (Object.entries(want).every(([k, v]) => have[k] === v)) {
      if (this.ownNode !== 'published') this.log.info('this router is published on its Node', { node: this.init.nodeName, endpoint: want[NODE_ANNOTATIONS.endpoint] });
      this.setOwn('published', '');
      this.retryMs = this.init.backoffMinMs ?? 1000;
      return;
    }
    if (this.ownNode === 'published') this.log.warn('the weft annotations on this router\'s Node were changed or removed; writing them again', { node: this.init.nodeName });
    this.setOwn('publishing', '');
    this.inFlight = true;
    this.c.kube.core
      .patchNode({ name: this.init.nodeName, body: { metadata: { annotations: want } } }, clientNode().setHeaderOptions('Content-Type', clientNode().PatchStrategy.MergePatch))
      .then(
        (patched) => {
          this.inFlight = false;
          this.publishes++;
          // The watch brings the same change; the answer settles it sooner.
          const a = patched.metadata?.annotations ?? {};
          if (Object.entries(want).every(([k, v]) => a[k] === v)) {
            if (this.ownNode !== 'published') this.log.info('this router is published on its Node', { node: this.init.nodeName, endpoint: want[NODE_ANNOTATIONS.endpoint] });
            this.setOwn('published', '');
            this.retryMs = this.init.backoffMinMs ?? 1000;
          }
        },
        (err: unknown) => {
          this.inFlight = false;
          this.publishFailures++;
          const why = describeKubeError(`patching the annotations of Node ${this.init.nodeName}`, err);
          if (kubeStatus(err) === 404) {
            this.setOwn('missing', why);
            return; // the watch tells when it exists again
          }
          this.ownNodeProblem = why;
          this.log.warn('cannot publish this router on its Node; retrying', { err: why, retryInMs: this.retryMs });
          const ms = this.retryMs;
          this.retryMs = Math.min(this.retryMs * 2, this.init.backoffMaxMs ?? 30_000);
          this.retry = this.c.clock.setTimeout(() => {
            this.retry = undefined;
            this.reconcile();
          }, ms);
        },
      );
  }

  private setOwn(state: OwnNodeState, problem: string): void {
    this.ownNode = state;
    this.ownNodeProblem = problem;
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('a discovery listener failed', { err: err instanceof Error ? err.message : String(err) });
    }
  }
}

function minorOf(version: string): string {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  return m === null ? version : `${m[1]}.${m[2]}`;
}
