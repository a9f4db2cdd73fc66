/**
 * Kubernetes suite (issue 16), on real routers in Kubernetes mode against the fake API server
 * (lab/kube-api-main.ts on an underlay host): 3 nodes, discovery from Node objects only (no
 * --peer), IPAM blocks as Leases (--ipam-range), encrypted sleeve (no fast path). Lab pods with
 * fixed addresses on every node; n3's Node and router are deferred. Per run:
 *
 *   join      t0 = n3's Node created, then its router started at once (as a kubelet registers its
 *             Node and the DaemonSet's pod starts there). Measured until the pod on n1 gets a
 *             reply from the pod on n3 (ping -i 0.05: one probe every 50 ms, reply times from
 *             ping -D). Breakdown: the Node created (the API call's answer), n3's API answering
 *             (the process started), n3's own Node published, n1 listing n3 as a peer from Nodes,
 *             n1 seeing n3 established (status polled every 50 ms).
 *   reclaim   n3 allocates one address (so it holds a block Lease), its router is stopped, and
 *             t0 = its Node deleted. Measured until every Lease n3 held names a live router
 *             (the fake API server polled through its control socket every 25 ms). Breakdown:
 *             the first Lease taken over, n1 and n2 having forgotten n3 (nodesDeleted counted).
 *
 * The pods have static neighbour entries for each other, so the kernel's ARP retry timer (1 s
 * after an unanswered request) is not part of the figure.
 *
 * n3 keeps its state dir (its identity) across runs unless `freshIdentity` is set: a Node deleted
 * and registered again with the same router is what a re-registering machine does.
 */
import { rmSync } from 'node:fs';
import type { IpamStatus, StatusReport } from '../../src/api/types.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import type { LabProcess } from '../../lab/lab.js';
import { fmt, summarize, type Summary } from '../stats.js';

export interface KubernetesBenchOptions {
  runs: number;
  /** A new state dir (new identity) for n3 before each join. */
  freshIdentity: boolean;
  log: (line: string) => void;
}

/** One join: ms after t0 (NaN when not seen). */
export interface JoinSample {
  nodeCreatedMs: number;
  routerApiMs: number;
  ownNodePublishedMs: number;
  peerFromNodesMs: number;
  establishedMs: number;
  firstReplyMs: number;
  /** The first reply's icmp_seq (probes go out every 50 ms from 200 ms before t0). */
  firstReplySeq: number;
  /** n1's path to n3 right after the first reply: the sleeve, direct or through a relay (checked: never the fast path). */
  path: 'direct' | 'relay';
}

/** One reclaim: ms after t0 (NaN when not seen). */
export interface ReclaimSample {
  blocks: number;
  firstTakenMs: number;
  forgottenMs: number;
  reclaimedMs: number;
  /** The live routers that took the blocks over (peer nickname → blocks). */
  takenBy: Record<string, number>;
}

const N1 = 0;
const N2 = 1;
const N3 = 2;
const TIMEOUT_MS = 60_000;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `whenTrue` for a breakdown point: NaN (shown as –) when not seen in time, never a rejection. */
function seen(t0: number, everyMs: number, probe: () => Promise<boolean>, what: string): Promise<number> {
  return whenTrue(t0, everyMs, probe, what).catch(() => NaN);
}

/** Polls `probe` every `everyMs` until it returns true; resolves with ms after `t0` (wall clock). */
async function whenTrue(t0: number, everyMs: number, probe: () => Promise<boolean>, what: string): Promise<number> {
  for (;;) {
    let ok = false;
    try {
      ok = await probe();
    } catch {
      // not answering yet
    }
    if (ok) return Date.now() - t0;
    if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`${what}: not within ${TIMEOUT_MS / 1000} s`);
    await delay(everyMs);
  }
}

/** The first reply line of `ping -D`: its wall time (ms) and icmp_seq. */
export function firstPingReply(out: string): { atMs: number; seq: number } | undefined {
  const m = /^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+)/m.exec(out);
  return m === null ? undefined : { atMs: Number(m[1]) * 1000, seq: Number(m[2]) };
}

async function ipamReady(c: WeftCluster, i: number): Promise<boolean> {
  return (await c.api<IpamStatus>(i, 'GET', '/v1/ipam/status')).ready.ok;
}

async function join(c: WeftCluster, run: number): Promise<JoinSample> {
  const [from, to] = [c.podsOn(1)[0]!, c.podsOn(3)[0]!];
  const pinger: LabProcess = c.lab.spawn(from.ns, ['stdbuf', '-oL', 'ping', '-n', '-D', '-i', '0.05', to.ipv4!]);
  try {
    // Probes have been going out (and getting nowhere) before t0.
    await delay(200);
    if (firstPingReply(pinger.stdoutText()) !== undefined) throw new Error(`run ${run}: n1's pod reaches n3's pod before n3 joined`);
    const t0 = Date.now();
    let startError: unknown;
    const failed = (err: unknown) => {
      startError ??= err;
      return NaN;
    };
    const nodeCreated = c.createNode(N3).then(() => Date.now() - t0, failed);
    // startRouter checks through the CLI (a process per try, 200 ms apart): the socket is polled
    // here instead.
    const started = c.startRouter(N3).catch(failed);
    const routerApi = seen(t0, 50, async () => (await c.apiStatus(N3)).name !== '', 'n3 answers on its API socket');
    const n3 = (s: StatusReport) => s.kubernetes?.peersFromNodes.some((p) => p.node === 'n3') === true;
    const published = seen(t0, 50, async () => (await c.apiStatus(N3)).kubernetes?.ownNode === 'published', 'n3 publishes its Node');
    const fromNodes = seen(t0, 50, async () => n3(await c.apiStatus(N1)), 'n1 lists n3 from Nodes');
    const established = seen(
      t0,
      50,
      async () => (await c.apiStatus(N1)).peers.some((p) => p.nickname === 'n3' && p.state === 'established' && p.path !== 'none'),
      'n1 sees n3 established',
    );
    let reply: { atMs: number; seq: number } | undefined;
    for (;;) {
      reply = firstPingReply(pinger.stdoutText());
      if (reply !== undefined) break;
      if (startError !== undefined) throw startError;
      if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`run ${run}: no reply from n3's pod within ${TIMEOUT_MS / 1000} s`);
      await delay(10);
    }
    await started;
    // The suite measures the encrypted sleeve: the reply must have come over it, not the kernel path.
    const path = (await c.apiStatus(N1)).peers.find((p) => p.nickname === 'n3')?.path ?? 'unknown';
    if (path !== 'direct' && path !== 'relay') throw new Error(`run ${run}: n1's path to n3 is ${path} after the first reply, not the sleeve (direct or relay) this suite measures`);
    const s: JoinSample = {
      nodeCreatedMs: await nodeCreated,
      routerApiMs: await routerApi,
      ownNodePublishedMs: await published,
      peerFromNodesMs: await fromNodes,
      establishedMs: await established,
      firstReplyMs: reply.atMs - t0,
      firstReplySeq: reply.seq,
      path,
    };
    return s;
  } finally {
    pinger.kill('SIGINT');
    await pinger.exited;
  }
}

async function reclaim(c: WeftCluster, run: number): Promise<ReclaimSample> {
  await whenTrue(Date.now(), 100, () => ipamReady(c, N3), `run ${run}: n3's IPAM ready`);
  await c.api(N3, 'POST', '/v1/ipam/allocate', { containerId: `bench-${run}`, ifName: 'eth0' });
  const names = await Promise.all([N1, N2, N3].map(async (i) => (await c.apiStatus(i)).name));
  const n3Name = names[N3]!;
  const held = [...(await c.blockHolders())].filter(([, h]) => h === n3Name).map(([cidr]) => cidr);
  if (held.length === 0) throw new Error(`run ${run}: n3 holds no block after an allocation`);
  const deleted = async (i: number) => (await c.apiStatus(i)).kubernetes?.nodesDeleted ?? 0;
  const deletedBefore = await Promise.all([N1, N2].map(deleted));
  await c.stopRouter(N3);
  const t0 = Date.now();
  await c.deleteNode(N3);
  const forgotten = Promise.all(
    [N1, N2].map((i, k) => seen(t0, 50, async () => (await deleted(i)) > deletedBefore[k]!, `run ${run}: n${i + 1} forgets n3`)),
  ).then((xs) => Math.max(...xs));
  let firstTakenMs = NaN;
  let holders = new Map<string, string>();
  const reclaimedMs = await whenTrue(
    t0,
    25,
    async () => {
      holders = await c.blockHolders();
      const now = held.map((b) => holders.get(b));
      if (Number.isNaN(firstTakenMs) && now.some((h) => h !== n3Name)) firstTakenMs = Date.now() - t0;
      return now.every((h) => h === names[N1] || h === names[N2]);
    },
    `run ${run}: n3's blocks reclaimed`,
  );
  const takenBy: Record<string, number> = {};
  for (const b of held) {
    const nick = `n${names.indexOf(holders.get(b) ?? '') + 1}`;
    takenBy[nick] = (takenBy[nick] ?? 0) + 1;
  }
  return { blocks: held.length, firstTakenMs, forgottenMs: await forgotten, reclaimedMs, takenBy };
}

export async function runKubernetesSuite(o: KubernetesBenchOptions): Promise<{ json: object; markdown: string }> {
  const c = await WeftCluster.start({
    nodes: 3,
    podsPerNode: 1,
    deferStart: [N3],
    kubernetes: { deferNodes: [N3] },
    extraArgs: ['--log-level', 'warn', '--ipam-range', '10.44.0.0/16'],
  });
  const joins: JoinSample[] = [];
  const reclaims: ReclaimSample[] = [];
  try {
    await c.waitEstablished(30_000);
    for (const i of [N1, N2]) await whenTrue(Date.now(), 100, () => ipamReady(c, i), `n${i + 1}'s IPAM ready`);
    // Static neighbours between the two pods: the figure is the overlay's, not the ARP retry timer's.
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(3)[0]!];
    await c.lab.exec(a.ns, ['ip', 'neigh', 'replace', b.ipv4!, 'lladdr', b.mac, 'dev', a.ifName, 'nud', 'permanent']);
    await c.lab.exec(b.ns, ['ip', 'neigh', 'replace', a.ipv4!, 'lladdr', a.mac, 'dev', b.ifName, 'nud', 'permanent']);
    for (let run = 1; run <= o.runs; run++) {
      if (o.freshIdentity) rmSync(c.stateDir(N3), { recursive: true, force: true });
      const j = await join(c, run);
      joins.push(j);
      o.log(
        `run ${run} join: pod n1 → pod n3 after ${fmt(j.firstReplyMs, 0)} ms (Node created ${fmt(j.nodeCreatedMs, 0)}, n3 API socket ${fmt(j.routerApiMs, 0)}, ` +
          `n3 published ${fmt(j.ownNodePublishedMs, 0)}, n1 lists n3 ${fmt(j.peerFromNodesMs, 0)}, established ${fmt(j.establishedMs, 0)} ms; first reply icmp_seq ${j.firstReplySeq}, over the sleeve ${j.path})`,
      );
      const r = await reclaim(c, run);
      reclaims.push(r);
      o.log(
        `run ${run} reclaim: ${r.blocks} block(s) of n3 held by live routers ${fmt(r.reclaimedMs, 0)} ms after its Node was deleted ` +
          `(first ${fmt(r.firstTakenMs, 0)} ms, n1 and n2 forgot n3 by ${fmt(r.forgottenMs, 0)} ms; taken by ${Object.entries(r.takenBy).map(([k, v]) => `${k} ${v}`).join(', ')})`,
      );
    }
  } finally {
    await c.destroy();
  }
  const joinRows: [string, Summary][] = [
    ['Node created (API answer)', summarize(joins.map((s) => s.nodeCreatedMs))],
    ["n3's router answers on its API socket (process started)", summarize(joins.map((s) => s.routerApiMs))],
    ['n3 published on its Node', summarize(joins.map((s) => s.ownNodePublishedMs))],
    ['n1 lists n3 as a peer from Nodes', summarize(joins.map((s) => s.peerFromNodesMs))],
    ['n1 sees n3 established', summarize(joins.map((s) => s.establishedMs))],
    ['**pod on n1 reaches pod on n3** (first ping reply)', summarize(joins.map((s) => s.firstReplyMs))],
    ["of which after n3's API answered (discovery, mesh, keys, path)", summarize(joins.map((s) => s.firstReplyMs - s.routerApiMs))],
  ];
  const reclaimRows: [string, Summary][] = [
    ['first Lease of n3 taken over', summarize(reclaims.map((s) => s.firstTakenMs))],
    ['n1 and n2 have forgotten n3 (status polled)', summarize(reclaims.map((s) => s.forgottenMs))],
    ['**every Lease n3 held names a live router**', summarize(reclaims.map((s) => s.reclaimedMs))],
  ];
  const table = (rows: [string, Summary][]) => [
    '| ms after t0 | p50 | p99 | min | max |',
    '|---|---|---|---|---|',
    ...rows.map(([what, s]) => `| ${what} | ${fmt(s.p50, 0)} | ${fmt(s.p99, 0)} | ${fmt(s.min, 0)} | ${fmt(s.max, 0)} |`),
  ];
  const taken: Record<string, number> = {};
  for (const r of reclaims) for (const [k, v] of Object.entries(r.takenBy)) taken[k] = (taken[k] ?? 0) + v;
  const markdown = [
    `3 routers in Kubernetes mode against the fake API server (discovery from Nodes, no --peer; IPAM blocks as Leases), encrypted sleeve; ${o.runs} run(s); ` +
      `n3 ${o.freshIdentity ? 'with a new identity (state dir removed) each run' : 'keeps its identity (state dir) across runs'}. Percentiles are nearest-rank.`,
    '',
    '**Node appears → pod-to-pod traffic.** t0: n3\'s Node is created and its router started at once (as a kubelet registers a Node and the DaemonSet\'s pod starts on it). ' +
      'The pod on n1 pings the pod on n3 every 50 ms (static neighbour entries, so no ARP timer is measured); status polled every 50 ms.',
    '',
    ...table(joinRows),
    '',
    `n1's path to n3 right after the first reply (checked to be the sleeve in every run): direct ${joins.filter((j) => j.path === 'direct').length}, relay ${joins.filter((j) => j.path === 'relay').length}.`,
    '',
    `**Node deleted → its blocks reclaimed.** n3 allocates one address (it holds ${blockRange(reclaims.map((r) => r.blocks))} block Lease(s) in each run), its router is stopped, t0: its Node is deleted. ` +
      'The Leases are read from the fake API server every 25 ms.',
    '',
    ...table(reclaimRows),
    '',
    `Blocks taken over by: ${Object.entries(taken).map(([k, v]) => `${k} ${v}`).join(', ')} (a Lease has one holder: each block went to exactly one).`,
  ].join('\n');
  return {
    json: { freshIdentity: o.freshIdentity, joins, reclaims, summary: { join: Object.fromEntries(joinRows), reclaim: Object.fromEntries(reclaimRows) } },
    markdown,
  };
}

/** "1", or "1 to 3" when the runs differ. */
function blockRange(counts: number[]): string {
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  return lo === hi ? String(lo) : `${lo} to ${hi}`;
}
