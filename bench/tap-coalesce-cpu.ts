/**
 * What UDP coalescing on the TAP write saves the receiving router: 64-byte UDP (iperf3) at a fixed
 * offered rate below saturation, over the encrypted sleeve, with coalescing on and with
 * --no-udp-coalesce, alternated. Per configuration: the receiving router's CPU (user + system: the
 * TAP write's kernel work down to the pod's socket runs in its context) per frame it gave the TAP,
 * its TAP writes and super-frames, the sending router's CPU and the box's. The CPU per frame at a
 * fixed rate shows the difference even on a busy box, where the saturated 64 B test of the sleeve
 * suite (`npm run bench -- --suite sleeve`) swings by tens of percent from run to run.
 *
 *   npm run build:ts && flock /tmp/weft-bench.lock node dist/bench/tap-coalesce-cpu.js [bitrate] [rounds] [seconds] [flag]
 *
 * bitrate as iperf3 takes it (default 20M: about 39 kpps of 64-byte datagrams), rounds of on+off
 * (default 2), seconds per measurement (default 8), the router flag that turns the feature off
 * (default --no-udp-coalesce; --no-tap-uring compares the sending router's TAP reads: its CPU
 * per frame read and its read-side calls are printed too).
 */
import { WeftCluster } from '../lab/weft-cluster.js';
import { iperf3Udp, ping } from '../lab/traffic.js';
import { boxBusyPct, boxCpuTimes, cpuSeconds } from './procstat.js';

const bitrate = process.argv[2] ?? '20M';
const rounds = Number(process.argv[3] ?? 2);
const seconds = Number(process.argv[4] ?? 8);
const offFlag = process.argv[5] ?? '--no-udp-coalesce';

async function measure(on: boolean): Promise<Record<string, number | string | boolean>> {
  const c = await WeftCluster.start({ nodes: 2, extraArgs: ['--log-level', 'warn', '--fastpath', 'off', ...(on ? [] : [offFlag])] });
  try {
    await c.waitEstablished();
    await c.waitPaths(() => 'direct');
    const [a, b] = c.pods;
    await ping(c.lab, a!.ns, b!.ipv4!, { count: 3, intervalS: 0.2 });
    // A warm-up, so both routers run optimised code when measured.
    await iperf3Udp(c.lab, b!.ns, b!.ipv4!, a!.ns, { seconds: 2, size: 64, bitrate });
    const pids = [(await c.status(0)).pid, (await c.status(1)).pid];
    const before = (await c.status(1)).traffic;
    const txBefore = (await c.status(0)).traffic.tap;
    const cpu0 = pids.map(cpuSeconds);
    const box0 = boxCpuTimes();
    const r = await iperf3Udp(c.lab, b!.ns, b!.ipv4!, a!.ns, { seconds, size: 64, bitrate });
    const cpu1 = pids.map(cpuSeconds);
    const box = boxBusyPct(box0, boxCpuTimes());
    const after = (await c.status(1)).traffic;
    const txAfter = (await c.status(0)).traffic.tap;
    const txFrames = txAfter.rxPackets - txBefore.rxPackets;
    const txCpu = cpu1[0]! - cpu0[0]!;
    const d = (f: (t: typeof after) => number) => f(after) - f(before);
    const superFrames = d((t) => t.router.toTapSuperFrames);
    // Frames given to the TAP: writes, with each super-frame counted as the frames it carried.
    const frames = d((t) => t.router.toTap) - superFrames + d((t) => t.router.toTapCoalesced);
    const rxCpu = cpu1[1]! - cpu0[1]!;
    return {
      [offFlag]: !on,
      sentKpps: +(r.sentPps / 1000).toFixed(1),
      receivedKpps: +(r.receivedPps / 1000).toFixed(1),
      framesToTap: frames,
      tapWrites: d((t) => t.tap.txPackets),
      superFrames,
      rxRouterCpuPct: +((100 * rxCpu) / seconds).toFixed(1),
      rxRouterUsPerFrame: +((1e6 * rxCpu) / frames).toFixed(2),
      txRouterCpuPct: +((100 * txCpu) / seconds).toFixed(1),
      txRouterUsPerFrame: +((1e6 * txCpu) / txFrames).toFixed(2),
      txTapFrames: txFrames,
      txTapReadCalls: txAfter.rxCalls - txBefore.rxCalls,
      boxCpuPct: Math.round(box),
    };
  } finally {
    await c.destroy();
  }
}

for (let i = 0; i < rounds; i++) {
  for (const on of [true, false]) process.stdout.write(`${JSON.stringify(await measure(on))}\n`);
}
