/**
 * Times a fast-path switch between two routers of a WeftCluster, as the demo and the bench show
 * it: cut the VXLAN port between their nodes (nftables), measure how long until both routers have
 * moved the pair to the sleeve, heal it, measure how long until both are back on the fast path,
 * and count the pings lost between a pod on each side meanwhile.
 *
 * Switch instants come from each router's own status (`sinceMs` of its fast-path state for the
 * peer), polled over the API socket, so the polling interval does not blur them. The clock starts
 * just before the nftables change is requested, so the figures are upper bounds.
 */
import { LabError } from './errors.js';
import type { PingResult } from './traffic-parse.js';
import { ping } from './traffic.js';
import type { StatusReport } from '../src/api/types.js';
import type { WeftCluster } from './weft-cluster.js';

export interface PathSwitchOptions {
  /** The VXLAN UDP port to cut (the routers' listen port + 1). */
  port: number;
  /** Seconds between pings (default 0.02). */
  intervalS?: number;
  /** Seconds of pings around the cut (default 6) and around the heal (default 14). */
  cutSeconds?: number;
  healSeconds?: number;
  log?: (line: string) => void;
}

export interface PathSwitchTiming {
  /** Cut → both routers have moved the pair to the sleeve. */
  fallbackMs: number;
  /** Heal → both routers are back on the fast path. */
  returnMs: number;
  intervalMs: number;
  cutPings: { sent: number; lost: number };
  healPings: { sent: number; lost: number };
}

export type FastState = 'up' | 'down' | 'other';

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A router's fast-path state towards the node at `underlay`, and when it entered it (Date.now() clock). */
export function fastStateTowards(s: StatusReport, underlay: string, receivedAt: number): { state: FastState; at: number } | undefined {
  const f = s.fastpath.peers.find((p) => p.underlay === underlay);
  if (f === undefined) return undefined;
  const state: FastState = f.state === 'up' ? 'up' : f.state === 'down' ? 'down' : 'other';
  return { state, at: receivedAt - f.sinceMs };
}

/** Waits until routers a and b both hold `want` towards each other; returns the later switch instant. */
async function bothReach(c: WeftCluster, a: number, b: number, want: FastState, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const addr = (i: number) => c.lab.nodes[i]!.address;
  for (;;) {
    const [sa, sb] = await Promise.all([c.apiStatus(a), c.apiStatus(b)]);
    const now = Date.now();
    const x = fastStateTowards(sa, addr(b), now);
    const y = fastStateTowards(sb, addr(a), now);
    if (x?.state === want && y?.state === want) return Math.max(x.at, y.at);
    if (now > deadline) {
      throw new LabError(`fast path n${a + 1} ↔ n${b + 1} did not reach "${want}" within ${timeoutMs} ms (now ${x?.state ?? '?'} / ${y?.state ?? '?'})`);
    }
    await delay(50);
  }
}

const lost = (p: PingResult) => ({ sent: p.sent, lost: p.sent - p.received });

/** Cuts and heals the VXLAN path between routers a and b (0-based) under pings; see the file comment. */
export async function timePathSwitch(c: WeftCluster, a: number, b: number, o: PathSwitchOptions): Promise<PathSwitchTiming> {
  const intervalS = o.intervalS ?? 0.02;
  const [na, nb] = [c.lab.nodes[a]!, c.lab.nodes[b]!];
  const [from, to] = [c.podsOn(a + 1)[0], c.podsOn(b + 1)[0]];
  if (from?.ipv4 === undefined || to?.ipv4 === undefined) throw new LabError(`timePathSwitch needs an IPv4 pod on n${a + 1} and n${b + 1}`);
  await bothReach(c, a, b, 'up', 30_000);

  const cutS = o.cutSeconds ?? 6;
  const cutPing = ping(c.lab, from.ns, to.ipv4, { count: Math.round(cutS / intervalS), intervalS, timeoutS: 1 });
  await delay(1000);
  const cutAt = Date.now();
  await c.lab.blockUdpBetween(na, nb, o.port);
  o.log?.(`cut the VXLAN port between n${a + 1} and n${b + 1}`);
  const fellBack = await bothReach(c, a, b, 'down', 20_000);
  const fallbackMs = fellBack - cutAt;
  o.log?.(`both routers moved n${a + 1} ↔ n${b + 1} to the sleeve ${(fallbackMs / 1000).toFixed(2)} s after the cut`);
  const cutPings = lost(await cutPing);

  const healS = o.healSeconds ?? 14;
  const healPing = ping(c.lab, from.ns, to.ipv4, { count: Math.round(healS / intervalS), intervalS, timeoutS: 1 });
  await delay(1000);
  const healAt = Date.now();
  await c.lab.clearFaultsBetween(na, nb);
  o.log?.(`healed the VXLAN path between n${a + 1} and n${b + 1}`);
  const returned = await bothReach(c, a, b, 'up', 30_000);
  const returnMs = returned - healAt;
  o.log?.(`both routers are back on the fast path ${(returnMs / 1000).toFixed(2)} s after the heal`);
  const healPings = lost(await healPing);
  return { fallbackMs, returnMs, intervalMs: intervalS * 1000, cutPings, healPings };
}
