/**
 * Pods cannot send as someone else: per-port anti-spoofing rules for the pods' host veths, in one
 * nftables table of the router's own (`bridge weft-pods`; the rules are in pod-guard-rules.ts).
 *
 *   CNI ADD ── attach(containerId, ifName, mac) ── the pod's MAC, its IPAM addresses and its
 *              EUI-64 link-local become elements of the table's sets (one transaction)
 *   CNI DEL ── detach(containerId, ifName) ── its elements and counter go
 *   every 10 s, at start, after a DEL or GC ── reconcile: ports that left the bridge lose their
 *              elements, addresses follow IPAM (a released address stops being the pod's), and
 *              a table that was changed or deleted under us is made whole again
 *
 * The table stays in the kernel when the router stops, so pods stay guarded while it is down. A
 * restarted router reads the pods back from the table (it is the only copy of their MACs), keeps
 * those whose port is still on the bridge, and rewrites the rules and sets in one transaction:
 * there is never a moment without rules for a pod that exists. Changes are batched: attaches that
 * arrive while a transaction runs go together in the next one.
 */
import { compareText } from '../core/compare.js';
import { ApiError } from '../api/errors.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import type { Netlink } from '../platform/netlink.js';
import type { NftScripts } from '../platform/nft.js';
import { hostVethName } from '../cni/veth.js';
import {
  DROP_REASONS,
  POD_PORT,
  ipv6Hex,
  POD_TABLE,
  linkLocalOf,
  podAddScript,
  podProblem,
  podRemoveScript,
  readGuardTable,
  reasonCounter,
  samePod,
  syncScript,
  type DropReason,
  type GuardedPod,
} from './pod-guard-rules.js';
import type { PodGuardStatus, GuardedPodStatus } from '../api/types.js';

export type { PodGuardStatus, GuardedPodStatus };

/** An allocation as IPAM lists it (addresses without prefix length). */
export interface PodAllocation {
  containerId: string;
  ifName: string;
  addresses: string[];
}

export interface PodGuardComponents {
  nft: NftScripts;
  netlink: Pick<Netlink, 'bridgePorts'>;
  clock: Clock;
  logger: Logger;
  /** The allocations IPAM holds on this router; empty when IPAM is off. */
  allocations: () => readonly PodAllocation[];
  /** Called once an attachment's rules are in: its CNI ADD is done (IPAM stops counting it as adding). */
  confirm?: (containerId: string, ifName: string) => void;
}

export interface PodGuardInit {
  bridge: string;
  vxlanPort: number;
  reconcileMs?: number;
}

/** A refusal of the pod guard; its HTTP status comes from its code (src/api/errors.ts). */
export class PodGuardError extends ApiError {
  constructor(code: 'ERR_POD_BAD_REQUEST' | 'ERR_POD_NOT_ALLOCATED' | 'ERR_POD_GUARD', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PodGuardError';
  }
}

interface Entry {
  pod: GuardedPod;
  containerId: string | undefined;
  ifName: string | undefined;
  /** Bumped by every attach: a reconcile leaves alone what changed after it looked. */
  seq: number;
  /** When attach made it (clock ms): ADD guards the port while the port is still being made. */
  attachedAt?: number;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** How long an attached port may be missing from the bridge before its rules go (longer than ADD's limit). */
export const ATTACH_GRACE_MS = 30_000;

function key(containerId: string, ifName: string): string {
  return `${containerId}\0${ifName}`;
}

export class PodGuard implements Startable {
  private readonly components: PodGuardComponents;
  private readonly init: Required<PodGuardInit>;
  private readonly entries = new Map<string, Entry>();
  private counters = new Map<string, number>();
  private reading: Promise<void> | undefined = undefined;
  /** The pod ports on the bridge when last read. */
  private ports = new Set<string>();
  private readonly reportedUnknown = new Set<string>();
  private problem: string | undefined = undefined;
  private seq = 0;
  private timer: TimerHandle | undefined = undefined;
  private soon: TimerHandle | undefined = undefined;
  private reconciling: Promise<void> | undefined = undefined;
  private adopted = false;
  // the write queue: scripts wait here while a transaction runs, then go in one
  private pending: string[] = [];
  private waiters: Waiter[] = [];
  private syncWanted = false;
  private writing: Promise<void> | undefined = undefined;

  constructor(components: PodGuardComponents, init: PodGuardInit) {
    this.components = components;
    this.init = { reconcileMs: 10_000, ...init };
  }

  /**
   * Adopts what the table holds and rewrites it whole. A failure does not stop the router: it is
   * retried every 2 s, and meanwhile `notReady` says why, so no pod is added unguarded.
   */
  async start(): Promise<void> {
    await this.reconcile();
    this.timer = this.components.clock.setInterval(() => void this.reconcile(), this.init.reconcileMs);
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    this.soon?.cancel();
    await this.reconciling;
    await this.writing;
  }

  /**
   * Guards the pod of attachment (containerId, ifName): its port is the host veth the CNI plugin
   * derives from them, its addresses are what IPAM allocated to that attachment. Resolves once the
   * rules are in the kernel. Refuses (400) a MAC that is not unicast.
   */
  async attach(containerId: string, ifName: string, mac: string): Promise<GuardedPod> {
    if (typeof containerId !== 'string' || containerId === '' || typeof ifName !== 'string' || ifName === '') {
      throw new PodGuardError('ERR_POD_BAD_REQUEST', 'attach: containerId and ifName are required');
    }
    if (typeof mac !== 'string') throw new PodGuardError('ERR_POD_BAD_REQUEST', 'attach: mac is required');
    const alloc = this.components.allocations().find((a) => a.containerId === containerId && a.ifName === ifName);
    if (alloc === undefined) throw new PodGuardError('ERR_POD_NOT_ALLOCATED', `attach: IPAM holds no allocation for ${containerId}/${ifName}`);
    const pod = this.podOf(hostVethName(containerId, ifName), mac.toLowerCase(), alloc.addresses);
    const why = podProblem(pod);
    if (why !== undefined) throw new PodGuardError('ERR_POD_BAD_REQUEST', `attach ${containerId}/${ifName}: ${why}`);
    const old = this.entries.get(pod.port);
    this.entries.set(pod.port, { pod, containerId, ifName, seq: ++this.seq, attachedAt: this.components.clock.now() });
    // An address is allowed on one port at most: one that IPAM handed on (released, then allocated
    // again) stops being the old port's now, not at the next reconcile.
    let script = this.takeAddresses(pod);
    if (old !== undefined && samePod(old.pod, pod)) {
      await this.write(script);
      this.components.confirm?.(containerId, ifName);
      return pod;
    }
    script += (old === undefined ? '' : podRemoveScript(old.pod, true)) + podAddScript(pod);
    await this.write(script);
    this.components.confirm?.(containerId, ifName);
    this.components.logger.info('pod guarded', { containerId, ifName, port: pod.port, mac: pod.mac, addresses: [...pod.ipv4, ...pod.ipv6] });
    return pod;
  }

  /** Takes `pod`'s global addresses away from every other port; returns the script for that. */
  private takeAddresses(pod: GuardedPod): string {
    const mine = new Set([...pod.ipv4, ...pod.ipv6.filter((a) => !a.startsWith('fe80:')).map(ipv6Hex)]);
    let script = '';
    for (const e of this.entries.values()) {
      if (e.pod.port === pod.port) continue;
      const ipv4 = e.pod.ipv4.filter((a) => !mine.has(a));
      const ipv6 = e.pod.ipv6.filter((a) => !mine.has(ipv6Hex(a)));
      if (ipv4.length === e.pod.ipv4.length && ipv6.length === e.pod.ipv6.length) continue;
      this.components.logger.warn('an address of a new pod was still allowed on another port; it is taken from there', { port: e.pod.port, containerId: e.containerId, to: pod.port });
      const next = { ...e.pod, ipv4, ipv6 };
      script += podRemoveScript(e.pod, true) + podAddScript(next);
      e.pod = next;
    }
    return script;
  }

  /** Removes the rules of an attachment; one that is not guarded is no error. */
  async detach(containerId: string, ifName: string): Promise<boolean> {
    if (typeof containerId !== 'string' || containerId === '' || typeof ifName !== 'string' || ifName === '') {
      throw new PodGuardError('ERR_POD_BAD_REQUEST', 'detach: containerId and ifName are required');
    }
    const port = hostVethName(containerId, ifName);
    const old = this.entries.get(port);
    if (old === undefined) return false;
    this.entries.delete(port);
    await this.write(podRemoveScript(old.pod));
    this.components.logger.info('pod unguarded', { containerId, ifName, port });
    return true;
  }

  /** A reconcile shortly (after a DEL or GC: ports may have left the bridge). */
  reconcileSoon(): void {
    this.soon?.cancel();
    this.soon = this.components.clock.setTimeout(() => void this.reconcile(), 200);
  }

  /** Why the table cannot be programmed now (new pods are refused meanwhile); undefined when it can. */
  notReady(): string | undefined {
    return this.problem;
  }

  private retrySoon(): void {
    this.soon?.cancel();
    this.soon = this.components.clock.setTimeout(() => void this.reconcile(), 2000);
  }

  /**
   * Re-reads the counters (for status); callers at the same time share one read. With no pod and
   * no pod port on the bridge there is nothing to count: the periodic reconcile's read will do.
   */
  refreshCounters(): Promise<void> {
    if (this.entries.size === 0 && this.ports.size === 0) return Promise.resolve();
    this.reading ??= this.components.nft
      .listTable('bridge', POD_TABLE)
      .then((items) => {
        this.counters = items === undefined ? new Map() : readGuardTable(items).counters;
      })
      .catch((err: unknown) => this.components.logger.debug('cannot read the pod table counters', { err: describeError(err) }))
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  status(): PodGuardStatus {
    const drops = {} as Record<DropReason, number>;
    for (const r of DROP_REASONS) drops[r] = this.counters.get(reasonCounter(r)) ?? 0;
    const pods = [...this.entries.values()]
      .map((e) => ({
        containerId: e.containerId ?? null,
        ifName: e.ifName ?? null,
        port: e.pod.port,
        mac: e.pod.mac,
        addresses: [...e.pod.ipv4, ...e.pod.ipv6.filter((a) => !a.startsWith('fe80:'))],
        dropped: this.counters.get(e.pod.port) ?? 0,
      }))
      .sort((a, b) => compareText(a.port, b.port));
    const unknownPorts = [...this.ports].filter((p) => !this.entries.has(p)).sort();
    return { table: `bridge ${POD_TABLE}`, pods, drops, unknownPorts, problem: this.problem ?? null };
  }

  /** The pods guarded now (tests). */
  guarded(): GuardedPod[] {
    return [...this.entries.values()].map((e) => e.pod);
  }

  /** One reconcile at a time; a second caller shares the running one. */
  reconcile(): Promise<void> {
    this.reconciling ??= this.doReconcile().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private podOf(port: string, mac: string, addresses: readonly string[]): GuardedPod {
    const ipv4 = addresses.filter((a) => !a.includes(':'));
    const ipv6 = addresses.filter((a) => a.includes(':'));
    const ll = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) ? linkLocalOf(mac) : undefined;
    return { port, mac, ipv4, ipv6: ll === undefined ? ipv6 : [...ipv6, ll] };
  }

  private async doReconcile(): Promise<void> {
    const before = new Map([...this.entries].map(([port, e]) => [port, e.seq]));
    let ports: Set<string>;
    let kernel: ReturnType<typeof readGuardTable> | undefined;
    try {
      ports = new Set((await this.components.netlink.bridgePorts(this.init.bridge)).map((l) => l.name).filter((n) => POD_PORT.test(n)));
      const items = await this.components.nft.listTable('bridge', POD_TABLE);
      kernel = items === undefined ? undefined : readGuardTable(items);
    } catch (err) {
      this.fail('cannot read the bridge ports or the pod table', err);
      this.retrySoon();
      return;
    }
    const allocations = this.components.allocations();
    const byPort = new Map(allocations.map((a) => [hostVethName(a.containerId, a.ifName), a]));
    const byKey = new Map(allocations.map((a) => [key(a.containerId, a.ifName), a]));
    let changed = false;
    if (!this.adopted && kernel !== undefined) {
      // A restart: the table is the only record of the pods' MACs.
      for (const [port, k] of kernel.pods) {
        if (this.entries.has(port) || !ports.has(port)) continue;
        const a = byPort.get(port);
        this.entries.set(port, { pod: this.podOf(port, k.mac, a?.addresses ?? []), containerId: a?.containerId, ifName: a?.ifName, seq: ++this.seq });
        before.set(port, this.seq);
      }
    }
    for (const [port, seq] of before) {
      const e = this.entries.get(port);
      if (e === undefined || e.seq !== seq) continue; // detached or attached again meanwhile
      if (!ports.has(port)) {
        // CNI ADD guards a port before its veth is on the bridge; an ADD that fails detaches it.
        if (e.attachedAt !== undefined && this.components.clock.now() - e.attachedAt < ATTACH_GRACE_MS) continue;
        this.entries.delete(port);
        changed = true;
        this.components.logger.info('pod port left the bridge; its rules go', { port, containerId: e.containerId });
        continue;
      }
      const a = e.containerId === undefined || e.ifName === undefined ? byPort.get(port) : byKey.get(key(e.containerId, e.ifName));
      const pod = this.podOf(port, e.pod.mac, a?.addresses ?? []);
      if (!samePod(pod, e.pod)) {
        this.entries.set(port, { pod, containerId: a?.containerId ?? e.containerId, ifName: a?.ifName ?? e.ifName, seq: e.seq });
        changed = true;
      }
    }
    if (kernel !== undefined) this.counters = kernel.counters;
    this.ports = ports;
    for (const p of ports) {
      if (this.entries.has(p) || this.reportedUnknown.has(p)) continue;
      this.reportedUnknown.add(p);
      this.components.logger.warn('a pod port with no attachment known: everything it sends is dropped', { port: p, bridge: this.init.bridge });
    }
    const differs = kernel === undefined || kernel.pods.size !== this.entries.size || [...this.entries.values()].some((e) => !sameAs(kernel.pods.get(e.pod.port), e.pod));
    if (!this.adopted || changed || differs) {
      if (this.adopted && differs && !changed) this.components.logger.warn('the pod table differs from the pods known; rewriting it', { table: `bridge ${POD_TABLE}` });
      try {
        await this.write(undefined);
        this.adopted = true;
      } catch {
        this.retrySoon(); // fail() logged it
      }
    }
  }

  /** Queues a script (or, with undefined, a rewrite of the whole table) and resolves once it is in. */
  private write(script: string | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (script === undefined) this.syncWanted = true;
      else if (script !== '') this.pending.push(script);
      this.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing !== undefined) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      if (this.waiters.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    const scripts = this.pending;
    const waiters = this.waiters;
    const sync = this.syncWanted;
    this.pending = [];
    this.waiters = [];
    this.syncWanted = false;
    try {
      // After a failure the table is in an unknown state: only a rewrite makes it whole.
      if (sync || this.problem !== undefined) await this.syncAll();
      else if (scripts.length > 0) {
        try {
          await this.components.nft.apply(scripts.join(''));
        } catch (err) {
          // The table was deleted or changed under us: rebuild it whole from what we know.
          this.components.logger.warn('a pod table update failed; rewriting the table', { err: describeError(err) });
          await this.syncAll();
        }
      }
      this.problem = undefined;
      for (const w of waiters) w.resolve();
    } catch (err) {
      const e = this.fail('cannot program the pod table', err);
      for (const w of waiters) w.reject(e);
    }
  }

  private async syncAll(): Promise<void> {
    const pods = [...this.entries.values()].map((e) => e.pod);
    const live = new Set(pods.map((p) => p.port));
    const gone = [...this.counters.keys()].filter((n) => POD_PORT.test(n) && !live.has(n));
    try {
      await this.components.nft.apply(syncScript({ vxlanPort: this.init.vxlanPort }, pods, gone));
    } catch (err) {
      // A table from another version (a set of another type): replace it whole, in one transaction.
      this.components.logger.warn('the pod table cannot be updated in place; replacing it', { err: describeError(err) });
      await this.components.nft.apply(`add table bridge ${POD_TABLE}\ndelete table bridge ${POD_TABLE}\n${syncScript({ vxlanPort: this.init.vxlanPort }, pods, [])}`);
    }
  }

  private fail(what: string, err: unknown): PodGuardError {
    const text = `${what}: ${describeError(err)}`;
    if (this.problem !== text) this.components.logger.error(what, { table: `bridge ${POD_TABLE}`, err: describeError(err) });
    this.problem = text;
    return new PodGuardError('ERR_POD_GUARD', text, { cause: err });
  }
}

/** The kernel's pod (as read back) holds what `want` says (addresses compared as sets). */
function sameAs(have: GuardedPod | undefined, want: GuardedPod): boolean {
  return have !== undefined && samePod(have, want);
}
