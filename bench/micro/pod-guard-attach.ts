/**
 * Micro-benchmark of the pod guard's part of CNI ADD and DEL: `attach` (a pod's MAC and addresses
 * into the `bridge weft-pods` sets, one nftables transaction) and `detach`, through libnftables
 * in-process (NftLib) and through the `nft` command (NftCli), in blocks of half the rounds (lib,
 * command, command, lib: a command run just before slows the next in-process call down, which
 * the router's ADD path never sees). Prints the median and 90th percentile in milliseconds.
 *
 *   sudo node dist/bench/micro/pod-guard-attach.js [--rounds N] [--pods P]
 *
 * It re-runs itself under `unshare --net`: a network namespace of its own, gone when it exits,
 * so the host's nftables are never touched. --pods: pods kept attached meanwhile (the table's
 * size). Not a test and not part of `npm run bench`; the machine is shared, so compare medians of
 * several runs.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { hostVethName } from '../../src/cni/veth.js';
import { PodGuard, type PodAllocation } from '../../src/daemon/pod-guard.js';
import { NftCli } from '../../src/platform/linux/nft-cli.js';
import { NftLib } from '../../src/platform/linux/nft-lib.js';
import type { NftScripts } from '../../src/platform/nft.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '200' },
    pods: { type: 'string', default: '20' },
    inner: { type: 'boolean', default: false },
  },
});

function pctl(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  if (!values.inner) {
    const r = spawnSync('unshare', ['--net', '--', process.execPath, fileURLToPath(import.meta.url), '--inner', '--rounds', values.rounds, '--pods', values.pods], { stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  const rounds = Number(values.rounds);
  const keep = Number(values.pods);
  const backends: [string, NftScripts][] = [
    ['libnftables (NftLib)', new NftLib()],
    ['nft command (NftCli)', new NftCli()],
  ];
  const allocations: PodAllocation[] = [];
  const ports = new Set<string>();
  const pod = (i: number) => {
    const id = `bench${i}`.padEnd(64, '0');
    const hex = (i & 0xffff).toString(16).padStart(4, '0');
    return { id, mac: `02:bb:00:00:${hex.slice(0, 2)}:${hex.slice(2)}`, addresses: [`10.50.${i >> 8}.${i & 255}`, `fd00:50::${i.toString(16)}`] };
  };
  for (let i = 1; i <= keep + 1; i++) {
    const p = pod(i);
    allocations.push({ containerId: p.id, ifName: 'eth0', addresses: p.addresses });
    ports.add(hostVethName(p.id, 'eth0'));
  }
  const times: Record<string, { attach: number[]; detach: number[] }> = {};
  const guards = backends.map(([name, nft]) => {
    times[name] = { attach: [], detach: [] };
    const g = new PodGuard(
      {
        nft,
        netlink: { bridgePorts: () => Promise.resolve([...ports].map((n, index) => ({ name: n, index, mtu: 1500, up: true, master: 'weft', kind: 'veth', mac: undefined }))) },
        clock: systemClock,
        logger: silentLogger,
        allocations: () => allocations,
      },
      { bridge: 'weft', vxlanPort: 4790, reconcileMs: 3_600_000 },
    );
    return { name, g };
  });
  // One table: each guard in turn rewrites it whole at start, then changes only its own pod.
  for (const { g } of guards) {
    await g.start();
    for (let i = 1; i <= keep; i++) await g.attach(pod(i).id, 'eth0', pod(i).mac);
  }
  const p = pod(keep + 1);
  const half = Math.max(1, Math.floor(rounds / 2));
  for (const { name, g } of [...guards, ...[...guards].reverse()]) {
    for (let r = 0; r < half; r++) {
      let t = process.hrtime.bigint();
      await g.attach(p.id, 'eth0', p.mac);
      times[name]!.attach.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      await g.detach(p.id, 'eth0');
      times[name]!.detach.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  for (const { g } of guards) await g.stop();
  process.stdout.write(`${2 * half} rounds each, ${keep} other pods guarded\n`);
  for (const [name, t] of Object.entries(times)) {
    process.stdout.write(`${name}: attach p50 ${pctl(t.attach, 50).toFixed(2)} / p90 ${pctl(t.attach, 90).toFixed(2)} ms, detach p50 ${pctl(t.detach, 50).toFixed(2)} / p90 ${pctl(t.detach, 90).toFixed(2)} ms\n`);
  }
}

void main();
