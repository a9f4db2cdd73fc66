/**
 * weft on a NAT lab (issue 18): a WeftCluster whose routers listen on their own (LAN) address and
 * are told only of the public nodes (`--peer`), so every path between two NATed routers has to be
 * found by the routers themselves; the public nodes are the relays. Helpers read a pair's path
 * from both ends, say which path the NAT kinds allow, and run traffic across a pair.
 */
import type { PeerStatus, StatusReport } from '../src/api/types.js';
import { LabError } from './errors.js';
import { NatLab, type NatKind, type NatLabInit } from './nat-lab.js';
import type { PingResult, TcpResult } from './traffic-parse.js';
import { parseIperfTcp } from './traffic-parse.js';
import { ping } from './traffic.js';
import { WeftCluster, type WeftClusterInit } from './weft-cluster.js';

/** Which underlay the routers use: IPv4 only, IPv6 only, or both (`--listen [::]:6784`). */
export type NatFamily = 4 | 6 | 'dual';

export interface NatClusterInit {
  nat: NatLabInit;
  family?: NatFamily;
  podsPerNode?: number;
  extraArgs?: string[];
  perNodeArgs?: (i: number) => string[];
  log?: (line: string) => void;
  /** Passed on to WeftCluster.start. */
  cluster?: Partial<Pick<WeftClusterInit, 'deferStart' | 'secrets'>>;
}

export interface NatCluster {
  nl: NatLab;
  c: WeftCluster;
  family: NatFamily;
  destroy(): Promise<void>;
}

export const ROUTER_PORT = 6784;

/** Builds the NAT lab and starts one router per node (public ones peer each other, NATed ones peer the public ones). */
export async function startNatCluster(init: NatClusterInit): Promise<NatCluster> {
  const family = init.family ?? 4;
  const nl = await NatLab.create({ ...init.nat, log: init.log });
  const isPublic = (i: number) => nl.natOf(i) === undefined;
  const host = (i: number) => (family === 6 ? `[${nl.place(i).address6}]` : nl.place(i).address4);
  try {
    const c = await WeftCluster.start({
      lab: nl.lab,
      nodes: nl.nodes.length,
      podsPerNode: init.podsPerNode ?? 1,
      listenOf: (i) => (family === 'dual' ? `[::]:${ROUTER_PORT}` : `${host(i)}:${ROUTER_PORT}`),
      peerTargetOf: (k) => `${host(k)}:${ROUTER_PORT}`,
      peersOf: (i) => nl.nodes.map((_, k) => k).filter((k) => k !== i && isPublic(k)),
      extraArgs: init.extraArgs,
      perNodeArgs: init.perNodeArgs,
      log: init.log,
      ...init.cluster,
    });
    return { nl, c, family, destroy: () => c.destroy() };
  } catch (err) {
    await nl.destroy();
    throw err;
  }
}

export type PairPath = PeerStatus['path'];

/** What the NAT kinds (and the family) allow between nodes i and k: the path expected, and why. */
export function expectedPath(nl: NatLab, i: number, k: number, family: NatFamily = 4): { path: 'direct' | 'relay'; why: string } {
  const [a, b] = [nl.natOf(i), nl.natOf(k)];
  if (a === undefined || b === undefined) return { path: 'direct', why: a === b ? 'both public' : 'one side is public: it answers whatever source reaches it' };
  if (a === b) return { path: 'direct', why: `both behind ${a.name}: local (LAN) candidates` };
  if (family === 6) return { path: 'direct', why: 'IPv6 has no NAT: both firewalls open to simultaneous probes' };
  const v4 = expectedPath4(a.kind, b.kind);
  if (family === 'dual' && v4.path === 'relay') return { path: 'direct', why: `over IPv6 (no NAT); over IPv4 ${v4.why}` };
  return v4;
}

/** Between two routers behind two different IPv4 NATs. */
function expectedPath4(a: NatKind, b: NatKind): { path: 'direct' | 'relay'; why: string } {
  if (a === 'firewall6' || b === 'firewall6') return { path: 'relay', why: 'a firewall6 site has no IPv4' };
  const hard = [a, b].filter((kind) => kind === 'symmetric').length;
  if (hard === 2) return { path: 'relay', why: 'symmetric on both sides: neither can predict the other\'s port' };
  if (hard === 1) {
    const other = a === 'symmetric' ? b : a;
    if (other === 'cone') return { path: 'direct', why: 'the cone side lets in any source on the forwarded port; the symmetric side answers' };
    return { path: 'relay', why: `the ${other} side filters by endpoint and the symmetric side's port towards it is unknown` };
  }
  return { path: 'direct', why: 'endpoint-independent mappings on both sides: simultaneous probes open both' };
}

/** Router i's status line for router k (by nickname), or undefined. */
export function peerIn(s: StatusReport, nickname: string): PeerStatus | undefined {
  return s.peers.find((p) => p.nickname === nickname);
}

/**
 * Waits until router i shows k on `want` and k shows i on it; returns when the later of the two
 * switched (Date.now() clock, from pathSinceMs) and both status lines.
 */
export async function waitPairPath(c: WeftCluster, i: number, k: number, want: PairPath, timeoutMs = 20_000): Promise<{ at: number; a: PeerStatus; b: PeerStatus }> {
  const deadline = Date.now() + timeoutMs;
  const [ni, nk] = [c.routers[i]!.name, c.routers[k]!.name];
  let last = '';
  for (;;) {
    const [si, sk] = await Promise.all([c.apiStatus(i).catch(() => undefined), c.apiStatus(k).catch(() => undefined)]);
    const now = Date.now();
    const a = si === undefined ? undefined : peerIn(si, nk);
    const b = sk === undefined ? undefined : peerIn(sk, ni);
    if (a?.path === want && b?.path === want && a.state === 'established' && b.state === 'established') {
      return { at: now - Math.min(a.pathSinceMs ?? 0, b.pathSinceMs ?? 0), a, b };
    }
    last = `${ni} has ${nk} on ${a?.path ?? '?'} (${a?.pathReason ?? ''}); ${nk} has ${ni} on ${b?.path ?? '?'} (${b?.pathReason ?? ''})`;
    if (now > deadline) throw new LabError(`${ni} ↔ ${nk} did not reach "${want}" within ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface PairTraffic {
  pings: PingResult;
  tcp: TcpResult;
}

/**
 * Runs pings (every `intervalS`) and one TCP stream (iperf3, `bitrate` e.g. '50M', default
 * unlimited) between the first pods of routers i and k over IPv4 for `seconds`, while `during`
 * runs (it starts 1 s in); returns both results and what `during` returned.
 */
export async function pairTraffic<T>(
  c: WeftCluster,
  i: number,
  k: number,
  o: { seconds: number; intervalS?: number; bitrate?: string; port?: number },
  during: () => Promise<T>,
): Promise<PairTraffic & { result: T }> {
  const [from, to] = [c.podsOn(i + 1)[0], c.podsOn(k + 1)[0]];
  if (from?.ipv4 === undefined || to?.ipv4 === undefined) throw new LabError(`pairTraffic needs an IPv4 pod on n${i + 1} and n${k + 1}`);
  const intervalS = o.intervalS ?? 0.05;
  const port = o.port ?? 5301;
  const server = c.lab.spawn(to.ns, ['iperf3', '-s', '-1', '-p', String(port)]);
  try {
    for (let t = 0; t < 100; t++) {
      const r = await c.lab.exec(to.ns, ['ss', '-H', '-n', '-l', '-t', 'sport', '=', `:${port}`], { check: false, timeoutMs: 5000 });
      if (r.stdout.trim() !== '') break;
      await new Promise((r2) => setTimeout(r2, 50));
    }
    const pings = ping(c.lab, from.ns, to.ipv4, { count: Math.round(o.seconds / intervalS), intervalS, timeoutS: 1 });
    const args = ['iperf3', '-J', '-c', to.ipv4, '-p', String(port), '-t', String(o.seconds), ...(o.bitrate === undefined ? [] : ['-b', o.bitrate])];
    const tcp = c.lab.exec(from.ns, args, { check: false, timeoutMs: (o.seconds + 30) * 1000 });
    await new Promise((r) => setTimeout(r, 1000));
    const result = await during();
    const [p, t] = await Promise.all([pings, tcp]);
    let parsed: TcpResult;
    try {
      parsed = parseIperfTcp(t.stdout);
    } catch (err) {
      throw new LabError(`the TCP stream n${i + 1} → n${k + 1} broke (iperf3 exit ${t.code}): ${(err as Error).message}`, { cause: err });
    }
    return { pings: p, tcp: parsed, result };
  } finally {
    await server.stop(2000);
  }
}

/**
 * The mix of the NAT traversal matrix (test/integration/nat-traversal.test.ts) and the nat bench
 * suite, behind two public nodes: n3, n4 behind their own eim NATs, n5 and n6 behind one, n7 and
 * n8 behind their own symmetric NATs, n9 behind a cone NAT.
 */
export const MATRIX_NATS = [
  { kind: 'eim', nodes: 1 },
  { kind: 'eim', nodes: 1 },
  { kind: 'eim', nodes: 2 },
  { kind: 'symmetric', nodes: 1 },
  { kind: 'symmetric', nodes: 1 },
  { kind: 'cone', nodes: 1 },
] as const;
