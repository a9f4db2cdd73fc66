/**
 * `sudo npm run demo`: a virtual 3-node cluster in network namespaces, one weft router per node,
 * two pods per node; pods ping across nodes over the encrypted sleeve, then a live view of every
 * router's status while traffic flows. Everything is torn down on Ctrl-C or at the end.
 *
 *   node dist/src/lab/demo.js [--seconds N] [--nodes N]   (default 40 s, 3 nodes; 0 s = until Ctrl-C)
 *
 * Timeline: pings, a 10 s iperf3 stream from t=5 s, the underlay between the first and last node
 * cut at t=17 s (traffic moves to a relay) and healed at t=30 s (back to the direct path).
 */
import { parseArgs } from 'node:util';
import { iperf3Tcp, ping } from './traffic.js';
import { WeftCluster, type RouterStatus } from './weft-cluster.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '40' }, nodes: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const nodes = Number(values.nodes);

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

function view(statuses: (RouterStatus | Error)[], elapsed: number, note: string): string {
  const lines = [bold(`weft demo — ${nodes} nodes, live status (${elapsed}s${seconds > 0 ? ` of ${seconds}s` : ''}, Ctrl-C to stop)`), dim(note), ''];
  for (const s of statuses) {
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
      lines.push(`    → ${p.nickname.padEnd(4)} ${p.state.padEnd(12)} ${(p.path === 'relay' ? `relay via ${s.peers.find((q) => q.name === p.via)?.nickname ?? '?'}` : p.path).padEnd(13)} ${(p.endpoint ?? '-').padEnd(18)} tx ${String(p.txFrames).padStart(8)} frames   rx ${String(p.rxFrames).padStart(8)} frames`);
    }
    lines.push(`    TAP in ${human(s.traffic.tap.rxBytes)}, out ${human(s.traffic.tap.txBytes)}; UDP out ${human(s.traffic.udp.txBytes)}`, '');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('weft demo: needs root to create network namespaces (run: sudo npm run demo)\n');
    process.exit(1);
  }
  say(bold(`Building a ${nodes}-node lab in network namespaces (underlay 198.18.0.0/24, pods 10.40.0.0/16 and fd00:40::/64)...`));
  const c = await WeftCluster.start({ nodes, podsPerNode: 2, extraArgs: ['--log-level', 'warn'] });
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
    say(`Lab ${c.lab.prefix}: routers started with a shared secret; waiting for them to find each other...`);
    await c.waitEstablished();
    say(bold('\nPods:'));
    for (const p of c.pods) say(`  ${p.ns.padEnd(14)} on ${p.node.name}  ${p.ipv4!.padEnd(12)} ${p.ipv6!.padEnd(18)} ${p.mac}`);
    say(bold('\nPing across nodes (encrypted sleeve):'));
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
    let cut: 'no' | 'cut' | 'healed' = 'no';
    const [n1, nLast] = [c.lab.nodes[0]!, c.lab.nodes[nodes - 1]!];
    for (;;) {
      const elapsed = Math.round((Date.now() - t0) / 1000);
      if (seconds > 0 && elapsed >= seconds) break;
      if (nodes >= 3 && cut === 'no' && elapsed >= 17) {
        cut = 'cut';
        await c.lab.blockAllBetween(n1, nLast);
        note = `t=${elapsed}s: nftables now drops everything between ${n1.name} and ${nLast.name}; within a few seconds their traffic goes through a relay (sealed end to end), and the ping continues`;
      } else if (cut === 'cut' && elapsed >= 30) {
        cut = 'healed';
        await c.lab.clearFaults();
        note = `t=${elapsed}s: the link is back; the direct path is proven again by heartbeats and used`;
      }
      if (burst === undefined && elapsed >= 5) {
        note = `background: ping every 0.2 s, and a 10 s iperf3 TCP stream ${label(from)} → ${label(to)}`;
        burst = iperf3Tcp(c.lab, to.ns, to.ipv4!, from.ns, { seconds: 10 }).then((r) => {
          note = `iperf3 ${label(from)} → ${label(to)}: ${r.gbps.toFixed(2)} Gbit/s over the encrypted sleeve; ping continues`;
        });
      }
      const statuses = await Promise.all(c.routers.map((_, i) => c.status(i).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))));
      if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      say(view(statuses, elapsed, note));
      await new Promise((r) => setTimeout(r, 1000));
    }
    await burst;
    pinger.kill('SIGINT'); // ping prints its summary on SIGINT
    await pinger.exited;
    const lost = /(\d+) packets transmitted, (\d+) received/.exec(pinger.stdoutText());
    if (lost !== null) say(`Background ping: ${lost[2]}/${lost[1]} replies.`);
    await stop(0);
  } catch (err) {
    process.stderr.write(`weft demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop(1);
  }
}

await main();
