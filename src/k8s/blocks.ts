/**
 * IPAM ownership through the API server (Kubernetes mode): each range is cut into blocks (/26,
 * /122, or the range itself when smaller; `BLOCK_PREFIX`), and a router holds a block when the
 * block's Lease (`leaseName`, in the configured namespace, labelled `LEASE_LABELS`) names its peer
 * in `spec.holderIdentity`. Leases never expire by time.
 *
 *   claim    create the Lease of a free block; 409 AlreadyExists: another router got it first,
 *            try another (a claim of one given block reports the holder instead)
 *   reclaim  replace each Lease held by a router that left, with the resourceVersion read; 409
 *            Conflict: another router took it over first. Exactly one writer wins each block.
 *   follow   list every weft Lease (label selector) at start and every `relistMs`: another
 *            router's takeover of a block held here is seen there; the block stops being
 *            allocated from and is reported as a conflict
 *
 * Calls are made one at a time (a list never races a write of this router), each with a time
 * limit. With the API server away the blocks held stay held (the Ipam allocates from them) and a
 * claim fails with the reason; readiness needs one successful list. A Lease carrying the weft
 * label with a bad name, CIDR or holder is ignored, counted and logged once.
 *
 * Implements src/ipam/ownership.ts's `BlockOwnership` (structurally: src/k8s does not import src/ipam;
 * the daemon joins them).
 */
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { clientNode } from './client-node.js';
import type { BlocksStatus, SpaceBlocksStatus } from '../api/types.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { WeftError, describeError } from '../core/errors.js';
import { isPeerName } from '../core/ids.js';
import { blockCidr, blockRange, freeBlock, parseBlockLease, type BlockRange, type Known } from './block-range.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { describeKubeError, kubeStatus } from './client.js';
import { LEASE_ANNOTATIONS, LEASE_COMPONENT, LEASE_LABELS, leaseName, rangeLabel } from './names.js';

/** The Lease calls LeaseBlocks makes (`coordinationLeases` wraps the client's; tests may fake them). Failures reject with the client's errors (`kubeStatus` reads them). */
export interface LeaseApi {
  list(namespace: string, labelSelector: string): Promise<V1Lease[]>;
  create(namespace: string, lease: V1Lease): Promise<V1Lease>;
  replace(namespace: string, name: string, lease: V1Lease): Promise<V1Lease>;
}

export function coordinationLeases(api: CoordinationV1Api): LeaseApi {
  return {
    list: async (namespace, labelSelector) => (await api.listNamespacedLease({ namespace, labelSelector })).items,
    create: (namespace, body) => api.createNamespacedLease({ namespace, body }),
    replace: (namespace, name, body) => api.replaceNamespacedLease({ name, namespace, body }),
  };
}

export interface LeaseBlocksInit {
  /** This router's peer name: the holder it writes. */
  self: string;
  /** Its Node, written on the Leases it takes (for people). */
  nodeName: string;
  namespace: string;
  /** The IPAM ranges, normalized, in the configured order. */
  ranges: readonly string[];
  /** For status and logs (the API server's URL). */
  server?: string;
  /** How often every Lease is listed again. Default 10 s. */
  relistMs?: number;
  /** The time limit of one call to the API server. Default 10 s. */
  callTimeoutMs?: number;
}


/** A claim tries at most this many free blocks in a row before it gives up for now. */
const CLAIM_TRIES = 8;
/** A Lease that covers more of this router's blocks than this is not mapped block by block. */
const MAX_COVERED = 4096n;

export class LeaseBlocks {
  readonly ranges: readonly string[];
  private readonly api: LeaseApi;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly self: string;
  private readonly nodeName: string;
  private readonly namespace: string;
  private readonly server: string;
  private readonly relistMs: number;
  private readonly callTimeoutMs: number;
  private readonly blocks: BlockRange[];
  private readonly listeners = new Set<() => void>();
  private synced = false;
  private lastSyncAt: number | undefined = undefined;
  private lastError: string | undefined = undefined;
  private readonly counters: BlocksStatus['counters'] = { claimed: 0, claimRaces: 0, reclaimed: 0, reclaimRaces: 0, lost: 0, failures: 0, ignored: 0 };
  /** Ignored Leases already counted (name and resourceVersion). */
  private readonly ignoredSeen = new Set<string>();
  /** The chain every call to the API server runs on, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private timer: TimerHandle | undefined = undefined;
  private running = false;

  constructor(components: { leases: LeaseApi; clock: Clock; log?: Logger }, init: LeaseBlocksInit) {
    this.api = components.leases;
    this.clock = components.clock;
    this.log = (components.log ?? silentLogger).child('blocks');
    if (!isPeerName(init.self)) throw new WeftError('ERR_CONFIG_INVALID', `IPAM blocks: ${JSON.stringify(init.self)} is not a peer name`);
    this.self = init.self;
    this.nodeName = init.nodeName;
    this.namespace = init.namespace;
    this.server = init.server ?? 'the API server';
    this.relistMs = init.relistMs ?? 10_000;
    this.callTimeoutMs = init.callTimeoutMs ?? 10_000;
    this.blocks = init.ranges.map((r) => blockRange(r, init.self));
    this.ranges = this.blocks.map((b) => b.cidr);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.timer = this.clock.setInterval(() => void this.refresh(), this.relistMs);
    // Not awaited: the router starts with the API server away, and is ready once a list succeeds.
    void this.refresh();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    await this.queue.catch(() => undefined);
  }

  ready(): { ok: boolean; reason?: string } {
    if (this.synced) return { ok: true };
    return { ok: false, reason: this.lastError === undefined ? `listing the IPAM block Leases in namespace ${this.namespace}` : `cannot list the IPAM block Leases: ${this.lastError}` };
  }

  owned(rangeIndex: number): { start: bigint; end: bigint; reclaimed: boolean }[] {
    const b = this.blocks[rangeIndex];
    if (b === undefined) return [];
    return [...b.mine].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([i, m]) => ({ start: i * b.blockSize, end: (i + 1n) * b.blockSize, reclaimed: m.reclaimed }));
  }

  holderOf(rangeIndex: number, offset: bigint): string | undefined {
    const b = this.blocks[rangeIndex];
    return b?.known.get(offset / b.blockSize)?.holder;
  }

  exhausted(rangeIndex: number): string | undefined {
    const b = this.blocks[rangeIndex];
    if (b === undefined || !this.synced || BigInt(b.known.size) < b.count) return undefined;
    return `every one of the ${b.count} /${b.blockPrefix} blocks of ${b.cidr} is held (${b.mine.size} by this router)`;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Lists every weft Lease again (also every `relistMs`); false when the API server could not be read. */
  refresh(): Promise<boolean> {
    return this.serial(() => this.list());
  }

  claim(rangeIndex: number, at?: bigint): Promise<{ ok: true; block: readonly [bigint, bigint] } | { ok: false; kind: 'exhausted' | 'conflict' | 'unavailable'; reason: string; holder?: string }> {
    return this.serial(async () => {
      const b = this.blocks[rangeIndex];
      if (b === undefined) return { ok: false, kind: 'unavailable', reason: `no range ${rangeIndex}` };
      if (!this.synced && !(await this.list())) return { ok: false, kind: 'unavailable', reason: this.lastError ?? 'the Leases cannot be listed' };
      if (at !== undefined) return this.claimAt(b, at / b.blockSize);
      for (let tries = 0; tries < CLAIM_TRIES; tries++) {
        const i = freeBlock(b);
        if (i === undefined) return { ok: false, kind: 'exhausted', reason: this.exhausted(rangeIndex) ?? `no free block in ${b.cidr}` };
        const r = await this.create(b, i);
        if (r === 'ok') return { ok: true, block: [i * b.blockSize, (i + 1n) * b.blockSize] as const };
        if (r !== 'taken') return { ok: false, kind: 'unavailable', reason: r };
      }
      // Lost every race: learn who holds what, and let the caller try again.
      await this.list();
      return { ok: false, kind: 'unavailable', reason: `other routers claimed the ${CLAIM_TRIES} free blocks of ${b.cidr} this router tried first; try again` };
    });
  }

  reclaim(peer: string): Promise<{ taken: string[]; lost: string[]; failed: string[] }> {
    return this.serial(async () => {
      if (!(await this.list())) throw new WeftError('ERR_KUBE_UNAVAILABLE', `cannot reclaim the blocks of ${peer}: ${this.lastError ?? 'the Leases cannot be listed'}`);
      const out = { taken: [] as string[], lost: [] as string[], failed: [] as string[] };
      if (peer === this.self) return out;
      let changed = false;
      for (const b of this.blocks) {
        for (const [i, k] of [...b.known]) {
          if (k.holder !== peer) continue;
          const cidr = blockCidr(b, i);
          const meta = k.lease.metadata ?? {};
          if (!k.exact) continue; // a Lease of other blocks covering ours: not ours to take
          const body: V1Lease = {
            ...k.lease,
            metadata: { ...meta, annotations: { ...meta.annotations, [LEASE_ANNOTATIONS.node]: this.nodeName } },
            spec: { ...k.lease.spec, holderIdentity: this.self, acquireTime: new (clientNode().V1MicroTime)(this.clock.wallNow()), leaseTransitions: (k.lease.spec?.leaseTransitions ?? 0) + 1 },
          };
          try {
            const written = await this.call(() => this.api.replace(this.namespace, meta.name!, body));
            b.known.set(i, { holder: this.self, lease: written, exact: true });
            b.mine.set(i, { reclaimed: true });
            b.conflicts.delete(i);
            this.counters.reclaimed++;
            out.taken.push(cidr);
            changed = true;
          } catch (err) {
            const status = kubeStatus(err);
            if (status === 409 || status === 404) {
              // Another router took it over first (or the Lease went): the next list says who holds it.
              this.counters.reclaimRaces++;
              out.lost.push(cidr);
            } else {
              this.failed(describeKubeError(`replacing Lease ${meta.name!}`, err));
              out.failed.push(cidr);
            }
          }
        }
      }
      if (changed) this.emit();
      return out;
    });
  }

  spaceStatus(rangeIndex: number): SpaceBlocksStatus {
    const b = this.blocks[rangeIndex];
    if (b === undefined) return { blockPrefix: 0, mine: [], others: [], free: '0', conflicts: [] };
    const others = new Map<string, number>();
    for (const k of b.known.values()) if (k.holder !== this.self) others.set(k.holder, (others.get(k.holder) ?? 0) + 1);
    return {
      blockPrefix: b.blockPrefix,
      mine: [...b.mine.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)).map((i) => blockCidr(b, i)),
      others: [...others].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).map(([holder, blocks]) => ({ holder, blocks })),
      free: (b.count - BigInt(b.known.size)).toString(),
      conflicts: [...b.conflicts].map(([i, holder]) => ({ block: blockCidr(b, i), holder })),
    };
  }

  status(): BlocksStatus {
    return {
      source: `Leases in namespace ${this.namespace} of ${this.server}`,
      synced: this.synced,
      ...(this.lastSyncAt === undefined ? {} : { lastSyncAt: this.lastSyncAt }),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      counters: { ...this.counters },
    };
  }

  // ─── calls ────────────────────────────────────────────────────────────────────────────────

  /** Runs `fn` after every call queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** One call to the API server, failing after `callTimeoutMs` without an answer. */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = this.clock.setTimeout(() => reject(new WeftError('ERR_KUBE_TIMEOUT', `no answer from ${this.server} within ${this.callTimeoutMs} ms`)), this.callTimeoutMs);
      fn().then(
        (v) => {
          t.cancel();
          resolve(v);
        },
        (err: unknown) => {
          t.cancel();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private failed(message: string): void {
    this.counters.failures++;
    if (this.lastError !== message) this.log.warn('a call to the API server failed', { err: message });
    this.lastError = message;
  }

  private emit(): void {
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (err) {
        this.log.error('a listener of the IPAM blocks failed', { err: describeError(err) });
      }
    }
  }

  /** Creates the Lease of block `i`: 'ok', 'taken' (409: someone else holds it now), or why it failed. */
  private async create(b: BlockRange, i: bigint): Promise<'ok' | 'taken' | string> {
    const cidr = blockCidr(b, i);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: leaseName(cidr),
        namespace: this.namespace,
        labels: { [LEASE_LABELS.component]: LEASE_COMPONENT, [LEASE_LABELS.range]: rangeLabel(b.cidr) },
        annotations: { [LEASE_ANNOTATIONS.cidr]: cidr, [LEASE_ANNOTATIONS.node]: this.nodeName },
      },
      spec: { holderIdentity: this.self, acquireTime: new (clientNode().V1MicroTime)(this.clock.wallNow()), leaseTransitions: 0 },
    };
    try {
      const written = await this.call(() => this.api.create(this.namespace, body));
      b.known.set(i, { holder: this.self, lease: written, exact: true });
      b.mine.set(i, { reclaimed: false });
      b.conflicts.delete(i);
      this.counters.claimed++;
      this.log.info('claimed an IPAM block', { block: cidr });
      this.emit();
      return 'ok';
    } catch (err) {
      if (kubeStatus(err) === 409) {
        this.counters.claimRaces++;
        // Held by someone; the next list says by whom.
        if (!b.known.has(i)) b.known.set(i, { holder: 'unknown', lease: body, exact: true });
        return 'taken';
      }
      const why = describeKubeError(`creating Lease ${leaseName(cidr)}`, err);
      this.failed(why);
      return why;
    }
  }

  /** The block `i` asked for by the Ipam (an allocation of the state file lies in it). */
  private async claimAt(b: BlockRange, i: bigint): Promise<{ ok: true; block: readonly [bigint, bigint] } | { ok: false; kind: 'conflict' | 'unavailable'; reason: string; holder?: string }> {
    const block = [i * b.blockSize, (i + 1n) * b.blockSize] as const;
    const cidr = blockCidr(b, i);
    if (i < 0n || i >= b.count) return { ok: false, kind: 'unavailable', reason: `offset outside ${b.cidr}` };
    const held = (): { ok: false; kind: 'conflict'; reason: string; holder: string } => {
      const holder = b.known.get(i)?.holder ?? 'unknown';
      return { ok: false, kind: 'conflict', reason: `block ${cidr} is held by ${holder}`, holder };
    };
    const k = b.known.get(i);
    if (k?.holder === this.self && k.exact) {
      if (!b.mine.has(i)) {
        b.mine.set(i, { reclaimed: false });
        this.emit();
      }
      return { ok: true, block };
    }
    if (k !== undefined) return held();
    const r = await this.create(b, i);
    if (r === 'ok') return { ok: true, block };
    if (r !== 'taken') return { ok: false, kind: 'unavailable', reason: r };
    await this.list();
    return held();
  }

  /** Lists every weft Lease and takes the API's word on who holds what. */
  private async list(): Promise<boolean> {
    let items: V1Lease[];
    try {
      items = await this.call(() => this.api.list(this.namespace, `${LEASE_LABELS.component}=${LEASE_COMPONENT}`));
    } catch (err) {
      this.failed(describeKubeError(`listing the Leases in namespace ${this.namespace}`, err));
      return false;
    }
    const seen = this.blocks.map(() => new Map<bigint, Known>());
    for (const lease of items) this.learn(lease, seen);
    let changed = !this.synced;
    const recreate: [BlockRange, bigint][] = [];
    this.blocks.forEach((b, r) => {
      const now = seen[r]!;
      for (const [i, m] of b.mine) {
        const k = now.get(i);
        if (k === undefined) recreate.push([b, i]);
        else if (k.holder !== this.self || !k.exact) {
          b.mine.delete(i);
          b.conflicts.set(i, k.holder);
          this.counters.lost++;
          changed = true;
          this.log.warn('a block held here is held by another router now: nothing more is handed out from it', { block: blockCidr(b, i), holder: k.holder, reclaimed: m.reclaimed });
        }
      }
      for (const [i, k] of now) {
        if (k.holder === this.self && k.exact && !b.mine.has(i)) {
          b.mine.set(i, { reclaimed: false });
          b.conflicts.delete(i);
          changed = true;
        }
      }
      b.known = now;
    });
    this.synced = true;
    this.lastSyncAt = this.clock.wallNow();
    this.lastError = undefined;
    // A Lease of a block held here is gone (deleted by hand): written again, unless someone was faster.
    for (const [b, i] of recreate) {
      b.mine.delete(i);
      changed = true;
      this.log.warn('the Lease of a block held here is gone: writing it again', { block: blockCidr(b, i) });
      if ((await this.create(b, i)) === 'taken') b.conflicts.set(i, 'unknown');
    }
    if (changed) this.emit();
    return true;
  }

  /** Puts a listed Lease in `seen` when it is one of this router's blocks (or covers some); ignores and counts a malformed one. */
  private learn(lease: V1Lease, seen: Map<bigint, Known>[]): void {
    const name = lease.metadata?.name ?? '';
    const p = parseBlockLease(lease);
    if ('problem' in p) {
      const key = `${name}@${lease.metadata?.resourceVersion ?? ''}`;
      if (this.ignoredSeen.has(key)) return;
      if (this.ignoredSeen.size > 10_000) this.ignoredSeen.clear();
      this.ignoredSeen.add(key);
      this.counters.ignored++;
      this.log.warn('an IPAM block Lease is ignored', { lease: `${this.namespace}/${name}`, why: p.problem });
      return;
    }
    const { holder, start, size, prefix, cidr: normalized } = p;
    this.blocks.forEach((b, r) => {
      if (b.family !== p.family || start + size <= b.base || start >= b.base + b.size) return;
      const lo = start > b.base ? (start - b.base) / b.blockSize : 0n;
      const endOff = start + size - b.base;
      const hi = endOff >= b.size ? b.count : (endOff + b.blockSize - 1n) / b.blockSize;
      if (prefix !== b.blockPrefix) {
        // Another router's blocks are cut differently (other ranges configured): still, never claim under it.
        this.logOnceIgnoredShape(name, normalized, b);
        if (hi - lo > MAX_COVERED) return;
      }
      const exact = prefix === b.blockPrefix;
      for (let i = lo; i < hi; i++) if (exact || !seen[r]!.has(i)) seen[r]!.set(i, { holder, lease, exact });
    });
  }

  private logOnceIgnoredShape(name: string, cidr: string, b: BlockRange): void {
    const key = `shape:${name}`;
    if (this.ignoredSeen.has(key)) return;
    this.ignoredSeen.add(key);
    this.log.warn('an IPAM block Lease is not a block of this router (ranges configured differently?): the blocks it covers are taken as held', { lease: `${this.namespace}/${name}`, cidr, blockPrefix: b.blockPrefix, range: b.cidr });
  }
}
