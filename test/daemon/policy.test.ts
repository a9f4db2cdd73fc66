import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { PolicyEngine, type CounterValues } from '../../src/daemon/policy.js';
import { FileAttachmentStore, MemoryAttachmentStore, readPolicyTable, type AttachmentStore } from '../../src/daemon/policy-pods.js';
import { elementDiffScript, fullScript } from '../../src/policy/script.js';
import type { CompiledPolicy, NetworkPolicy, PolicyModel, PolicyObjectProblem, PolicyPod, PolicySnapshot, PolicySource } from '../../src/policy/model.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeNft } from '../fakes/fake-nft.js';
import { recordingLogger } from '../fakes/recording-logger.js';

const T = 'inet weft-policy';

class FakeSource implements PolicySource {
  snap: PolicySnapshot | undefined = undefined;
  private readonly listeners: (() => void)[] = [];
  started = 0;
  stopped = 0;
  async start(): Promise<void> {
    this.started++;
    return Promise.resolve();
  }
  async stop(): Promise<void> {
    this.stopped++;
    return Promise.resolve();
  }
  snapshot(): PolicySnapshot | undefined {
    return this.snap;
  }
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }
  set(snap: PolicySnapshot): void {
    this.snap = snap;
    for (const l of this.listeners) l();
  }
  describe(): { kind: 'file'; where: string; synced: boolean; problems: PolicyObjectProblem[]; error: string | undefined } {
    return { kind: 'file', where: '/etc/weft/policies.yaml', synced: this.snap !== undefined, problems: [], error: undefined };
  }
}

/** An nft whose transactions can be held open (to see batching and waiting). */
class GatedNft extends FakeNft {
  private gate: Promise<void> | undefined = undefined;
  private open: (() => void) | undefined = undefined;
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.gate = undefined;
    this.open?.();
  }
  /** Every script as its transaction starts (held or not). */
  readonly started: string[] = [];
  override async apply(script: string): Promise<void> {
    this.started.push(script);
    const g = this.gate;
    if (g !== undefined) await g;
    return super.apply(script);
  }
}

/** A compiler that selects every pod of the policy's namespace; one set of IPv4 addresses per policy. */
function fakeCompile(model: PolicyModel): CompiledPolicy {
  const rules: string[] = ['chain forward { type filter hook forward priority 0; policy accept; }'];
  const sets = [];
  const policies = [];
  for (const p of model.policies) {
    const id = `p_${p.namespace}_${p.name}`;
    rules.push(`set ${id}_pods { type ipv4_addr; }`, `counter ${id}_allowed { }`, `counter ${id}_dropped { }`);
    const pods = model.pods.filter((x) => x.namespace === p.namespace && model.local.has(`${x.namespace}/${x.name}`));
    sets.push({ name: `${id}_pods`, declaration: 'type ipv4_addr;', elements: pods.flatMap((x) => x.ips).sort() });
    policies.push({ namespace: p.namespace, name: p.name, id, ingress: p.ingress, egress: p.egress, selected: pods.map((x) => `${x.namespace}/${x.name}`), allowedCounter: `${id}_allowed`, droppedCounter: `${id}_dropped` });
  }
  return { rules: rules.join('\n'), sets, counters: policies.flatMap((p) => [p.allowedCounter, p.droppedCounter]), policies };
}

function policy(namespace: string, name: string): NetworkPolicy {
  const all = { matchLabels: {}, matchExpressions: [] };
  return { namespace, name, podSelector: all, ingress: true, egress: false, ingressRules: [], egressRules: [] };
}

function pod(namespace: string, name: string, ips: string[], node = 'n1'): PolicyPod {
  return { namespace, name, labels: {}, ips, namedPorts: [], node, hostNetwork: false };
}

function snapshot(policies: NetworkPolicy[], pods: PolicyPod[]): PolicySnapshot {
  return { policies, pods, namespaces: [] };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
};

interface Rig {
  nft: GatedNft;
  source: FakeSource;
  clock: FakeClock;
  engine: PolicyEngine;
  fulls: CounterValues[];
}

function rig(
  opts: {
    nft?: GatedNft;
    attachments?: AttachmentStore;
    compile?: (m: PolicyModel) => CompiledPolicy;
    logger?: typeof silentLogger;
    live?: () => { containerId: string; ifName: string }[] | undefined;
    init?: { fullCheckElements?: number; fullCheckEvery?: number };
  } = {},
): Rig {
  const nft = opts.nft ?? new GatedNft();
  const source = new FakeSource();
  const clock = new FakeClock();
  const fulls: CounterValues[] = [];
  const engine = new PolicyEngine(
    {
      nft,
      source,
      clock,
      logger: opts.logger ?? silentLogger,
      compile: opts.compile ?? fakeCompile,
      // The fake nft reads empty counter blocks only: values are checked where they are passed.
      fullScript: (c, values) => {
        fulls.push(new Map(values ?? []));
        return fullScript(c);
      },
      elementDiffScript,
      attachments: opts.attachments ?? new MemoryAttachmentStore(),
      ...(opts.live === undefined ? {} : { live: opts.live }),
    },
    { nodeName: 'n1', ...opts.init },
  );
  return { nft, source, clock, engine, fulls };
}

const isFull = (s: string): boolean => s.includes(`delete table ${T}`);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('PolicyEngine', () => {
  it('writes nothing before the source\'s first snapshot: the previous run\'s table stays in force', async () => {
    const nft = new GatedNft();
    await nft.apply(`add table ${T}\ntable ${T} {\nset old { type ipv4_addr; }\n}\nadd element ${T} old { 10.0.0.9 }\n`);
    const r = rig({ nft });
    await r.engine.start();
    r.clock.advance(35_000);
    await flush();
    expect(nft.scripts).toHaveLength(1);
    expect(nft.elements(T, 'old')).toEqual(['10.0.0.9']);
    expect(r.source.started).toBe(1);
    r.source.set(snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]));
    await flush();
    expect(nft.scripts).toHaveLength(2);
    expect(isFull(nft.scripts[1]!)).toBe(true);
    expect(nft.tables.get(T)!.sets.has('old')).toBe(false);
    expect(nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1']);
    await r.engine.stop();
  });

  it('a pod change is an element update; a policy change is a full rewrite', async () => {
    const r = rig();
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    expect(r.nft.scripts).toHaveLength(1);
    r.source.set(snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1']), pod('a', 'y', ['10.1.0.2']), pod('a', 'far', ['10.2.0.1'], 'n2')]));
    await flush();
    expect(r.nft.scripts).toHaveLength(2);
    expect(r.nft.scripts[1]).toBe(`add element ${T} p_a_deny_pods { 10.1.0.2 }\n`);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1', '10.1.0.2']);
    r.source.set(snapshot([policy('a', 'deny'), policy('a', 'web')], [pod('a', 'x', ['10.1.0.1'])]));
    await flush();
    expect(r.nft.scripts).toHaveLength(3);
    expect(isFull(r.nft.scripts[2]!)).toBe(true);
    expect(r.nft.elements(T, 'p_a_web_pods')).toEqual(['10.1.0.1']);
    expect(r.engine.status().applies).toEqual({ full: 2, elements: 1 });
    expect(r.engine.status().policies.map((p) => `${p.namespace}/${p.name}:${p.selected.join(',')}`)).toEqual(['a/deny:a/x', 'a/web:a/x']);
    await r.engine.stop();
  });

  it('a failed transaction keeps the rules in force and is followed by a full rewrite', async () => {
    const r = rig();
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    r.nft.failNext.push('Error: Could not process rule: No such file or directory');
    r.source.set(snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1']), pod('a', 'y', ['10.1.0.2'])]));
    await flush();
    expect(r.nft.scripts).toHaveLength(2);
    expect(isFull(r.nft.scripts[1]!)).toBe(false);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1']);
    expect(r.engine.status().failures).toBe(1);
    expect(r.engine.status().problem).toMatch(/cannot apply the policy table \(element update\).*No such file/);
    r.clock.advance(2000);
    await flush();
    expect(r.nft.scripts).toHaveLength(3);
    expect(isFull(r.nft.scripts[2]!)).toBe(true);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(r.engine.status().problem).toBeNull();
    await r.engine.stop();
  });

  it('a restart rewrites the table whole, carrying over the counters it reads from it', async () => {
    const first = rig();
    first.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await first.engine.start();
    await first.engine.stop();
    first.nft.count(T, 'p_a_deny_dropped', 7);
    expect(first.fulls[0]!.size).toBe(0);
    const second = rig({ nft: first.nft });
    second.source.snap = first.source.snap;
    await second.engine.start();
    expect(second.fulls).toHaveLength(1);
    expect(second.fulls[0]!.get('p_a_deny_dropped')).toEqual({ packets: 7, bytes: 700 });
    expect(second.nft.scripts.filter(isFull)).toHaveLength(2);
    await second.engine.stop();
  });

  it('batches: changes during a transaction go together in the next one', async () => {
    const r = rig();
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    r.nft.hold();
    r.source.set(snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1']), pod('a', 'y', ['10.1.0.2'])]));
    await flush();
    for (const ip of ['10.1.0.3', '10.1.0.4', '10.1.0.5']) {
      const pods = [...r.source.snap.pods, pod('a', `p${ip}`, [ip])];
      r.source.set(snapshot([policy('a', 'deny')], pods));
    }
    await flush();
    expect(r.nft.started).toHaveLength(2); // the first update, held
    r.nft.release();
    await flush();
    expect(r.nft.started).toHaveLength(3);
    expect(r.nft.scripts[2]).toBe(`add element ${T} p_a_deny_pods { 10.1.0.3, 10.1.0.4, 10.1.0.5 }\n`);
    await r.engine.stop();
  });

  it('podAttached resolves once its transaction is in; the pod, unknown to the source, is selected by a namespace-wide policy', async () => {
    const r = rig();
    r.source.snap = snapshot([policy('b', 'deny')], []);
    await r.engine.start();
    r.nft.hold();
    let done = false;
    const p = r.engine.podAttached('c1', 'eth0', 'b', 'web', ['10.1.0.7']).then(() => (done = true));
    await flush();
    expect(done).toBe(false);
    r.nft.release();
    await p;
    expect(r.nft.elements(T, 'p_b_deny_pods')).toEqual(['10.1.0.7']);
    expect(r.engine.status().policies[0]!.selected).toEqual(['b/web']);
    expect(r.engine.podDetached('c1', 'eth0')).toBe(true);
    expect(r.engine.podDetached('c1', 'eth0')).toBe(false);
    await flush();
    expect(r.nft.elements(T, 'p_b_deny_pods')).toEqual([]);
    await r.engine.stop();
  });

  it('an attached pod the source knows without IPs gets its CNI addresses; its labels stay the source\'s', async () => {
    const seen: PolicyModel[] = [];
    const compile = (m: PolicyModel): CompiledPolicy => (seen.push(m), fakeCompile(m));
    const e = rig({ compile });
    e.source.snap = snapshot([policy('a', 'deny')], [{ ...pod('a', 'x', [], 'n1'), labels: { app: 'x' } }]);
    await e.engine.start();
    await e.engine.podAttached('c1', 'eth0', 'a', 'x', ['10.1.0.8']);
    const m = seen.at(-1)!;
    expect(m.pods).toEqual([{ ...pod('a', 'x', ['10.1.0.8'], 'n1'), labels: { app: 'x' } }]);
    expect(m.namespaces).toEqual([{ name: 'a', labels: { 'kubernetes.io/metadata.name': 'a' } }]);
    expect([...m.local]).toEqual(['a/x']);
    await e.engine.stop();
  });

  it('podAttached before the first snapshot returns at once and logs why; the first snapshot includes the pod', async () => {
    const { logger, lines } = recordingLogger();
    const r = rig({ logger });
    await r.engine.start();
    await r.engine.podAttached('c1', 'eth0', 'b', 'web', ['10.1.0.7']);
    expect(r.nft.scripts).toHaveLength(0);
    expect(lines.find((l) => String(l['msg']).startsWith('a pod starts before NetworkPolicy is enforced'))).toMatchObject({ pod: 'b/web', containerId: 'c1' });
    r.source.set(snapshot([policy('b', 'deny')], []));
    await flush();
    expect(r.nft.elements(T, 'p_b_deny_pods')).toEqual(['10.1.0.7']);
    await r.engine.stop();
  });

  it('podAttached is bounded: a transaction that hangs lets it return after the wait, logged', async () => {
    const { logger, lines } = recordingLogger();
    const r = rig({ logger });
    r.source.snap = snapshot([policy('b', 'deny')], []);
    await r.engine.start();
    r.nft.hold();
    let done = false;
    const p = r.engine.podAttached('c1', 'eth0', 'b', 'web', ['10.1.0.7']).then(() => (done = true));
    await flush();
    r.clock.advance(2999);
    await flush();
    expect(done).toBe(false);
    r.clock.advance(1);
    await p;
    expect(lines.find((l) => String(l['msg']).startsWith('a pod starts before its policy is in the kernel'))).toMatchObject({ pod: 'b/web', waitedMs: 3000 });
    r.nft.release();
    await flush();
    expect(r.nft.elements(T, 'p_b_deny_pods')).toEqual(['10.1.0.7']);
    await r.engine.stop();
  });

  it('the periodic check rewrites a table deleted under it, and one whose set was changed', async () => {
    const r = rig();
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    await r.nft.deleteTable('inet', 'weft-policy');
    r.clock.advance(10_000);
    await flush();
    expect(r.nft.scripts).toHaveLength(2);
    expect(isFull(r.nft.scripts[1]!)).toBe(true);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1']);
    await r.nft.apply(`delete element ${T} p_a_deny_pods { 10.1.0.1 }\n`);
    r.clock.advance(10_000);
    await flush();
    expect(r.nft.scripts).toHaveLength(4);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1']);
    r.clock.advance(10_000);
    await flush();
    expect(r.nft.scripts).toHaveLength(4); // whole again: nothing to do
    await r.engine.stop();
  });

  it('a big table: the check reads its counters each time (a deleted table is rewritten at once) and its sets every n-th time only', async () => {
    const r = rig({ init: { fullCheckElements: 0, fullCheckEvery: 3 } });
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    expect(r.nft.scripts).toHaveLength(1);
    const lists = (): number => r.nft.listCalls;
    // Check 1 reads the whole table (sets equal), checks 2 and 3 the counters only.
    r.clock.advance(10_000);
    await flush();
    const afterWhole = lists();
    await r.nft.apply(`delete element ${T} p_a_deny_pods { 10.1.0.1 }\n`);
    r.clock.advance(10_000);
    await flush();
    r.clock.advance(10_000);
    await flush();
    expect(lists()).toBe(afterWhole); // no set read: the change is not seen yet
    expect(r.nft.scripts).toHaveLength(2); // only the tampering itself
    // Check 4 reads the whole table again and finds the set changed.
    r.clock.advance(10_000);
    await flush();
    expect(lists()).toBe(afterWhole + 1);
    expect(r.nft.scripts).toHaveLength(3);
    expect(isFull(r.nft.scripts[2]!)).toBe(true);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1']);
    // A deleted table is seen from its counters, at the very next check.
    await r.nft.deleteTable('inet', 'weft-policy');
    r.clock.advance(10_000);
    await flush();
    expect(r.nft.scripts).toHaveLength(4);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1']);
    await r.engine.stop();
  });

  it('a set nft lists in another form than written is rewritten once, then taken as the same', async () => {
    const r = rig();
    const odd = (m: PolicyModel): CompiledPolicy => {
      const c = fakeCompile(m);
      return { ...c, sets: c.sets.map((s) => ({ ...s, elements: s.elements.map((e) => `${e}/32`) })) };
    };
    const e = rig({ compile: odd, nft: r.nft });
    e.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await e.engine.start();
    // The fake keeps "10.1.0.1/32" as written; make it list the set as the kernel would (no /32).
    const fix = (): void => void r.nft.tables.get(T)!.sets.set('p_a_deny_pods', new Set(['10.1.0.1']));
    fix();
    e.clock.advance(10_000);
    await flush();
    expect(r.nft.scripts).toHaveLength(2);
    fix();
    e.clock.advance(10_000);
    await flush();
    e.clock.advance(10_000);
    await flush();
    expect(r.nft.scripts).toHaveLength(2);
    await e.engine.stop();
  });

  it('the check forgets attachments the pod guard no longer holds, and none while the guard cannot tell', async () => {
    let live: { containerId: string; ifName: string }[] | undefined = undefined;
    const r = rig({ live: () => live });
    r.source.snap = snapshot([policy('b', 'deny')], []);
    await r.engine.start();
    await r.engine.podAttached('c1', 'eth0', 'b', 'web', ['10.1.0.7']);
    await r.engine.podAttached('c2', 'eth0', 'b', 'db', ['10.1.0.8']);
    r.clock.advance(10_000);
    await flush();
    expect(r.engine.attachments()).toHaveLength(2);
    live = [{ containerId: 'c2', ifName: 'eth0' }];
    r.clock.advance(10_000);
    await flush();
    expect(r.engine.attachments().map((a) => a.containerId)).toEqual(['c2']);
    expect(r.nft.elements(T, 'p_b_deny_pods')).toEqual(['10.1.0.8']);
    await r.engine.stop();
  });

  it('a compile error keeps the rules in force and says so in status', async () => {
    let broken = false;
    const compile = (m: PolicyModel): CompiledPolicy => {
      if (broken) throw new Error('ipBlock 10.0.0.0/33 is not a CIDR');
      return fakeCompile(m);
    };
    const r = rig({ compile });
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    broken = true;
    r.source.set(snapshot([policy('a', 'deny')], []));
    await flush();
    expect(r.nft.scripts).toHaveLength(1);
    expect(r.nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.1']);
    expect(r.engine.status().problem).toMatch(/cannot compile.*10\.0\.0\.0\/33/);
    await r.engine.stop();
  });

  it('a script builder that throws is a failure, not a crash: the next change rewrites the table whole', async () => {
    const nft = new GatedNft();
    const source = new FakeSource();
    let throwOnce = true;
    const engine = new PolicyEngine(
      {
        nft,
        source,
        clock: new FakeClock(),
        logger: silentLogger,
        compile: fakeCompile,
        fullScript: (c) => fullScript(c),
        elementDiffScript: (a, b) => {
          if (throwOnce) {
            throwOnce = false;
            throw new Error('ERR_POLICY_DIFF');
          }
          return elementDiffScript(a, b);
        },
        attachments: new MemoryAttachmentStore(),
      },
      { nodeName: 'n1' },
    );
    source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await engine.start();
    source.set(snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1']), pod('a', 'y', ['10.1.0.2'])]));
    await flush();
    expect(engine.status()).toMatchObject({ failures: 1, problem: expect.stringContaining('cannot build the policy transaction') });
    source.set(snapshot([policy('a', 'deny')], [pod('a', 'y', ['10.1.0.2'])]));
    await flush();
    expect(isFull(nft.scripts.at(-1)!)).toBe(true);
    expect(nft.elements(T, 'p_a_deny_pods')).toEqual(['10.1.0.2']);
    await engine.stop();
  });

  it('attachments persisted in the state dir survive a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-policy-'));
    dirs.push(dir);
    const store = (): FileAttachmentStore => new FileAttachmentStore({ logger: silentLogger }, { stateDir: dir });
    const first = rig({ attachments: store() });
    first.source.snap = snapshot([policy('b', 'deny')], []);
    await first.engine.start();
    await first.engine.podAttached('c1', 'eth0', 'b', 'web', ['10.1.0.7']);
    await first.engine.podAttached('c2', 'eth0', 'b', 'db', ['10.1.0.8']);
    first.engine.podDetached('c2', 'eth0');
    await first.engine.stop();
    const second = rig({ attachments: store() });
    second.source.snap = snapshot([policy('b', 'deny')], []);
    await second.engine.start();
    expect(second.engine.attachments()).toEqual([{ containerId: 'c1', ifName: 'eth0', namespace: 'b', name: 'web', addresses: ['10.1.0.7'] }]);
    expect(second.nft.elements(T, 'p_b_deny_pods')).toEqual(['10.1.0.7']);
    await second.engine.stop();
  });

  it('status reports the source, per policy counters and the last apply', async () => {
    const r = rig();
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    r.nft.count(T, 'p_a_deny_allowed', 3);
    r.nft.count(T, 'p_a_deny_dropped', 5);
    await r.engine.refreshCounters();
    const s = r.engine.status();
    expect(s).toMatchObject({
      enabled: true,
      source: { kind: 'file', where: '/etc/weft/policies.yaml', synced: true, error: null, problems: [] },
      table: T,
      policies: [{ namespace: 'a', name: 'deny', ingress: true, egress: false, selected: ['a/x'], allowed: 3, dropped: 5 }],
      dropped: { ingress: null, egress: null },
      applies: { full: 1, elements: 0 },
      failures: 0,
      problem: null,
    });
    expect(s.lastApply?.kind).toBe('full');
    await r.engine.stop();
  });
});

describe('PolicyEngine status totals', () => {
  it('reports the drops per direction when the table has the node counters', async () => {
    const withTotals = (m: PolicyModel): CompiledPolicy => {
      const c = fakeCompile(m);
      return { ...c, rules: `${c.rules}\ncounter ingress_dropped { }`, counters: [...c.counters, 'ingress_dropped'] };
    };
    const r = rig({ compile: withTotals });
    r.source.snap = snapshot([policy('a', 'deny')], [pod('a', 'x', ['10.1.0.1'])]);
    await r.engine.start();
    r.nft.count(T, 'ingress_dropped', 4);
    await r.engine.refreshCounters();
    expect(r.engine.status().dropped).toEqual({ ingress: 4, egress: null });
    await r.engine.stop();
  });
});

describe('the policy table read back', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    [{ prefix: { addr: '10.0.0.0', len: 8 } }, '10.0.0.0/8'],
    [{ range: ['10.0.0.1', '10.0.0.9'] }, '10.0.0.1-10.0.0.9'],
    [{ concat: ['tcp', { range: [80, 90] }] }, 'tcp . 80-90'],
    [{ elem: { val: 'fd00::1', counter: { packets: 1 } } }, 'fd00::1'],
    [443, '443'],
  ])('element %j reads as %s', (json, text) => {
    expect(readPolicyTable([{ set: { name: 's', elem: [json] } }]).sets.get('s')).toEqual([text]);
  });

  it('reads counters and sets, ignoring what it does not know', () => {
    const r = readPolicyTable([{ metainfo: {} }, { counter: { name: 'c', packets: 2, bytes: 90 } }, { set: { name: 's', elem: ['10.0.0.2', '10.0.0.1'] } }, { set: { name: 'e' } }, 'junk', null]);
    expect([...r.counters]).toEqual([['c', { packets: 2, bytes: 90 }]]);
    expect([...r.sets]).toEqual([['s', ['10.0.0.1', '10.0.0.2']], ['e', []]]);
  });
});

describe('FileAttachmentStore', () => {
  it.each([
    ['not JSON', '{', 0],
    ['no list', '{"pods": 3}', 0],
    ['a hostile entry skipped', JSON.stringify({ pods: [{ containerId: '../x', ifName: 'eth0', namespace: 'a', name: 'b', addresses: [] }, { containerId: 'c', ifName: 'eth0', namespace: 'a', name: 'b', addresses: ['10.0.0.1'] }] }), 1],
  ])('%s', async (_what, text, n) => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-policy-'));
    dirs.push(dir);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'policy-pods.json'), text);
    const { logger, lines } = recordingLogger();
    expect(new FileAttachmentStore({ logger }, { stateDir: dir }).load()).toHaveLength(n);
    expect(lines.some((l) => l['level'] === 'warn')).toBe(true);
  });
});
