/**
 * `sudo npm run demo`: a virtual 3-node cluster in network namespaces, one weft router per node,
 * two pods per node, then a live view of every router's status while traffic flows. Everything is
 * torn down on Ctrl-C or at the end.
 *
 *   node dist/lab/demo.js [--seconds N] [--nodes N] [--no-fastpath] [--graph-dir DIR]
 *   (default 60 s, 3 nodes; 0 s = until Ctrl-C)
 *
 * The lab's underlay (198.18.0.0/24) is declared a trusted subnet, so pod traffic between nodes
 * takes the kernel VXLAN fast path (the mesh stays encrypted); with --no-fastpath everything runs
 * on the encrypted sleeve. Timeline: pings, a 10 s iperf3 stream from t=5 s; at t=17 s the VXLAN
 * port between n1 and n2 is cut (that pair falls back to the sleeve, the others stay fast) and at
 * t=26 s healed (back to the fast path, after the hysteresis); at t=38 s the whole underlay
 * between the first and last node is cut (their traffic moves to a relay), healed at t=50 s.
 * Each switch is printed with its measured time. The picture of the mesh (`weft graph`, DOT and
 * SVG) is written to --graph-dir (default /tmp/weft-demo) once every pair is up (mesh.dot,
 * mesh.svg) and again while the relay is in use (mesh-relay.dot, mesh-relay.svg).
 *
 * With --kubernetes the routers run in Kubernetes mode against the project's fake API server (on
 * an underlay host): no --peer, each router publishes itself on its Node object and finds the
 * others from theirs; IPAM blocks are Leases (range 10.44.0.0/16, one address allocated on each
 * router so each holds a block). Same timeline; the live view adds each router's Kubernetes state
 * (its Node, synced, peers from Nodes, the watch) and its IPAM blocks.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fastStateTowards, type FastState } from './path-switch.js';
import { iperf3Tcp, ping } from './traffic.js';
import type { IpamStatus, StatusReport } from '../src/api/types.js';
import { WeftCluster } from './weft-cluster.js';

const USAGE =
  'usage: npm run demo -- [--seconds N (default 60; 0 runs until Ctrl-C)] [--nodes N (1-20, default 3)] [--no-fastpath] [--graph-dir DIR (default /tmp/weft-demo)]\n' +
  '         [--kubernetes (routers in Kubernetes mode against a fake API server: discovery from Node objects, IPAM blocks as Leases)]';

function options(): { seconds?: string; nodes?: string; 'no-fastpath'?: boolean; kubernetes?: boolean; 'graph-dir'?: string; help?: boolean } {
  try {
    return parseArgs({
      options: {
        seconds: { type: 'string', default: '60' },
        nodes: { type: 'string', default: '3' },
        'no-fastpath': { type: 'boolean', default: false },
        kubernetes: { type: 'boolean', default: false },
        'graph-dir': { type: 'string', default: '/tmp/weft-demo' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

const values = options();
if (values.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const fast = !values['no-fastpath'];
const kubernetes = values.kubernetes === true;
const IPAM_RANGE = '10.44.0.0/16';
const VXLAN_PORT = 6785; // the routers' listen port 6784, + 1
const graphDir = values['graph-dir'] ?? '/tmp/weft-demo';
const seconds = Number(values.seconds);
const nodes = Number(values.nodes);
const bad = [
  ...(Number.isInteger(seconds) && seconds >= 0 ? [] : [`--seconds ${JSON.stringify(values.seconds)} is not a whole number of seconds (0 or more)`]),
  ...(Number.isInteger(nodes) && nodes >= 1 && nodes <= 20 ? [] : [`--nodes ${JSON.stringify(values.nodes)} is not a whole number from 1 to 20`]),
];
if (bad.length > 0) {
  process.stderr.write(`demo: ${bad.join('; ')}\n${USAGE}\n`);
  process.exit(2);
}

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const say = (s = '') => process.stdout.write(`${s}\n`);

function human(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
}

/** Kubernetes mode: the router's Node, discovery and its IPAM blocks, for the live view. */
function kubeLines(s: StatusReport, ipam: IpamStatus | Error | undefined): string[] {
  const k = s.kubernetes;
  if (k === undefined) return [];
  const peers = k.peersFromNodes.length === 0 ? 'none' : k.peersFromNodes.map((p) => `${p.node} (${p.endpoint})`).join(', ');
  const w = k.watch;
  const lines = [
    `    kubernetes: Node ${k.node} ${k.ownNode}${k.ownNodeProblem === '' ? '' : ` (${k.ownNodeProblem})`}, ${k.synced ? 'synced' : 'not synced'}, ${k.nodesSeen} Nodes seen; peers from Nodes: ${peers}`,
    dim(
      `             watch ${w.watching ? 'open' : 'closed'} at resourceVersion ${w.resourceVersion || '-'}, ${w.lists} list(s), ${w.watchRestarts} restart(s)` +
        `${w.lastError === null ? '' : `, last error: ${w.lastError}`}; Nodes forgotten when deleted: ${k.nodesDeleted}`,
    ),
  ];
  if (ipam instanceof Error) lines.push(`    IPAM: unavailable (${ipam.message})`);
  else if (ipam !== undefined) {
    for (const sp of ipam.spaces) {
      const b = sp.blocks;
      if (b === undefined) continue;
      const others = b.others.length === 0 ? 'none' : b.others.map((o) => `${s.peers.find((p) => p.name === o.holder)?.nickname ?? o.holder} ${o.blocks}`).join(', ');
      lines.push(`    IPAM ${sp.range}: blocks /${b.blockPrefix} held here ${b.mine.length === 0 ? 'none' : b.mine.join(', ')}; elsewhere ${others}; ${b.free} free; ${sp.own.allocated} address(es) allocated here`);
    }
    if (ipam.blocks !== undefined) lines.push(dim(`             block Leases ${ipam.blocks.synced ? 'synced' : 'not synced'}; claimed ${ipam.blocks.counters.claimed}, races lost ${ipam.blocks.counters.claimRaces}, reclaimed ${ipam.blocks.counters.reclaimed}`));
  }
  return lines;
}

function view(statuses: (StatusReport | Error)[], ipams: (IpamStatus | Error | undefined)[], elapsed: number, note: string, events: string[]): string {
  const lines = [bold(`weft demo — ${nodes} nodes${kubernetes ? ' in Kubernetes mode' : ''}, live status (${elapsed}s${seconds > 0 ? ` of ${seconds}s` : ''}, Ctrl-C to stop)`), dim(note), ''];
  if (events.length > 0) lines.push(...events.slice(-6).map((e) => `  ${e}`), '');
  for (const [i, s] of statuses.entries()) {
    if (s instanceof Error) {
      lines.push(`  router unavailable: ${s.message}`, '');
      continue;
    }
    const nonzero = Object.entries(s.drops).filter(([, n]) => n > 0);
    const drops = nonzero.length === 0 ? 'none' : nonzero.map(([why, n]) => `${why} ${n}`).join(', ');
    lines.push(
      `${bold(s.nickname)} ${dim(s.name)}  ${s.mode.encryption}, ${s.mode.vnetHdr ? 'super-frames' : 'per-frame'}, MTU ${s.mtu.overlay}, ` +
        `rss ${(s.memory.rssBytes / 1e6).toFixed(0)} MB, drops ${drops}`,
    );
    for (const p of s.peers) {
      lines.push(`    → ${p.nickname.padEnd(4)} ${p.state.padEnd(12)} ${(p.path === 'relay' ? `relay via ${s.peers.find((q) => q.name === p.via)?.nickname ?? '?'}` : p.path).padEnd(13)} ${(p.endpoint ?? '-').padEnd(18)} sleeve tx ${String(p.txFrames).padStart(8)} frames   rx ${String(p.rxFrames).padStart(8)} frames`);
      const f = s.fastpath.peers.find((x) => x.name === p.name);
      if (f !== undefined) lines.push(dim(`             fast path ${f.state} for ${(f.sinceMs / 1000).toFixed(1)} s, ${f.switches} switches: ${f.reason}`));
    }
    lines.push(...kubeLines(s, ipams[i]));
    lines.push(`    TAP in ${human(s.traffic.tap.rxBytes)}, out ${human(s.traffic.tap.txBytes)}; UDP out ${human(s.traffic.udp.txBytes)}`, '');
  }
  return lines.join('\n');
}

/** `weft graph` of router 0 as DOT and SVG into graphDir (NAME.dot, NAME.svg); what was written, or why not. */
async function writeGraphs(c: WeftCluster, name: string): Promise<string> {
  try {
    mkdirSync(graphDir, { recursive: true });
  } catch (err) {
    return `graph not written: cannot create ${graphDir}: ${(err as Error).message}`;
  }
  const written: string[] = [];
  const failed: string[] = [];
  for (const format of ['dot', 'svg']) {
    const file = join(graphDir, `${name}.${format}`);
    const r = await c.weft(0, ['graph', '--format', format, '--out', file]).catch((err: unknown) => ({ code: 1, stderr: (err as Error).message }));
    if (r.code === 0) written.push(file);
    else failed.push(`${format}: ${r.stderr.trim().replace(/^weft: /, '')}`);
  }
  return `${written.length > 0 ? `graph of the mesh (weft graph): ${written.join(', ')}` : 'graph not written'}${failed.length > 0 ? ` (${failed.join('; ')})` : ''}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('weft demo: needs root to create network namespaces (run: sudo npm run demo)\n');
    process.exit(1);
  }
  say(bold(`Building a ${nodes}-node lab in network namespaces (underlay 198.18.0.0/24, pods 10.40.0.0/16 and fd00:40::/64)...`));
  if (kubernetes) say('Kubernetes mode: a fake API server on the underlay, one Node object per node (as kubelets make them), routers with --kubernetes and no --peer.');
  const c = await WeftCluster.start({
    nodes,
    podsPerNode: 2,
    extraArgs: ['--log-level', 'warn', ...(fast ? ['--trusted-subnets', '198.18.0.0/24'] : []), ...(kubernetes ? ['--ipam-range', IPAM_RANGE] : [])],
    ...(kubernetes ? { kubernetes: {} } : {}),
  });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nTearing down the lab...');
    await c.destroy();
    say('Done: every namespace and process the demo made is gone.');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  try {
    if (c.kube !== undefined) {
      const url = (await c.kube.control.info()).url;
      say(`Lab ${c.lab.prefix}: the API server is ${url} (namespace ${c.kube.namespace}); the routers know no peer: each finds the others from the Node objects...`);
    } else {
      say(`Lab ${c.lab.prefix}: routers started with a shared secret; waiting for them to find each other...`);
    }
    await c.waitEstablished(kubernetes ? 30_000 : 20_000);
    if (kubernetes) {
      for (let i = 0; i < nodes; i++) {
        const k = (await c.apiStatus(i)).kubernetes;
        say(`  ${c.routers[i]!.name}: Node ${k?.ownNode ?? '?'}, peers from Nodes: ${k?.peersFromNodes.map((p) => p.node).join(', ') || 'none'}`);
      }
      say(`IPAM in ${IPAM_RANGE}, blocks as Leases: one address allocated on each router (as a CNI ADD would), so each claims a block...`);
      for (let i = 0; i < nodes; i++) {
        const deadline = Date.now() + 30_000;
        while (!(await c.api<IpamStatus>(i, 'GET', '/v1/ipam/status')).ready.ok) {
          if (Date.now() > deadline) throw new Error(`${c.routers[i]!.name}: IPAM not ready within 30 s`);
          await new Promise((r) => setTimeout(r, 200));
        }
        const r = await c.api<{ addresses: { address: string; prefixLength: number }[] }>(i, 'POST', '/v1/ipam/allocate', { containerId: `demo-${i + 1}`, ifName: 'eth0' });
        say(`  ${c.routers[i]!.name}: ${r.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(' ')}`);
      }
      const holders = await c.blockHolders();
      const nick = new Map((await Promise.all(c.routers.map(async (_, i) => [(await c.apiStatus(i)).name, c.routers[i]!.name] as const))));
      say(`  block Leases: ${[...holders].map(([cidr, h]) => `${cidr} → ${nick.get(h) ?? h}`).join(', ')}`);
    }
    if (fast) {
      say('Underlay 198.18.0.0/24 is a trusted subnet: waiting for every pair to take the kernel fast path...');
      const took = await c.waitFastPath();
      say(`Every pair is on the fast path after ${(took / 1000).toFixed(1)} s.`);
    }
    say(await writeGraphs(c, 'mesh'));
    say(bold('\nPods:'));
    for (const p of c.pods) say(`  ${p.ns.padEnd(14)} on ${p.node.name}  ${p.ipv4!.padEnd(12)} ${p.ipv6!.padEnd(18)} ${p.mac}`);
    say(bold(`\nPing across nodes (${fast ? 'kernel fast path' : 'encrypted sleeve'}):`));
    for (const a of c.pods.filter((p) => p.name.endsWith('p1'))) {
      for (const b of c.pods.filter((p) => p.node !== a.node && p.name.endsWith('p1'))) {
        const r4 = await ping(c.lab, a.ns, b.ipv4!, { count: 3, intervalS: 0.05 });
        const r6 = await ping(c.lab, a.ns, b.ipv6!, { count: 3, intervalS: 0.05 });
        say(`  ${a.node.name}/${a.name} → ${b.node.name}/${b.name}: IPv4 ${r4.received}/3 (avg ${r4.avgMs.toFixed(3)} ms), IPv6 ${r6.received}/3 (avg ${r6.avgMs.toFixed(3)} ms)`);
      }
    }
    const [from, to] = [c.podsOn(1)[0]!, c.podsOn(nodes)[0]!];
    const label = (p: typeof from) => `${p.node.name}/${p.name}`;
    const t0 = Date.now();
    let note = `background: ping ${label(from)} → ${label(to)} every 0.2 s`;
    const pinger = c.lab.spawn(from.ns, ['ping', '-n', '-i', '0.2', to.ipv4!]);
    let burst: Promise<unknown> | undefined;
    const events: string[] = [];
    const event = (text: string) => events.push(`t=${Math.round((Date.now() - t0) / 1000)}s  ${text}`);
    const nodesOf = c.lab.nodes;
    // A pair being watched for a switch: routers a and b, the fast-path state to wait for (or the
    // sleeve path, polled once a second), since when.
    let watch: { a: number; b: number; want: FastState | 'relay' | 'direct'; from: number; what: string } | undefined;
    let act = 0;
    const acts: { at: number; run: () => Promise<void> }[] = [];
    if (fast && nodes >= 2) {
      acts.push({
        at: 17,
        run: async () => {
          const started = Date.now();
          await c.lab.blockUdpBetween(nodesOf[0]!, nodesOf[1]!, VXLAN_PORT);
          watch = { a: 0, b: 1, want: 'down', from: started, what: 'fell back to the sleeve' };
          event(`nftables drops the VXLAN port between n1 and n2: only that pair should fall back to the sleeve`);
        },
      });
      acts.push({
        at: 26,
        run: async () => {
          const started = Date.now();
          await c.lab.clearFaultsBetween(nodesOf[0]!, nodesOf[1]!);
          watch = { a: 0, b: 1, want: 'up', from: started, what: 'returned to the fast path (5 s of health first: no flapping)' };
          event('the VXLAN port between n1 and n2 is open again');
        },
      });
    }
    if (nodes >= 3) {
      acts.push({
        at: fast ? 38 : 17,
        run: async () => {
          const started = Date.now();
          await c.lab.blockAllBetween(nodesOf[0]!, nodesOf[nodes - 1]!);
          watch = { a: 0, b: nodes - 1, want: 'relay', from: started, what: 'moved to a relay' };
          event(`nftables drops everything between n1 and n${nodes}: their traffic moves to the sleeve through a relay (sealed end to end)`);
        },
      });
      acts.push({
        at: fast ? 50 : 30,
        run: async () => {
          const started = Date.now();
          await c.lab.clearFaultsBetween(nodesOf[0]!, nodesOf[nodes - 1]!);
          watch = { a: 0, b: nodes - 1, want: fast ? 'up' : 'direct', from: started, what: fast ? 'returned to the fast path' : 'returned to the direct path' };
          event(`the underlay between n1 and n${nodes} is back: direct paths are proven again by heartbeats and probes`);
        },
      });
    }
    for (;;) {
      const elapsed = Math.round((Date.now() - t0) / 1000);
      if (seconds > 0 && elapsed >= seconds) break;
      const next = acts[act];
      if (next !== undefined && elapsed >= next.at) {
        act++;
        await next.run();
      }
      if (burst === undefined && elapsed >= 5) {
        note = `background: ping every 0.2 s, and a 10 s iperf3 TCP stream ${label(from)} → ${label(to)}`;
        burst = iperf3Tcp(c.lab, to.ns, to.ipv4!, from.ns, { seconds: 10 }).then((r) => {
          note = `background: ping every 0.2 s ${label(from)} → ${label(to)}`;
          event(`iperf3 ${label(from)} → ${label(to)}: ${r.gbps.toFixed(2)} Gbit/s over the ${fast ? 'kernel fast path' : 'encrypted sleeve'}`);
        });
      }
      const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));
      const statuses = await Promise.all(c.routers.map((_, i) => c.apiStatus(i).catch(asError)));
      const ipams = kubernetes ? await Promise.all(c.routers.map((_, i) => c.api<IpamStatus>(i, 'GET', '/v1/ipam/status').catch(asError))) : [];
      const w = watch;
      if (w !== undefined) {
        const [sa, sb] = [statuses[w.a], statuses[w.b]];
        if (sa !== undefined && sb !== undefined && !(sa instanceof Error) && !(sb instanceof Error)) {
          const now = Date.now();
          if (w.want === 'relay' || w.want === 'direct') {
            // The sleeve path has no switch instant in status: polled, so "by" a whole second.
            const pa = sa.peers.find((p) => p.name === sb.name)?.path;
            const pb = sb.peers.find((p) => p.name === sa.name)?.path;
            if (pa === w.want && pb === w.want) {
              watch = undefined;
              event(`n${w.a + 1} ↔ n${w.b + 1} ${w.what}: both routers by ${((now - w.from) / 1000).toFixed(1)} s (status polled every second)`);
              if (w.want === 'relay') event(await writeGraphs(c, 'mesh-relay'));
            }
          } else {
            const x = fastStateTowards(sa, nodesOf[w.b]!.address, now);
            const y = fastStateTowards(sb, nodesOf[w.a]!.address, now);
            if (x?.state === w.want && y?.state === w.want) {
              watch = undefined;
              event(`n${w.a + 1} ↔ n${w.b + 1} ${w.what}: both routers switched within ${((Math.max(x.at, y.at) - w.from) / 1000).toFixed(2)} s`);
            }
          }
        }
      }
      if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      say(view(statuses, ipams, elapsed, note, events));
      await new Promise((r) => setTimeout(r, 1000));
    }
    await burst;
    pinger.kill('SIGINT'); // ping prints its summary on SIGINT
    await pinger.exited;
    const lost = /(\d+) packets transmitted, (\d+) received/.exec(pinger.stdoutText());
    if (!process.stdout.isTTY || events.length > 6) for (const e of events) say(`  ${e}`);
    if (lost !== null) say(`Background ping: ${lost[2]}/${lost[1]} replies.`);
    await stop(0);
  } catch (err) {
    process.stderr.write(`weft demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop(1);
  }
}

await main();
