/** The status report served at GET /v1/status and printed by `weft status` (its types: src/api/types.ts). */
import type { IpamStatus } from '../ipam/status.js';
import { formatPeerId } from '../core/ids.js';
import { formatEndpoint } from '../core/net.js';
import type { LinuxTap } from '../platform/linux/linux-tap.js';
import type { LinuxUdp } from '../platform/linux/linux-udp.js';
import type { LearningSwitch } from '../router/learning-switch.js';
import type { PeerPath, PunchReport } from '../router/overlay-switch.js';
import type { Sleeve } from '../router/sleeve/sleeve.js';
import type { MeshStatus } from '../mesh/mesh.js';
import type { FastPathStatus, IpamSummary, KubernetesStatus, PeerStatus, PunchStatus, PolicyStatus, ServiceBridgeStatus, StatusReport, VersionInfo } from '../api/types.js';
import type { DaemonConfig } from './config.js';
import type { PodGuardStatus } from './pod-guard.js';

export function ipamSummary(st: IpamStatus): IpamSummary {
  return {
    ready: st.ready,
    allocations: st.allocations,
    ranges: st.spaces.map((sp) => ({ range: sp.range, owned: sp.own.owned, free: sp.own.free, allocated: sp.own.allocated, quarantined: sp.own.quarantined, reserved: sp.own.reserved, held: sp.own.held })),
  };
}

/** A peer's last hole-punching attempt as status shows it (null: never tried). */
export function punchStatus(r: PunchReport | undefined, now: number): PunchStatus | null {
  if (r === undefined) return null;
  return {
    state: r.state, attempts: r.attempts, sinceMs: Math.max(0, Math.round(now - r.startedAt)), endpoint: r.endpoint, why: r.why,
    candidates: r.candidates.map((c) => ({ endpoint: c.endpoint, kind: c.kind, probes: c.probes, replies: c.replies, rttMs: c.rttMs ?? null, result: c.result })),
  };
}

export function buildStatus(s: {
  config: DaemonConfig;
  build: VersionInfo;
  sleeve: Sleeve;
  /** Each peer's path, from the OverlaySwitch. */
  paths: readonly PeerPath[];
  mesh: MeshStatus;
  fastpath: FastPathStatus;
  ipam: IpamSummary | undefined;
  pods: PodGuardStatus | undefined;
  /** Kubernetes mode's section; undefined when standalone. */
  kubernetes?: KubernetesStatus | undefined;
  services: ServiceBridgeStatus;
  /** NetworkPolicy; undefined when off. */
  policy?: PolicyStatus | undefined;
  learningSwitch: LearningSwitch;
  /** Refused gossip by channel and reason (MeshGossip.drops). */
  gossip?: Record<string, number>;
  tap: LinuxTap;
  udp: LinuxUdp;
  uptimeMs: number;
  underlayMtu: number;
  mtu: number;
}): StatusReport {
  const now = s.sleeve.now();
  const nick = new Map(s.mesh.peers.map((p) => [p.name, p.nickname]));
  const paths = new Map(s.paths.map((p) => [p.name, p]));
  const peers: PeerStatus[] = s.sleeve.peers.map((p) => ({
    name: p.name,
    nickname: nick.get(p.name) ?? '',
    id: formatPeerId(p.id),
    endpoint: p.hasEndpoint ? formatEndpoint(p) : null,
    state: s.sleeve.alive(p) ? 'established' : 'unreachable',
    path: paths.get(p.name)?.path ?? 'none',
    via: paths.get(p.name)?.via ?? null,
    pathReason: paths.get(p.name)?.reason ?? 'not known to the overlay switch',
    pathSinceMs: paths.has(p.name) ? Math.max(0, Math.round(now - paths.get(p.name)!.since)) : null,
    pathSwitches: paths.get(p.name)?.switches ?? 0,
    rttMs: p.rttMs >= 0 ? p.rttMs : null,
    punch: punchStatus(paths.get(p.name)?.punch, now),
    pathChanges: p.pathChanges,
    relayedRx: p.relayedRx,
    lastSeenMsAgo: Number.isFinite(p.lastRx) ? Math.max(0, Math.round(now - p.lastRx)) : null,
    rxSession: p.rx?.keyId ?? null,
    txSession: p.tx?.keyId ?? null,
    pendingSession: p.rxPending?.keyId ?? null,
    keyExpiresInMs: p.tx !== undefined ? Math.max(0, Math.round(p.tx.expiresAt - now)) : null,
    vnetCapable: p.vnetCapable,
    ...p.counters,
  }));
  const drops: Record<string, number> = {};
  const add = (prefix: string, o: object): void => {
    for (const [k, v] of Object.entries(o)) if (typeof v === 'number') drops[`${prefix}.${k}`] = v;
  };
  add('rx', s.sleeve.drops);
  add('tx', s.sleeve.txDrops());
  add('reassembly', s.sleeve.reassemblyDrops());
  add('switch', s.learningSwitch.drops);
  if (s.fastpath.probes !== undefined) add('fastpath.probe', s.fastpath.probes.drops);
  if (s.fastpath.vxlanPort !== undefined) {
    drops['fastpath.vxlanRefused'] = s.fastpath.vxlanPort.refused.packets;
    drops['fastpath.podProbes'] = s.fastpath.vxlanPort.podProbes.packets;
  }
  add('gossip', s.gossip ?? {});
  for (const [reason, n] of s.learningSwitch.offloadDrops) drops[`offload.${reason}`] = n;
  const udp = s.udp.counters();
  const tap = s.tap.counters();
  drops['udp.sendErrors'] = udp.txErrors;
  drops['udp.sendDropped'] = udp.txDropped;
  drops['udp.sendIovLimit'] = udp.txIovLimit;
  drops['udp.receiveErrors'] = udp.rxErrors + s.sleeve.rxErrors;
  drops['tap.writeErrors'] = tap.txErrors;
  if (s.pods !== undefined) add('pods', s.pods.drops);
  const mem = process.memoryUsage();
  return {
    version: 1,
    build: s.build,
    name: s.mesh.name,
    nickname: s.mesh.nickname,
    id: formatPeerId(s.sleeve.selfId),
    pid: process.pid,
    uptimeS: Math.round(s.uptimeMs / 1000),
    listen: formatEndpoint({ address: s.config.listen.address, port: s.udp.localPort }),
    bridge: s.config.bridge,
    tap: s.tap.name,
    mode: { encryption: s.config.plaintext ? 'none' : 'chacha20-poly1305', aead: s.sleeve.cipherName, vnetHdr: s.tap.vnetHdr, tapReads: s.tap.readMode(), udpGso: s.udp.gsoActive(), udpGro: s.udp.gro, udpCoalesce: s.learningSwitch.udpCoalesce },
    mtu: { underlay: s.underlayMtu, overlay: s.mtu, maxDatagram: s.sleeve.maxDatagram },
    crypto: s.sleeve.cryptoStatus(),
    peers,
    mesh: s.mesh,
    fastpath: s.fastpath,
    ipam: s.ipam,
    pods: s.pods,
    ...(s.kubernetes === undefined ? {} : { kubernetes: s.kubernetes }),
    services: s.services,
    ...(s.policy === undefined ? {} : { policy: s.policy }),
    relayed: { ...s.sleeve.relayed },
    traffic: {
      tap,
      udp,
      router: { ...s.learningSwitch.counters },
      macs: s.learningSwitch.macs.size,
      sleeveMessages: s.sleeve.tx.messages,
      udpFlushes: s.sleeve.tx.flushes,
      probes: { ...s.sleeve.probeCounters() },
    },
    drops,
    reassembly: s.sleeve.reassemblyStatus(),
    memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
  };
}
