/** The local API's request and response types. */
import type { IpamStatus } from '../ipam/status.js';
import type { IoCounters } from '../platform/tap.js';
import type { Router } from '../router/router.js';
import type { MeshStatus } from '../mesh/mesh.js';
import type { FastPathPeerReport, FastPathReport } from '../router/fastpath/fast-path.js';
import type { PodGuardStatus } from '../daemon/pod-guard.js';

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
  traffic: { tap: IoCounters; udp: IoCounters; router: Router['counters']; macs: number; sleeveMessages: number; udpFlushes: number };
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
