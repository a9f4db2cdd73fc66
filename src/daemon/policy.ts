/**
 * NetworkPolicy enforcement on this node: the policy engine. It keeps table `inet weft-policy`
 * (src/policy/model.ts says what it holds) equal to what the source's objects compile to.
 *
 *   start ─────────── the table of the previous run stays in force (nothing is written) until the
 *                     source's first snapshot; then one full rewrite in one transaction, counters
 *                     carried over from the table
 *   source change ─── compile; rules text unchanged: set element diff only; changed: full rewrite
 *   CNI ADD / DEL ─── podAttached / podDetached: the pod is local (its CNI addresses stand in for
 *                     its IPs until the source has them); ADD waits, bounded, for its transaction
 *   every 10 s ────── check: bridge netfilter; the table read back (counters); a table missing, or
 *                     sets not what was applied: full rewrite
 *   failure ───────── the rules in force stay; the next transaction is a full rewrite (retried in 2 s)
 *
 * Changes are batched: one transaction in flight; the next gathers every change since.
 */
import { compareText } from '../core/compare.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import type { Nft, NftScripts } from '../platform/nft.js';
import type { Sysctl } from '../platform/sysctl.js';
import { compilePolicy, NODE_COUNTERS } from '../policy/compile.js';
import { POLICY_TABLE_REF } from '../policy/script.js';
import { podKey, POLICY_FAMILY, POLICY_TABLE, type CompiledPolicy, type PolicyModel, type PolicyNamespace, type PolicyPod, type PolicySnapshot, type PolicySource } from '../policy/model.js';
import type { PolicyStatus } from '../api/types.js';
import { readPolicyTable, type AttachedPod, type AttachmentStore, type PolicyTableReading } from './policy-pods.js';
import { BRIDGE_NETFILTER, ensureSettings } from './service-bridge.js';

export type { PolicyStatus };

/** Counter values carried over into a full rewrite, by counter name. */
export type CounterValues = ReadonlyMap<string, { packets: number; bytes: number }>;

/** Counters of the table for all drops at isolated pods per direction (reported when the compiled table has them). */
export const DROPPED_INGRESS_COUNTER = NODE_COUNTERS.ingress;
export const DROPPED_EGRESS_COUNTER = NODE_COUNTERS.egress;

export interface PolicyEngineComponents {
  /** Transactions and the table read back (`NftScripts`); its named counters alone (`Nft.counters`: no set elements, cheap at any size). */
  nft: NftScripts & Pick<Nft, 'counters'>;
  source: PolicySource;
  clock: Clock;
  logger: Logger;
  /** The compiler (default: compilePolicy). */
  compile?: (model: PolicyModel) => CompiledPolicy;
  /** The whole table in one transaction, counters declared with `counterValues` (src/policy/script.ts's fullScript). */
  fullScript: (compiled: CompiledPolicy, counterValues?: CounterValues) => string;
  /** The set element changes between two compilations of the same rules ('' when none). */
  elementDiffScript: (before: CompiledPolicy, after: CompiledPolicy) => string;
  /** The local pods attached by CNI, kept across restarts. */
  attachments: AttachmentStore;
  /** Kernel parameters (bridge netfilter is set at start and at each check); none: not checked. */
  sysctl?: Sysctl;
  /**
   * The attachments still on this node (the pod guard's); undefined when not known now. At each
   * check, attachments not among them go (a DEL the router missed, a port that left the bridge).
   */
  live?: () => readonly { containerId: string | null; ifName: string | null }[] | undefined;
}

export interface PolicyEngineInit {
  /** This node's name: pods whose `node` is it are local (undefined: only pods attached here). */
  nodeName: string | undefined;
  /** The periodic check (default 10 s). */
  checkMs?: number;
  /** How long podAttached waits for its transaction (default 3 s; then it logs and returns). */
  attachWaitMs?: number;
  /** A failed transaction is retried after this (default 2 s). */
  retryMs?: number;
  /**
   * Up to this many set elements the check reads every set back each time; a bigger table is read
   * back whole every `fullCheckEvery`-th check only (reading and comparing 65,000 elements costs
   * the router's one thread about 100 ms, and the sleeve runs on that thread), its presence and
   * counters every time. Default 5,000.
   */
  fullCheckElements?: number;
  /** Default 6 (with the 10 s check: a big table's sets are compared every minute). */
  fullCheckEvery?: number;
}

const TABLE = POLICY_TABLE_REF;

function attachmentKey(containerId: string, ifName: string): string {
  return `${containerId}\0${ifName}`;
}

function setText(elements: readonly string[]): string {
  return elements.map((e) => e.replace(/"/g, '')).sort().join(',');
}

export class PolicyEngine implements Startable {
  private readonly components: PolicyEngineComponents;
  private readonly init: Required<Omit<PolicyEngineInit, 'nodeName'>> & { nodeName: string | undefined };
  private readonly compile: (model: PolicyModel) => CompiledPolicy;
  private readonly attached = new Map<string, AttachedPod>();
  /** What the kernel holds, as far as we know (undefined: nothing applied by this run). */
  private applied: CompiledPolicy | undefined = undefined;
  private needFull = true;
  private counters = new Map<string, { packets: number; bytes: number }>();
  private reading: Promise<void> | undefined = undefined;
  private checking: Promise<void> | undefined = undefined;
  private dirty = false;
  private waiters: (() => void)[] = [];
  private writing: Promise<void> | undefined = undefined;
  private timer: TimerHandle | undefined = undefined;
  private retry: TimerHandle | undefined = undefined;
  private stopped = false;
  private problem: string | undefined = undefined;
  private failures = 0;
  private readonly applies = { full: 0, elements: 0 };
  private lastApply: PolicyStatus['lastApply'] = null;
  private bridgeProblems: string[] = [];
  /** Sets that differed at the last check (a full rewrite followed). */
  private mismatch = new Map<string, { want: string; have: string }>();
  /** Sets nft lists otherwise than they were written (seen again right after our own rewrite). */
  private readonly kernelForm = new Map<string, { want: string; have: string }>();
  private readonly listeners: ((kind: 'full' | 'elements') => void)[] = [];
  private checks = 0;

  constructor(components: PolicyEngineComponents, init: PolicyEngineInit) {
    this.components = components;
    this.init = { checkMs: 10_000, attachWaitMs: 3000, retryMs: 2000, fullCheckElements: 5000, fullCheckEvery: 6, ...init };
    this.compile = components.compile ?? compilePolicy;
  }

  async start(): Promise<void> {
    for (const p of this.components.attachments.load()) this.attached.set(attachmentKey(p.containerId, p.ifName), p);
    this.components.source.onChange(() => {
      if (this.components.source.snapshot() !== undefined) void this.request();
    });
    try {
      await this.components.source.start();
    } catch (err) {
      // The rules in force stay; the source reports its own state in status.
      this.fail('the policy source did not start; the rules in force stay', err);
    }
    await this.checkBridgeNetfilter();
    this.timer = this.components.clock.setInterval(() => void this.check(), this.init.checkMs);
    // A source with its objects at hand (a file) is in force before the API serves CNI.
    if (this.components.source.snapshot() !== undefined) await this.request();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.retry?.cancel();
    await this.writing;
    await this.checking;
    for (const w of this.waiters.splice(0)) w();
    await this.components.source.stop().catch((err: unknown) => this.components.logger.warn('the policy source did not stop cleanly', { err: describeError(err) }));
  }

  /** Called after each applied transaction (metrics). */
  onApply(listener: (kind: 'full' | 'elements') => void): void {
    this.listeners.push(listener);
  }

  /**
   * A pod was attached here by CNI ADD: it is local, and its CNI addresses are its IPs until the
   * source has some. Resolves once a transaction that includes it is done, or after
   * `attachWaitMs` (logged): policy never fails an ADD. Before the source's first snapshot there
   * is nothing to enforce yet: it resolves at once (logged), so a source that cannot sync (the API
   * server refuses) does not slow every ADD down.
   */
  async podAttached(containerId: string, ifName: string, namespace: string, name: string, addresses: readonly string[]): Promise<void> {
    this.attached.set(attachmentKey(containerId, ifName), { containerId, ifName, namespace, name, addresses: [...addresses] });
    this.save();
    const pod = `${namespace}/${name}`;
    if (this.components.source.snapshot() === undefined) {
      this.dirty = true; // the first snapshot's transaction includes it
      this.components.logger.warn('a pod starts before NetworkPolicy is enforced: the policy source has not synced yet', { pod, containerId, ifName });
      return;
    }
    let timer: TimerHandle | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = this.components.clock.setTimeout(() => resolve('late'), this.init.attachWaitMs);
    });
    const r = await Promise.race([this.request().then(() => 'done' as const), late]);
    timer?.cancel();
    if (r === 'late') this.components.logger.warn('a pod starts before its policy is in the kernel: the policy transaction is slow', { pod, containerId, ifName, waitedMs: this.init.attachWaitMs });
  }

  /** The attachment is gone (CNI DEL); false when it was not known. */
  podDetached(containerId: string, ifName: string): boolean {
    if (!this.attached.delete(attachmentKey(containerId, ifName))) return false;
    this.save();
    void this.request();
    return true;
  }

  /** The attachments known (tests, status). */
  attachments(): AttachedPod[] {
    return [...this.attached.values()];
  }

  /** Re-reads the counters (for status and metrics); callers at the same time share one read. */
  refreshCounters(): Promise<void> {
    this.reading ??= this.readCounters()
      .then((counters) => {
        if (counters !== undefined) this.counters = counters;
      })
      .catch((err: unknown) => this.components.logger.debug('cannot read the policy table counters', { err: describeError(err) }))
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /** The table's named counters (`list counters`: no set elements); undefined when the table has none (it is missing). */
  private async readCounters(): Promise<Map<string, { packets: number; bytes: number }> | undefined> {
    const mine = (await this.components.nft.counters()).filter((c) => c.family === POLICY_FAMILY && c.table === POLICY_TABLE);
    return mine.length === 0 ? undefined : new Map(mine.map((c) => [c.name, { packets: c.packets, bytes: c.bytes }]));
  }

  status(): PolicyStatus {
    const d = this.components.source.describe();
    const packets = (name: string): number => this.counters.get(name)?.packets ?? 0;
    const has = (name: string): boolean => this.applied?.counters.includes(name) === true;
    return {
      enabled: true,
      source: { kind: d.kind, where: d.where, synced: d.synced, error: d.error ?? null, problems: d.problems.map((p) => ({ where: p.where, problem: p.problem })) },
      table: TABLE,
      policies: (this.applied?.policies ?? [])
        .map((p) => ({ namespace: p.namespace, name: p.name, ingress: p.ingress, egress: p.egress, selected: [...p.selected].sort(), allowed: packets(p.allowedCounter), dropped: packets(p.droppedCounter) }))
        .sort((a, b) => compareText(a.namespace, b.namespace) || compareText(a.name, b.name)),
      dropped: { ingress: has(DROPPED_INGRESS_COUNTER) ? packets(DROPPED_INGRESS_COUNTER) : null, egress: has(DROPPED_EGRESS_COUNTER) ? packets(DROPPED_EGRESS_COUNTER) : null },
      applies: { ...this.applies },
      lastApply: this.lastApply,
      failures: this.failures,
      bridgeNetfilter: [...this.bridgeProblems],
      problem: this.problem ?? null,
    };
  }

  /** The periodic check; a second caller shares the running one. */
  check(): Promise<void> {
    this.checking ??= this.doCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  /** The model the compiler gets from a snapshot and the local attachments. */
  model(snap: PolicySnapshot): PolicyModel {
    const node = this.init.nodeName;
    const pods = new Map<string, PolicyPod>(snap.pods.map((p) => [podKey(p), p]));
    const local = new Set<string>();
    for (const p of snap.pods) if (node !== undefined && p.node === node) local.add(podKey(p));
    const cni = new Map<string, { namespace: string; name: string; addresses: string[] }>();
    for (const a of this.attached.values()) {
      const k = podKey(a);
      const c = cni.get(k) ?? { namespace: a.namespace, name: a.name, addresses: [] };
      for (const ip of a.addresses) if (!c.addresses.includes(ip)) c.addresses.push(ip);
      cni.set(k, c);
    }
    for (const [k, c] of cni) {
      local.add(k);
      const p = pods.get(k);
      if (p === undefined) pods.set(k, { namespace: c.namespace, name: c.name, labels: {}, ips: c.addresses, namedPorts: [], node, hostNetwork: false });
      else if (p.ips.length === 0) pods.set(k, { ...p, ips: c.addresses });
    }
    const namespaces: PolicyNamespace[] = [...snap.namespaces];
    const named = new Set(namespaces.map((n) => n.name));
    for (const p of pods.values()) {
      if (named.has(p.namespace)) continue;
      named.add(p.namespace);
      namespaces.push({ name: p.namespace, labels: { 'kubernetes.io/metadata.name': p.namespace } });
    }
    return { policies: snap.policies, pods: [...pods.values()], namespaces, local };
  }

  private save(): void {
    try {
      this.components.attachments.save([...this.attached.values()]);
    } catch (err) {
      this.components.logger.warn('cannot save the policy attachments; a restart may not know this node\'s pods', { err: describeError(err) });
    }
  }

  /** Asks for a transaction; resolves once one that started after this call has ended (applied or not). */
  private request(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.dirty = true;
      this.waiters.push(resolve);
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing !== undefined || this.stopped || !this.dirty) return;
    // Until the first snapshot the kernel keeps the previous run's rules: nothing is written.
    if (this.components.source.snapshot() === undefined) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      this.kick();
    });
  }

  private async drain(): Promise<void> {
    const waiters = this.waiters;
    this.waiters = [];
    this.dirty = false;
    try {
      await this.applyNow();
    } catch (err) {
      // A script builder that throws (a bug): the rules in force stay; the next try is a full rewrite.
      this.needFull = true;
      this.failures++;
      this.fail('cannot build the policy transaction; the rules in force stay', err);
    } finally {
      for (const w of waiters) w();
    }
  }

  private async applyNow(): Promise<void> {
    const snap = this.components.source.snapshot();
    if (snap === undefined) return;
    let compiled: CompiledPolicy;
    try {
      compiled = this.compile(this.model(snap));
    } catch (err) {
      this.fail('cannot compile the policies; the rules in force stay', err);
      return;
    }
    const before = this.applied;
    const full = this.needFull || before === undefined || before.rules !== compiled.rules;
    let script: string;
    if (full) {
      await this.refreshCounters();
      script = this.components.fullScript(compiled, this.counters);
    } else {
      script = this.components.elementDiffScript(before, compiled);
      if (script === '') {
        this.applied = compiled;
        return;
      }
    }
    const t0 = this.components.clock.now();
    try {
      await this.components.nft.apply(script);
    } catch (err) {
      this.failures++;
      this.needFull = true;
      this.fail(`cannot apply the policy table (${full ? 'full rewrite' : 'element update'}); the next try rewrites it whole`, err);
      this.retry?.cancel();
      this.retry = this.components.clock.setTimeout(() => void this.request(), this.init.retryMs);
      return;
    }
    const kind = full ? 'full' : 'elements';
    this.applied = compiled;
    this.needFull = false;
    this.problem = undefined;
    this.applies[kind]++;
    this.lastApply = { kind, at: this.components.clock.wallNow(), ms: Math.round(this.components.clock.now() - t0) };
    const log = full ? this.components.logger.info.bind(this.components.logger) : this.components.logger.debug.bind(this.components.logger);
    log('policy table applied', { kind, policies: compiled.policies.length, ms: this.lastApply.ms });
    for (const l of this.listeners) l(kind);
  }

  private async doCheck(): Promise<void> {
    if (this.stopped) return;
    await this.checkBridgeNetfilter();
    this.dropGone();
    const applied = this.applied;
    if (applied === undefined) return; // nothing written yet: the previous run's rules stand
    const elements = applied.sets.reduce((n, x) => n + x.elements.length, 0);
    const whole = elements <= this.init.fullCheckElements || this.checks++ % this.init.fullCheckEvery === 0;
    let reading: PolicyTableReading | undefined;
    let counters: Map<string, { packets: number; bytes: number }> | undefined;
    try {
      if (whole) {
        const items = await this.components.nft.listTable(POLICY_FAMILY, POLICY_TABLE);
        reading = items === undefined ? undefined : readPolicyTable(items);
        counters = reading?.counters;
      } else counters = await this.readCounters();
    } catch (err) {
      this.components.logger.debug('cannot read the policy table', { err: describeError(err) });
      return;
    }
    // A transaction under way or asked for will change the table: the next check looks again.
    if (this.writing !== undefined || this.dirty || this.applied !== applied) return;
    if (counters === undefined) {
      this.components.logger.warn('the policy table is missing; rewriting it', { table: TABLE });
      this.needFull = true;
      void this.request();
      return;
    }
    this.counters = counters;
    if (reading === undefined) return; // a big table: its sets at a later check
    const differ = this.differingSets(applied, reading);
    if (differ.length > 0) {
      this.components.logger.warn('the policy table\'s sets differ from what was applied; rewriting it', { table: TABLE, sets: differ });
      this.needFull = true;
      void this.request();
    }
  }

  private dropGone(): void {
    const live = this.components.live?.();
    if (live === undefined) return;
    const keys = new Set(live.map((a) => attachmentKey(a.containerId ?? '', a.ifName ?? '')));
    let gone = false;
    for (const [k, a] of this.attached) {
      if (keys.has(k)) continue;
      this.attached.delete(k);
      gone = true;
      this.components.logger.info('a pod attachment is gone from this node; NetworkPolicy forgets it', { containerId: a.containerId, ifName: a.ifName, pod: `${a.namespace}/${a.name}` });
    }
    if (!gone) return;
    this.save();
    void this.request();
  }

  /** The sets whose elements are not what was applied (a set nft lists in another form, seen twice in a row after our rewrite, is accepted). */
  private differingSets(applied: CompiledPolicy, reading: PolicyTableReading): string[] {
    const out: string[] = [];
    const seen = new Map<string, { want: string; have: string }>();
    for (const s of applied.sets) {
      const have = reading.sets.get(s.name);
      if (have === undefined) {
        out.push(s.name);
        continue;
      }
      const want = setText(s.elements);
      const h = setText(have);
      if (want === h) continue;
      const k = this.kernelForm.get(s.name);
      if (k !== undefined && k.want === want && k.have === h) continue;
      const m = this.mismatch.get(s.name);
      if (m !== undefined && m.want === want && m.have === h) {
        this.kernelForm.set(s.name, { want, have: h });
        this.components.logger.debug('nft lists a policy set otherwise than it was written; taken as the same', { set: s.name });
        continue;
      }
      seen.set(s.name, { want, have: h });
      out.push(s.name);
    }
    this.mismatch = seen;
    return out;
  }

  private async checkBridgeNetfilter(): Promise<void> {
    const sysctl = this.components.sysctl;
    if (sysctl === undefined) return;
    const { problems } = await ensureSettings({ sysctl, logger: this.components.logger }, { wanted: BRIDGE_NETFILTER, write: true, why: 'NetworkPolicy' });
    for (const p of problems) if (!this.bridgeProblems.includes(p)) this.components.logger.warn('NetworkPolicy cannot see bridged traffic without this setting', { problem: p });
    this.bridgeProblems = problems;
  }

  private fail(what: string, err: unknown): void {
    const text = `${what}: ${describeError(err)}`;
    if (this.problem !== text) this.components.logger.error(what, { table: TABLE, err: describeError(err) });
    this.problem = text;
  }
}
