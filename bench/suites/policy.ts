/**
 * Policy suite (issue 17), on real routers in Kubernetes mode against the fake API server: 3 nodes,
 * bridge netfilter on (the policy's forward hook sees bridged frames), 2 lab pods per node (p1 a
 * target, p2 a client) described to the API as Pods of the namespace weft-bench. n1 and n2 trust
 * each other's underlay address (--trusted-subnets), so n1 ↔ n2 is on the kernel fast path and
 * n1 ↔ n3 on the encrypted sleeve: one cluster measures both paths.
 *
 *   enforcement  The client on n1 opens a new TCP connection to the target on every node every
 *                5 ms (a prober in its namespace; a probe is answered when the handshake completes
 *                within 500 ms). t0: a NetworkPolicy isolating the targets (ingress, nothing
 *                allowed) is created in the API. A node enforces it when the probes to its target
 *                stop being answered for good (the first probe of the final unanswered streak,
 *                held 1 s); all nodes: the latest. Then t1: the policy is deleted, timed the same
 *                way until they are answered again. Each router's status gives when its last
 *                transaction landed (policy.lastApply) and how long it took.
 *   load         1,000 Pod objects (10 namespaces, addresses 10.40.100.1 up; no real pods) and 100
 *                NetworkPolicies selecting all of them and the targets (one allows the clients).
 *                Per round: none, then the 100 in force (every router's status lists them and
 *                its last transaction is 1 s old), then none again; each time TCP throughput
 *                (iperf3, 1 stream) and TCP request-response latency (1-byte ping-pong on one
 *                connection) from n1's client to the targets on n2 (fast path) and n3 (sleeve).
 *                Ratio: with policies / mean of the two without, in the same round.
 */
import type { PolicyStatus, StatusReport } from '../../src/api/types.js';
import type { KubeApiControl } from '../../lab/kube-api-control.js';
import type { KubeKind } from '../../lab/kube-store.js';
import { iperf3Tcp, WeftCluster, type LabPod, type LabProcess } from '../../lab/index.js';
import { fmt, median, settledAt, summarize, type ProbeSample, type Settled, type Summary } from '../stats.js';
import {
  ALLOW_CLIENTS_POLICY,
  BENCH_NAMESPACE,
  DEFAULT_LOAD,
  denyTargetsPolicy,
  loadObjects,
  namespaceObject,
  podObject,
  type KubeObjectLike,
  type Load,
} from './policy-objects.js';

export interface PolicyBenchOptions {
  /** Enforcement runs (create and delete each). */
  runs: number;
  /** Rounds of the load comparison (none, 100 policies, none). */
  loadRounds: number;
  seconds: number;
  log: (line: string) => void;
}

const NODES = [0, 1, 2];
const PROBE_PORT = 7000;
const RR_PORT = 7001;
const PROBE_EVERY_MS = 5;
const PROBE_TIMEOUT_MS = 500;
const HOLD_MS = 1000;
const TIMEOUT_MS = 30_000;
const RR_ROUND_TRIPS = 5000;
const WAIT_IN_FORCE_MS = 300_000;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Prober: every INTERVAL ms, a new TCP connection to each target; prints "k sentMs 1|0" per probe
// once answered (handshake done) or not (error or TIMEOUT ms).
const PROBER = `
const net = require('node:net');
const [port, every, timeout, ...targets] = process.argv.slice(1);
let out = [];
setInterval(() => { if (out.length > 0) { process.stdout.write(out.join('\\n') + '\\n'); out = []; } }, 20);
setInterval(() => {
  const t = Date.now();
  targets.forEach((host, k) => {
    let done = false;
    const s = net.connect({ host, port: Number(port) });
    const fin = (ok) => { if (done) return; done = true; clearTimeout(timer); s.destroy(); out.push(k + ' ' + t + ' ' + (ok ? 1 : 0)); };
    const timer = setTimeout(() => fin(false), Number(timeout));
    s.once('connect', () => fin(true));
    s.once('error', () => fin(false));
  });
}, Number(every));
process.stderr.write('probing\\n');`;

// Acceptor for the probes (closes at once) and echo server for the request-response test.
const SERVERS = `
const net = require('node:net');
const [host, probePort, rrPort] = process.argv.slice(1);
net.createServer((s) => { s.on('error', () => {}); s.destroy(); }).listen({ host, port: Number(probePort) });
net.createServer((s) => { s.setNoDelay(true); s.on('error', () => {}); s.on('data', (d) => s.write(d)); }).listen({ host, port: Number(rrPort) }, () => process.stderr.write('listening\\n'));`;

// Request-response: one connection, 1 byte each way, N round trips after 200 of warm-up.
const RR_CLIENT = `
const net = require('node:net');
const [host, port, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const rtt = []; let t = 0n; let i = 0;
const s = net.connect({ host, port }, () => { s.setNoDelay(true); t = process.hrtime.bigint(); s.write('x'); });
s.on('data', () => {
  const now = process.hrtime.bigint();
  if (i >= 200) rtt.push(Number(now - t) / 1000);
  i++;
  if (rtt.length >= n) {
    rtt.sort((a, b) => a - b);
    const mean = rtt.reduce((a, b) => a + b, 0) / rtt.length;
    process.stdout.write(JSON.stringify({ n: rtt.length, meanUs: mean, p50Us: rtt[Math.ceil(rtt.length * 0.5) - 1], p99Us: rtt[Math.ceil(rtt.length * 0.99) - 1] }) + '\\n');
    s.destroy(); return;
  }
  t = process.hrtime.bigint(); s.write('x');
});
s.on('error', (e) => { process.stderr.write('rr: ' + e.message + '\\n'); process.exit(1); });`;

function policyStatus(s: StatusReport): PolicyStatus | undefined {
  return s.policy?.enabled === true ? s.policy : undefined;
}

/** Pods, Namespaces and NetworkPolicies in the fake API server, through its control socket. */
class PolicyObjects {
  constructor(private readonly control: KubeApiControl) {}

  async create(o: KubeObjectLike): Promise<void> {
    await this.control.createObject(KINDS[o.kind]!, o);
  }

  async delete(o: KubeObjectLike): Promise<void> {
    await this.control.deleteObject(KINDS[o.kind]!, o.metadata.name, o.metadata.namespace);
  }
}

const KINDS: Record<string, KubeKind> = { Pod: 'pods', Namespace: 'namespaces', NetworkPolicy: 'networkpolicies' };

/** Parses the prober's output: samples per target. */
export function parseProbes(out: string, targets: number): ProbeSample[][] {
  const per: ProbeSample[][] = Array.from({ length: targets }, () => []);
  for (const line of out.split('\n')) {
    const m = /^(\d+) (\d+) ([01])$/.exec(line);
    if (m === null) continue;
    per[Number(m[1])]?.push({ sentMs: Number(m[2]), ok: m[3] === '1' });
  }
  return per;
}

/** One change timed: per node, ms after the API call was made (NaN when not seen). */
export interface ChangeSample {
  /** The create or delete call answered. */
  apiMs: number;
  /** Per node: the first probe of the final streak (the change took effect before it was sent). */
  nodesMs: number[];
  /** Per node: the last probe of the earlier state (the change took effect after it was sent). */
  nodesAfterMs: number[];
  /** The latest node. */
  allMs: number;
  /** Per node: status.policy.lastApply.at − t0 (NaN when absent or older than t0). */
  applyAtMs: number[];
  /** Per node: how long that transaction took (lastApply.ms). */
  applyMs: number[];
}

interface Bed {
  c: WeftCluster;
  objects: PolicyObjects;
  client: LabPod;
  targets: LabPod[];
  servers: LabProcess[];
}

async function applyStates(c: WeftCluster): Promise<(PolicyStatus | undefined)[]> {
  return Promise.all(NODES.map(async (i) => policyStatus(await c.apiStatus(i))));
}

async function timeChange(b: Bed, change: () => Promise<void>, want: boolean, what: string, log: (l: string) => void): Promise<ChangeSample> {
  const prober = b.c.lab.spawn(b.client.ns, [process.execPath, '-e', PROBER, String(PROBE_PORT), String(PROBE_EVERY_MS), String(PROBE_TIMEOUT_MS), ...b.targets.map((t) => t.ipv4!)]);
  try {
    // Before the change every target is in the other state (checked over the last 300 ms).
    const start = Date.now();
    for (;;) {
      await delay(100);
      const per = parseProbes(prober.stdoutText(), b.targets.length);
      if (per.every((s) => settledAt(s, start, !want, 300) !== undefined || (s.length >= 40 && s.every((p) => p.ok === !want)))) break;
      if (Date.now() - start > 15_000) throw new Error(`${what}: the targets are not ${want ? 'unanswered' : 'answered'} before the change (${per.map((s) => `${s.filter((p) => p.ok).length}/${s.length} answered`).join(', ')})`);
    }
    const t0 = Date.now();
    await change();
    const apiMs = Date.now() - t0;
    const settled: (Settled | undefined)[] = b.targets.map(() => undefined);
    for (;;) {
      const per = parseProbes(prober.stdoutText(), b.targets.length);
      per.forEach((s, k) => (settled[k] ??= settledAt(s, t0, want, HOLD_MS)));
      if (settled.every((s) => s !== undefined)) break;
      if (Date.now() - t0 > TIMEOUT_MS) {
        log(`${what}: node(s) ${settled.map((s, k) => (s === undefined ? `n${k + 1}` : '')).filter(Boolean).join(', ')} not settled within ${TIMEOUT_MS / 1000} s`);
        break;
      }
      await delay(50);
    }
    const states = await applyStates(b.c);
    const at = states.map((p) => (p?.lastApply == null || p.lastApply.at < t0 ? NaN : p.lastApply.at - t0));
    const nodesMs = settled.map((s) => s?.atMs ?? NaN);
    return {
      apiMs,
      nodesMs,
      nodesAfterMs: settled.map((s) => s?.afterMs ?? NaN),
      allMs: nodesMs.some((x) => Number.isNaN(x)) ? NaN : Math.max(...nodesMs),
      applyAtMs: at,
      applyMs: states.map((p, k) => (Number.isNaN(at[k]!) ? NaN : (p?.lastApply?.ms ?? NaN))),
    };
  } finally {
    await prober.stop(2000);
  }
}

interface PathSample {
  tcpGbps: number;
  rr: { meanUs: number; p50Us: number; p99Us: number };
}

export interface LoadRound {
  round: number;
  /** Per path: without policies (before), with the load, without (after). */
  fastpath: { before: PathSample; load: PathSample; after: PathSample };
  sleeve: { before: PathSample; load: PathSample; after: PathSample };
  /** How long until every router had the load in force (status), and the policies back to none. */
  inForceMs: number;
  goneMs: number;
  /** The 100 create calls answered (ms after the first). */
  createdMs: number;
  /** Per router: status calls not answered within 10 s while the load went in, and went out. */
  unansweredStatus: { inForce: number[]; gone: number[] };
  /** How long the paths took to settle before each measurement (a fast-path fallback shows here). */
  settleMs: { before: number; load: number; after: number };
}

async function measurePath(b: Bed, server: LabPod, seconds: number): Promise<PathSample> {
  const t = await iperf3Tcp(b.c.lab, server.ns, server.ipv4!, b.client.ns, { seconds });
  const r = await b.c.lab.exec(b.client.ns, [process.execPath, '-e', RR_CLIENT, server.ipv4!, String(RR_PORT), String(RR_ROUND_TRIPS)], { timeoutMs: 120_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let rr: PathSample['rr'];
  try {
    rr = JSON.parse(line) as PathSample['rr'];
  } catch {
    throw new Error(`request-response to ${server.ipv4}: no result (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return { tcpGbps: t.gbps, rr };
}

/** n1 ↔ n2 on the fast path, every other pair on the direct sleeve. */
const WANTED_PATHS = (from: number, to: number) => (from + to === 1 ? 'fastpath' : 'direct');

async function measurePaths(b: Bed, seconds: number, what: string, log: (l: string) => void): Promise<{ fastpath: PathSample; sleeve: PathSample; settleMs: number }> {
  // A busy router can miss its fast-path probes and fall back to the sleeve for a while: wait for
  // the paths to settle (and say so), then check them before and after the measurement.
  const settleMs = await b.c.waitPaths(WANTED_PATHS, 60_000);
  if (settleMs > 1000) log(`${what}: the paths took ${fmt(settleMs / 1000, 1)} s to settle before the measurement`);
  const paths = async () => {
    await b.c.expectPaths(0, { n2: 'fastpath' }, what);
    const n3 = (await b.c.apiStatus(0)).peers.find((p) => p.nickname === 'n3')?.path;
    if (n3 !== 'direct' && n3 !== 'relay') throw new Error(`${what}: n1's path to n3 is ${n3}, not the sleeve`);
  };
  await paths();
  const fastpath = await measurePath(b, b.targets[1]!, seconds);
  const sleeve = await measurePath(b, b.targets[2]!, seconds);
  await paths();
  return { fastpath, sleeve, settleMs };
}

/**
 * Waits until every router lists exactly `names` (namespace/name) as its policies in force and its
 * last transaction is `quietMs` old; returns ms after `t0`.
 */
async function waitInForce(c: WeftCluster, names: ReadonlySet<string>, t0: number, what: string, log: (l: string) => void, quietMs = 1000): Promise<{ ms: number; unanswered: number[] }> {
  let seenAt = NaN;
  // A router busy compiling may not answer its API for a while: counted and said, not fatal.
  const silent = NODES.map(() => 0);
  for (;;) {
    const states = await Promise.all(
      NODES.map((i) =>
        c.apiStatus(i).then(
          (s) => policyStatus(s),
          () => {
            silent[i]!++;
            return undefined;
          },
        ),
      ),
    );
    const ok = states.every((p) => {
      if (p === undefined) return false;
      const have = new Set(p.policies.map((x) => `${x.namespace}/${x.name}`));
      return have.size === names.size && [...names].every((n) => have.has(n));
    });
    if (ok && Number.isNaN(seenAt)) seenAt = Date.now() - t0;
    if (!ok) seenAt = NaN;
    const last = Math.max(...states.map((p) => p?.lastApply?.at ?? 0));
    if (ok && Date.now() - last >= quietMs) {
      if (silent.some((n) => n > 0)) log(`${what}: status calls unanswered within 10 s while waiting: ${silent.map((n, i) => `n${i + 1} ${n}`).join(', ')}`);
      return { ms: seenAt, unanswered: silent };
    }
    if (Date.now() - t0 > WAIT_IN_FORCE_MS) {
      const got = states.map((p, i) => `n${i + 1}: ${p === undefined ? 'no policy status' : `${p.policies.length} policies${p.problem === null ? '' : `, problem ${p.problem}`}`}`).join('; ');
      throw new Error(`${what}: the routers do not have the ${names.size} policies in force within ${WAIT_IN_FORCE_MS / 1000} s (${got}; status calls unanswered: ${silent.join(', ')})`);
    }
    await delay(100);
  }
}

async function loadRound(b: Bed, load: Load, round: number, seconds: number, log: (l: string) => void): Promise<LoadRound> {
  const before = await measurePaths(b, seconds, `round ${round} before`, log);
  log(`round ${round} no policy: ${describe(before)}`);
  const names = new Set(load.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
  const allowedBefore = await allowedOf(b, 1);
  let t0 = Date.now();
  for (const p of load.policies) await b.objects.create(p);
  const createdMs = Date.now() - t0;
  const inForce = await waitInForce(b.c, names, t0, `round ${round}`, log);
  const selected = await selectedCount(b);
  const withLoad = await measurePaths(b, seconds, `round ${round} with the load`, log);
  // The measured connections went through the policy that allows the clients, on n2 and n3.
  const allowedAfter = await allowedOf(b, 1);
  if (!(allowedAfter > allowedBefore)) throw new Error(`round ${round}: n2's ${ALLOW_CLIENTS_POLICY} counted no allowed packet during the measurement (${allowedBefore} → ${allowedAfter})`);
  log(`round ${round} 100 policies (created in ${fmt(createdMs, 0)} ms; ${selected} local pods selected on the 3 routers, in force after ${fmt(inForce.ms, 0)} ms): ${describe(withLoad)}`);
  t0 = Date.now();
  for (const p of load.policies) await b.objects.delete(p);
  const gone = await waitInForce(b.c, new Set(), t0, `round ${round} deleted`, log);
  const after = await measurePaths(b, seconds, `round ${round} after`, log);
  log(`round ${round} no policy again: ${describe(after)}`);
  return {
    round,
    fastpath: { before: before.fastpath, load: withLoad.fastpath, after: after.fastpath },
    sleeve: { before: before.sleeve, load: withLoad.sleeve, after: after.sleeve },
    inForceMs: inForce.ms,
    goneMs: gone.ms,
    createdMs,
    unansweredStatus: { inForce: inForce.unanswered, gone: gone.unanswered },
    settleMs: { before: before.settleMs, load: withLoad.settleMs, after: after.settleMs },
  };
}

async function allowedOf(b: Bed, node: number): Promise<number> {
  const p = policyStatus(await b.c.apiStatus(node));
  return p?.policies.find((x) => x.namespace === BENCH_NAMESPACE && x.name === ALLOW_CLIENTS_POLICY)?.allowed ?? 0;
}

async function selectedCount(b: Bed): Promise<number> {
  const states = await applyStates(b.c);
  const all = new Set<string>();
  for (const p of states) for (const x of p?.policies ?? []) for (const s of x.selected) all.add(s);
  return all.size;
}

function describe(x: { fastpath: PathSample; sleeve: PathSample }): string {
  const one = (s: PathSample) => `${fmt(s.tcpGbps)} Gbit/s, rr ${fmt(s.rr.p50Us, 0)} µs p50 (${fmt(s.rr.p99Us, 0)} p99)`;
  return `fast path ${one(x.fastpath)}; sleeve ${one(x.sleeve)}`;
}

export async function runPolicySuite(o: PolicyBenchOptions): Promise<{ json: object; markdown: string; goals: string[] }> {
  const trust = (k: number) => ({ 0: ['--trusted-subnets', '198.18.0.2/32'], 1: ['--trusted-subnets', '198.18.0.1/32'] })[k] ?? [];
  const c = await WeftCluster.start({ nodes: 3, podsPerNode: 2, brNetfilter: true, kubernetes: {}, extraArgs: ['--log-level', 'warn'], perNodeArgs: trust });
  const creates: ChangeSample[] = [];
  const deletes: ChangeSample[] = [];
  const rounds: LoadRound[] = [];
  let selected = 0;
  const servers: LabProcess[] = [];
  try {
    if (c.lab.nodes[0]!.address !== '198.18.0.1' || c.lab.nodes[1]!.address !== '198.18.0.2') throw new Error(`the lab's node addresses changed: ${c.lab.nodes.map((n) => n.address).join(', ')}`);
    await c.waitEstablished(30_000);
    await c.waitPaths(WANTED_PATHS, 45_000);
    const objects = new PolicyObjects(c.kube!.control);
    const targets = NODES.map((i) => c.podsOn(i + 1).find((p) => p.name === 'p1')!);
    const clients = NODES.map((i) => c.podsOn(i + 1).find((p) => p.name === 'p2')!);
    await objects.create(namespaceObject(BENCH_NAMESPACE, { team: 'bench' }));
    for (const [pods, role] of [[targets, 'target'], [clients, 'client']] as const) {
      for (const p of pods) await objects.create(podObject({ namespace: BENCH_NAMESPACE, name: `${p.node.name}-${p.name}`, node: p.node.name, labels: { role }, ipv4: p.ipv4!, ipv6: p.ipv6 }));
    }
    // Static neighbours between the client and the targets: no ARP timer in the figures.
    const client = clients[0]!;
    for (const t of targets) {
      await c.lab.exec(client.ns, ['ip', 'neigh', 'replace', t.ipv4!, 'lladdr', t.mac, 'dev', client.ifName, 'nud', 'permanent']);
      await c.lab.exec(t.ns, ['ip', 'neigh', 'replace', client.ipv4!, 'lladdr', client.mac, 'dev', t.ifName, 'nud', 'permanent']);
    }
    for (const t of targets) {
      const s = c.lab.spawn(t.ns, [process.execPath, '-e', SERVERS, t.ipv4!, String(PROBE_PORT), String(RR_PORT)]);
      servers.push(s);
    }
    for (const s of servers) {
      const until = Date.now() + 10_000;
      while (!s.stderrText().includes('listening')) {
        if (Date.now() > until) throw new Error(`a target's servers did not start: ${s.stderrText()}`);
        await delay(50);
      }
    }
    // Every router reads policies from the API (auto in Kubernetes mode) and has read them once.
    const since = Date.now();
    for (;;) {
      const states = await applyStates(c);
      if (states.every((p) => p?.source?.synced === true)) break;
      if (Date.now() - since > 30_000) {
        throw new Error(`the routers' policy sources are not synced within 30 s: ${states.map((p, i) => `n${i + 1} ${p === undefined ? 'no policy status' : JSON.stringify(p.source)}`).join('; ')}`);
      }
      await delay(100);
    }
    const bed: Bed = { c, objects, client, targets, servers };
    const deny = denyTargetsPolicy();
    for (let run = 1; run <= o.runs; run++) {
      const cr = await timeChange(bed, () => objects.create(deny), false, `run ${run} create`, o.log);
      creates.push(cr);
      o.log(`run ${run} policy created: enforced on all nodes after ${fmt(cr.allMs, 0)} ms (${nodeLine(cr)})`);
      const dl = await timeChange(bed, () => objects.delete(deny), true, `run ${run} delete`, o.log);
      deletes.push(dl);
      o.log(`run ${run} policy deleted: lifted on all nodes after ${fmt(dl.allMs, 0)} ms (${nodeLine(dl)})`);
    }
    const load = loadObjects({ ...DEFAULT_LOAD, nodes: c.lab.nodes.map((n) => n.name) });
    const t0 = Date.now();
    for (const ns of load.namespaces) await objects.create(ns);
    for (const p of load.pods) await objects.create(p);
    const pathsNow = (await c.apiStatus(0)).peers.map((p) => `${p.nickname} ${p.path}`).join(', ');
    o.log(`load: ${load.namespaces.length} namespaces, ${load.pods.length} Pod objects created in ${fmt((Date.now() - t0) / 1000)} s; ${load.policies.length} policies per round; n1's paths now: ${pathsNow}`);
    for (let round = 1; round <= o.loadRounds; round++) {
      rounds.push(await loadRound(bed, load, round, o.seconds, o.log));
    }
    selected = load.selected.size;
  } finally {
    for (const s of servers) await s.stop(2000);
    await c.destroy();
  }
  return report(o, creates, deletes, rounds, selected);
}

function nodeLine(s: ChangeSample): string {
  return NODES.map((k) => `n${k + 1} ${fmt(s.nodesMs[k]!, 0)} (after ${fmt(s.nodesAfterMs[k]!, 0)}), lastApply +${fmt(s.applyAtMs[k]!, 0)} took ${fmt(s.applyMs[k]!, 1)}`).join('; ') + ` ms; API call ${fmt(s.apiMs, 0)} ms`;
}

type PathName = 'fastpath' | 'sleeve';

/** Ratio of the run with the load to the mean of the two without, per round. */
export function loadRatio(before: number, load: number, after: number): number {
  const ref = (before + after) / 2;
  return ref > 0 ? load / ref : NaN;
}

function report(o: PolicyBenchOptions, creates: ChangeSample[], deletes: ChangeSample[], rounds: LoadRound[], selected: number): { json: object; markdown: string; goals: string[] } {
  const changeRows = (label: string, xs: ChangeSample[]): [string, Summary][] => [
    [`${label}: the API call answered`, summarize(xs.map((s) => s.apiMs))],
    ...NODES.map((k): [string, Summary] => [`${label}: n${k + 1}'s transaction landed (status lastApply)`, summarize(xs.map((s) => s.applyAtMs[k]!))]),
    ...NODES.map((k): [string, Summary] => [`${label}: n${k + 1} enforces (probes)`, summarize(xs.map((s) => s.nodesMs[k]!))]),
    [`**${label}: all 3 nodes**`, summarize(xs.map((s) => s.allMs))],
  ];
  const rows = [...changeRows('created', creates), ...changeRows('deleted', deletes)];
  const applyMs = summarize([...creates, ...deletes].flatMap((s) => s.applyMs));
  const table = [
    '| ms after the API call was made | p50 | p99 | min | max | n |',
    '|---|---|---|---|---|---|',
    ...rows.map(([what, s]) => `| ${what} | ${fmt(s.p50, 0)} | ${fmt(s.p99, 0)} | ${fmt(s.min, 0)} | ${fmt(s.max, 0)} | ${s.n} |`),
  ];
  const ratio = (p: PathName, m: (s: PathSample) => number) => rounds.map((r) => loadRatio(m(r[p].before), m(r[p].load), m(r[p].after)));
  const med = (p: PathName, which: 'before' | 'load' | 'after', m: (s: PathSample) => number) => median(rounds.map((r) => m(r[p][which])));
  const tput = (s: PathSample) => s.tcpGbps;
  const rrMean = (s: PathSample) => s.rr.meanUs;
  const rrP50 = (s: PathSample) => s.rr.p50Us;
  const rrP99 = (s: PathSample) => s.rr.p99Us;
  // Latency ratio as a rate (no policy / with policy), so ≥ 0.95 reads the same way as throughput.
  const inv = (xs: number[]) => xs.map((x) => 1 / x);
  const summary = {
    fastpath: { tcpRatio: median(ratio('fastpath', tput)), rrRateRatio: median(inv(ratio('fastpath', rrMean))), rrP50Ratio: median(ratio('fastpath', rrP50)), rrP99Ratio: median(ratio('fastpath', rrP99)) },
    sleeve: { tcpRatio: median(ratio('sleeve', tput)), rrRateRatio: median(inv(ratio('sleeve', rrMean))), rrP50Ratio: median(ratio('sleeve', rrP50)), rrP99Ratio: median(ratio('sleeve', rrP99)) },
  };
  const loadRows = (['fastpath', 'sleeve'] as const).map((p) => {
    const name = p === 'fastpath' ? 'n1 → n2, fast path' : 'n1 → n3, sleeve';
    return (
      `| ${name} | ${fmt(med(p, 'before', tput))} · ${fmt(med(p, 'load', tput))} · ${fmt(med(p, 'after', tput))} | **${fmt(summary[p].tcpRatio)}** | ` +
      `${fmt(med(p, 'before', rrMean), 0)} · ${fmt(med(p, 'load', rrMean), 0)} · ${fmt(med(p, 'after', rrMean), 0)} | **${fmt(summary[p].rrRateRatio)}** | ` +
      `${fmt(med(p, 'before', rrP50), 0)} · ${fmt(med(p, 'load', rrP50), 0)} · ${fmt(med(p, 'after', rrP50), 0)} (${fmt(summary[p].rrP50Ratio)}) | ` +
      `${fmt(med(p, 'before', rrP99), 0)} · ${fmt(med(p, 'load', rrP99), 0)} · ${fmt(med(p, 'after', rrP99), 0)} |`
    );
  });
  const inForce = summarize(rounds.map((r) => r.inForceMs));
  const markdown = [
    `3 routers in Kubernetes mode against the fake API server, bridge netfilter on, policy table \`inet weft-policy\`; n1 ↔ n2 on the fast path, n1 ↔ n3 on the sleeve. Percentiles are nearest-rank.`,
    '',
    `**Policy change → enforcement on every node**, ${o.runs} run(s). t0: a NetworkPolicy isolating one pod on each node (ingress, nothing allowed) is created in the API (then deleted: t1). ` +
      `A client pod on n1 opens a new TCP connection to each of the 3 pods every ${PROBE_EVERY_MS} ms (answered: the handshake completes within ${PROBE_TIMEOUT_MS} ms); a node enforces the change at the first probe of the final streak of the new state (held ${HOLD_MS / 1000} s), ` +
      `so a figure is late by at most the ${PROBE_EVERY_MS} ms between probes. lastApply: the router's own time of its transaction (status), read after the probes settled.`,
    '',
    ...table,
    '',
    `Transaction time (lastApply.ms, both directions, all nodes): p50 ${fmt(applyMs.p50, 1)} ms, p99 ${fmt(applyMs.p99, 1)} ms.`,
    '',
    `**Pod-to-pod traffic with ${rounds.length === 0 ? '–' : '100'} policies selecting ${selected} Pod objects (and the 3 targets) in force**, ${rounds.length} round(s) of none · with the load · none again (medians over rounds); ` +
      `the 1,000 Pod objects are in the API in every state, spread over the 3 nodes, so each router isolates ~333 of them. In force: every router lists the policies and its last transaction is 1 s old (p50 ${fmt(inForce.p50, 0)} ms after the first create). ` +
      `Ratio: with the load / mean of the two without, per round, median; latency ratio as rates (mean round trip without / with). TCP: iperf3, 1 stream, ${o.seconds} s; request-response: 1 byte each way on one TCP connection, ${RR_ROUND_TRIPS} round trips (Node on both ends).`,
    '',
    '| path | TCP Gbit/s (none · load · none) | ratio | request-response mean µs (none · load · none) | rate ratio | p50 µs (none · load · none) (p50 load / none) | p99 µs (none · load · none) |',
    '|---|---|---|---|---|---|---|',
    ...loadRows,
    '',
    `While the 100 policies went in: created in ${fmt(median(rounds.map((r) => r.createdMs)), 0)} ms, in force on every router after ${fmt(inForce.p50, 0)} ms (p50; gone again after ${fmt(median(rounds.map((r) => r.goneMs)), 0)} ms); ` +
      `status calls a router left unanswered for 10 s: ${rounds.map((r) => `${r.unansweredStatus.inForce.reduce((a, b) => a + b, 0)} in, ${r.unansweredStatus.gone.reduce((a, b) => a + b, 0)} out`).join('; ') || '–'} (per round); ` +
      `longest wait for the paths to settle before a measurement: ${fmt(Math.max(0, ...rounds.flatMap((r) => [r.settleMs.before, r.settleMs.load, r.settleMs.after])) / 1000, 1)} s (above 0: a path was not as wanted at first, e.g. a router had fallen back from the fast path).`,
  ].join('\n');
  const check = (ok: boolean, text: string) => `${ok ? 'met' : 'MISSED'}: ${text}`;
  const goals = (['fastpath', 'sleeve'] as const).flatMap((p) => [
    check(summary[p].tcpRatio >= 0.95, `${p === 'fastpath' ? 'fast path' : 'sleeve'} TCP throughput with 100 policies ≥ 0.95 × none: ${fmt(summary[p].tcpRatio)}`),
    check(summary[p].rrRateRatio >= 0.95, `${p === 'fastpath' ? 'fast path' : 'sleeve'} request-response rate with 100 policies ≥ 0.95 × none: ${fmt(summary[p].rrRateRatio)}`),
  ]);
  return {
    json: {
      runs: o.runs,
      loadRounds: o.loadRounds,
      creates,
      deletes,
      rounds,
      summary: { enforcement: Object.fromEntries(rows), transactionMs: applyMs, load: summary, inForceMs: inForce, selectedPodObjects: selected },
    },
    markdown,
    goals,
  };
}
