/**
 * NetworkPolicies, Pods and Namespaces from the API server, for the policy engine: three
 * list-watches of every namespace (networking.k8s.io/v1 NetworkPolicies, v1 Pods, v1 Namespaces),
 * each object validated into the model as it arrives (src/policy/objects.ts) and only the model
 * kept (a Pod's labels, addresses, node and named ports, not the whole object: thousands of pods).
 * An object that does not validate is skipped, listed in `describe().problems`, counted, and
 * logged once per object and problem. The snapshot exists once all three have listed once; a
 * server that goes away leaves the last snapshot in force (the list-watches retry).
 *
 * API calls (deploy/01-rbac.yaml grants exactly these): list and watch of networkpolicies
 * (networking.k8s.io), pods and namespaces (core), cluster-wide.
 */
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { NetworkPolicy, PolicyNamespace, PolicyObjectProblem, PolicyPod, PolicySnapshot, PolicySource } from '../policy/model.js';
import { parseNamespace, parseNetworkPolicy, parsePod, type ParseResult } from '../policy/objects.js';
import type { KubeApis } from './client.js';
import { ListWatch, type CacheEvent, type ListResult, type ListWatchCounters } from './list-watch.js';

export interface KubePolicySourceComponents {
  kube: KubeApis;
  clock: Clock;
  logger: Logger;
}

export interface KubePolicySourceInit {
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Asked of the server for each watch (default 300 s). */
  timeoutSeconds?: number;
}

/** What the list-watch cache keeps of an object: its metadata and the parse result. */
interface Kept<T> {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
  value: T | undefined;
  problems: PolicyObjectProblem[];
}

/** The same model and problems (the objects come from one parser: the same keys in the same order). */
function sameKept<T>(a: Kept<T>, b: Kept<T>): boolean {
  return JSON.stringify([a.value, a.problems]) === JSON.stringify([b.value, b.problems]);
}

export interface KubePolicySourceStatus {
  networkPolicies: ListWatchCounters;
  pods: ListWatchCounters;
  namespaces: ListWatchCounters;
  /** Objects refused now. */
  skipped: number;
  /** Objects refused since start (each bad version of an object once). */
  skippedTotal: number;
  /** Changes of an object that left what policy reads of it as it was (no change for the engine). */
  unchanged: number;
}

type Kind = 'NetworkPolicy' | 'Pod' | 'Namespace';

export class KubePolicySource implements PolicySource {
  private readonly c: KubePolicySourceComponents;
  private readonly policies: ListWatch<Kept<NetworkPolicy>>;
  private readonly pods: ListWatch<Kept<PolicyPod>>;
  private readonly namespaces: ListWatch<Kept<PolicyNamespace>>;
  private readonly listeners = new Set<() => void>();
  /** Problems logged, by object ("Pod ns/name"), to log each once. */
  private readonly logged = new Map<string, string>();
  private cached: PolicySnapshot | undefined;
  private skippedTotal = 0;
  private unchanged = 0;

  constructor(components: KubePolicySourceComponents, init: KubePolicySourceInit = {}) {
    this.c = components;
    const { kube } = components;
    const common = {
      ...(init.backoffMinMs === undefined ? {} : { backoffMinMs: init.backoffMinMs }),
      ...(init.backoffMaxMs === undefined ? {} : { backoffMaxMs: init.backoffMaxMs }),
      ...(init.timeoutSeconds === undefined ? {} : { timeoutSeconds: init.timeoutSeconds }),
    };
    this.policies = this.listWatch('NetworkPolicy', () => kube.networking.listNetworkPolicyForAllNamespaces(), parseNetworkPolicy, { path: '/apis/networking.k8s.io/v1/networkpolicies', what: 'NetworkPolicies', ...common });
    this.pods = this.listWatch('Pod', () => kube.core.listPodForAllNamespaces(), parsePod, { path: '/api/v1/pods', what: 'Pods', ...common });
    this.namespaces = this.listWatch('Namespace', () => kube.core.listNamespace(), parseNamespace, { path: '/api/v1/namespaces', what: 'Namespaces', ...common });
  }

  /** Starts the three list-watches; never fails (an API server away is retried in the background). */
  start(): Promise<void> {
    this.policies.start();
    this.pods.start();
    this.namespaces.start();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    await Promise.all([this.policies.stop(), this.pods.stop(), this.namespaces.stop()]);
  }

  /** Undefined until NetworkPolicies, Pods and Namespaces have each been listed once. */
  snapshot(): PolicySnapshot | undefined {
    if (!this.synced()) return undefined;
    this.cached ??= {
      policies: values(this.policies),
      pods: values(this.pods),
      namespaces: values(this.namespaces),
    };
    return this.cached;
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  describe(): { kind: 'kubernetes'; where: string; synced: boolean; problems: PolicyObjectProblem[]; error: string | undefined } {
    const problems: PolicyObjectProblem[] = [];
    for (const lw of [this.policies, this.pods, this.namespaces] as ListWatch<Kept<unknown>>[]) {
      for (const o of lw.objects()) problems.push(...o.problems);
    }
    let error: string | undefined;
    for (const lw of [this.policies, this.pods, this.namespaces] as ListWatch<Kept<unknown>>[]) {
      const s = lw.status();
      if (s.failing) error ??= s.lastError;
    }
    return { kind: 'kubernetes', where: this.c.kube.server, synced: this.synced(), problems, error };
  }

  status(): KubePolicySourceStatus {
    const skipped = [this.policies, this.pods, this.namespaces].reduce((n, lw) => n + (lw as ListWatch<Kept<unknown>>).objects().filter((o) => o.value === undefined).length, 0);
    return { networkPolicies: this.policies.status(), pods: this.pods.status(), namespaces: this.namespaces.status(), skipped, skippedTotal: this.skippedTotal, unchanged: this.unchanged };
  }

  private synced(): boolean {
    return this.policies.status().synced && this.pods.status().synced && this.namespaces.status().synced;
  }

  private listWatch<T>(kind: Kind, list: () => Promise<ListResult<unknown>>, parse: (o: unknown, where?: string) => ParseResult<T>, init: ConstructorParameters<typeof ListWatch>[1]): ListWatch<Kept<T>> {
    return new ListWatch<Kept<T>>(
      {
        config: this.c.kube.config,
        // The cache keeps what `keep` returns: the raw items go through it before anything else.
        list: list as () => Promise<ListResult<Kept<T>>>,
        clock: this.c.clock,
        logger: this.c.logger,
        keep: (raw) => keepOf(raw as unknown, parse),
        onEvent: (e) => this.onEvent(kind, e),
        onSynced: () => this.changed(),
      },
      init,
    );
  }

  private onEvent<T>(kind: Kind, e: CacheEvent<Kept<T>>): void {
    const o = e.object;
    // Most changes of a Pod (its conditions, its containers' states) change nothing policy reads:
    // they must not cost the engine a compile.
    if (e.type === 'modified' && sameKept(e.old, o)) {
      this.unchanged++;
      return;
    }
    const id = `${kind} ${o.metadata.namespace === undefined || o.metadata.namespace === '' ? '' : `${o.metadata.namespace}/`}${o.metadata.name ?? ''}`;
    if (e.type === 'deleted' || o.problems.length === 0) {
      if (this.logged.delete(id) && e.type !== 'deleted') this.c.logger.info(`${id} is valid again and used`);
    } else {
      const text = o.problems.map((p) => p.problem).join('; ');
      if (this.logged.get(id) !== text) {
        this.skippedTotal++;
        this.logged.set(id, text);
        this.c.logger.warn(`skipping ${id}: ${text}`);
      }
    }
    this.changed();
  }

  private changed(): void {
    this.cached = undefined;
    if (!this.synced()) return;
    for (const fn of this.listeners) {
      try {
        fn();
      } catch (err) {
        this.c.logger.error('a listener of the policy source failed', { err: describeError(err) });
      }
    }
  }
}

function keepOf<T>(raw: unknown, parse: (o: unknown, where?: string) => ParseResult<T>): Kept<T> {
  const meta = (raw as { metadata?: { name?: unknown; namespace?: unknown; resourceVersion?: unknown } } | undefined)?.metadata;
  const metadata: Kept<T>['metadata'] = {};
  if (typeof meta?.name === 'string') metadata.name = meta.name;
  if (typeof meta?.namespace === 'string') metadata.namespace = meta.namespace;
  if (typeof meta?.resourceVersion === 'string') metadata.resourceVersion = meta.resourceVersion;
  const r = parse(raw);
  return 'ok' in r ? { metadata, value: r.ok, problems: [] } : { metadata, value: undefined, problems: r.problems };
}

function values<T>(lw: ListWatch<Kept<T>>): T[] {
  const out: T[] = [];
  for (const o of lw.objects()) if (o.value !== undefined) out.push(o.value);
  return out;
}
