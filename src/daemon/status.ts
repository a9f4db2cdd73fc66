/** The status report served at GET /v1/status and printed by `weft status`. */
import type { IpamStatus } from '../ipam/status.js';
import { formatPeerId } from '../core/ids.js';
import { formatEndpoint } from '../core/net.js';
import type { IoCounters } from '../platform/tap.js';
import type { LinuxTap } from '../platform/linux/linux-tap.js';
import type { LinuxUdp } from '../platform/linux/linux-udp.js';
import type { LearningSwitch } from '../router/learning-switch.js';
import type { PeerPath } from '../router/overlay-switch.js';
import type { Sleeve } from '../router/sleeve/sleeve.js';
import type { MeshStatus } from '../mesh/mesh.js';
import type { FastPathPeerReport, FastPathReport } from '../router/fastpath/fast-path.js';
import type { DaemonConfig } from './config.js';
import type { PodGuardStatus } from './pod-guard.js';

export interface PeerStatus {
  /** Peer name (from its public key) and nickname. */
  name: string;
  nickname: string;
  id: string;
  endpoint: string | null;
  state: 'established' | 'unreachable';
  /** fastpath: kernel VXLAN; direct: sleeve, proven by heartbeats; relay: sleeve through `via`; none. */
  path: 'fastpath' | 'direct' | 'relay' | 'none';
  via: string | null;
  pathChanges: number;
  relayedRx: number;
  lastSeenMsAgo: number | null;
  rxSession: number | null;
  txSession: number | null;
  /** A key pair installed by the responder, waiting for the peer's first datagram under it. */
  pendingSession: number | null;
  /** Time left before the current keys stop working (their hard lifetime). */
  keyExpiresInMs: number | null;
  vnetCapable: boolean;
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  txMessages: number;
  rxMessages: number;
}

export interface StatusReport {
  version: 1;
  /** Peer name (from the public key) and nickname. */
  name: string;
  nickname: string;
  id: string;
  pid: number;
  uptimeS: number;
  listen: string;
  bridge: string;
  tap: string;
  mode: { encryption: 'chacha20-poly1305' | 'none'; aead: string; vnetHdr: boolean; udpGso: boolean; udpGro: boolean };
  mtu: { underlay: number; overlay: number; maxDatagram: number };
  peers: PeerStatus[];
  mesh: MeshStatus;
  fastpath: FastPathStatus;
  /** IPAM summary (`weft ipam status` has the whole picture); undefined when IPAM is off. */
  ipam: IpamSummary | undefined;
  /** The pods' anti-spoofing table: pods guarded, their drops; undefined when IPAM (and so CNI) is off. */
  pods: PodGuardStatus | undefined;
  relayed: { datagrams: number; bytes: number };
  traffic: { tap: IoCounters; udp: IoCounters; router: LearningSwitch['counters']; macs: number; sleeveMessages: number; udpFlushes: number };
  drops: Record<string, number>;
  reassembly: { inUse: number; completed: number; stored: number; memoryBytes: number };
  memory: { rssBytes: number; heapUsedBytes: number };
}

/** The fast path: its peers, and (when it runs) probe counts and the VXLAN port filter. */
export type FastPathStatus = { mode: string; note: string; peers: FastPathPeerReport[] } & Partial<Omit<FastPathReport, 'peers'>>;

export interface IpamSummary {
  ready: { ok: boolean; reason?: string };
  allocations: number;
  ranges: { range: string; owned: string; free: string; allocated: string; quarantined: string }[];
}

export function ipamSummary(st: IpamStatus): IpamSummary {
  return {
    ready: st.ready,
    allocations: st.allocations,
    ranges: st.spaces.map((sp) => ({ range: sp.range, owned: sp.own.owned, free: sp.own.free, allocated: sp.own.allocated, quarantined: sp.own.quarantined })),
  };
}

export function buildStatus(s: {
  config: DaemonConfig;
  sleeve: Sleeve;
  /** Each peer's path, from the OverlaySwitch. */
  paths: readonly PeerPath[];
  mesh: MeshStatus;
  fastpath: FastPathStatus;
  ipam: IpamSummary | undefined;
  pods: PodGuardStatus | undefined;
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
    name: s.mesh.name,
    nickname: s.mesh.nickname,
    id: formatPeerId(s.sleeve.selfId),
    pid: process.pid,
    uptimeS: Math.round(s.uptimeMs / 1000),
    listen: formatEndpoint({ address: s.config.listen.address, port: s.udp.localPort }),
    bridge: s.config.bridge,
    tap: s.tap.name,
    mode: { encryption: s.config.plaintext ? 'none' : 'chacha20-poly1305', aead: s.sleeve.cipherName, vnetHdr: s.tap.vnetHdr, udpGso: s.udp.gsoActive(), udpGro: s.udp.gro },
    mtu: { underlay: s.underlayMtu, overlay: s.mtu, maxDatagram: s.sleeve.maxDatagram },
    peers,
    mesh: s.mesh,
    fastpath: s.fastpath,
    ipam: s.ipam,
    pods: s.pods,
    relayed: { ...s.sleeve.relayed },
    traffic: {
      tap,
      udp,
      router: { ...s.learningSwitch.counters },
      macs: s.learningSwitch.macs.size,
      sleeveMessages: s.sleeve.tx.messages,
      udpFlushes: s.sleeve.tx.flushes,
    },
    drops,
    reassembly: s.sleeve.reassemblyStatus(),
    memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
  };
}
