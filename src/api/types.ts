/**
 * The local API's requests and answers (HTTP with JSON bodies on the router's Unix socket), for
 * every program that talks to it: the CLI, the CNI plugin, the lab. Self-contained (it imports
 * nothing but core): the daemon, which builds the answers from the parts' own reports, is what
 * checks that they fit these types, and test/api/types.test.ts that the parts' report types and
 * these stay the same.
 *
 *   GET  /v1/status           → StatusReport
 *   GET  /v1/mesh             → MeshView (every router, from topology and the routers' reports)
 *   POST /v1/forget           ForgetRequest → ForgetResponse
 *   POST /v1/revoke           RevokeRequest → RevokeResponse
 *   POST /v1/ipam/allocate    IpamAllocateRequest → IpamAllocateResponse
 *   POST /v1/ipam/release     IpamReleaseRequest → IpamReleaseResponse
 *   GET  /v1/ipam/allocations → IpamAllocationsResponse
 *   GET  /v1/ipam/status      → IpamStatus
 *   GET  /v1/cni/network      → CniNetwork
 *   POST /v1/cni/attach       CniAttachRequest → {}
 *   POST /v1/cni/detach       CniDetachRequest → CniDetachResponse
 *   POST /v1/cni/exec         the plugin's stdin → its stdout (text; see src/daemon/cni-exec.ts)
 *
 * Every refusal is an ApiErrorBody with a stable code (src/api/errors.ts has them with their HTTP
 * status); "not ready yet" is always 503.
 */

/** The body of every error answer. */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

// --- GET /v1/mesh (issue 19: `weft status peers`, `weft graph`) -----------------------------------

/** Every router in the mesh as this router knows it: topology records, and each router's own report. */
export interface MeshView {
  /** This router's peer name. */
  self: string;
  /** Every router with a live topology record, this one first, then by nickname. */
  routers: RouterView[];
}

/** One router of the mesh. */
export interface RouterView {
  name: string;
  nickname: string;
  /** This router. */
  self: boolean;
  /** Reachable over the mesh from this router (a route exists). */
  reachable: boolean;
  /** Its release version, from its report; null: no report (not yet, or it speaks an older mesh protocol). */
  release: string | null;
  /** The mesh protocol version negotiated with it when it is a neighbour of this router; else null. */
  protocol: number | null;
  /** Age of its last report (ms); null: none. */
  reportAgeMs: number | null;
  /** Revoked (on the signed blocklist): its connections are refused everywhere. */
  revoked: boolean;
  endpoints: string[];
  /** Its mesh connections, from its topology record, with the data path from its report where known. */
  connections: LinkView[];
  /** Its IPAM share per range, from its report (decimal strings); empty: none reported. */
  ipam: RouterIpamView[];
}

/** One mesh connection of a router, as it reported it. */
export interface LinkView {
  peer: string;
  nickname: string;
  established: boolean;
  endpoint: string | null;
  /** The data path the router uses to this peer (fastpath, direct sleeve, punched direct sleeve, relay, none); null: not reported. */
  path: 'fastpath' | 'direct' | 'punched' | 'relay' | 'none' | null;
  /** The relay's peer name when path is relay. */
  via: string | null;
  /** Round trip of the direct path (ms); null when not measured. */
  rttMs: number | null;
}

/** A router's share of one IPAM range (decimal strings: IPv6 counts exceed 2^53). */
export interface RouterIpamView {
  range: string;
  owned: string;
  free: string;
  used: string;
  quarantined: string;
}

// --- GET /v1/status ------------------------------------------------------------------------------

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
  /** Why the overlay switch chose this path ("probes ok (...)", "probes failed: ...", "relay via ...", ...). */
  pathReason: string;
  /** Time since the path last changed (or since the peer was first seen). */
  pathSinceMs: number | null;
  /** Path changes so far (fast path, direct, relay, none). */
  pathSwitches: number;
  /** Round trip over the direct path, from probe answers (ms); null when not measured. */
  rttMs: number | null;
  /** Hole punching towards this peer (issue 18); null when it was never tried. */
  punch: PunchStatus | null;
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
  /** The format of this report (not the release: that is `build.version`). */
  version: 1;
  /** The release and the protocol versions peers check. */
  build: VersionInfo;
  /** Peer name (from the public key) and nickname. */
  name: string;
  nickname: string;
  id: string;
  pid: number;
  uptimeS: number;
  listen: string;
  bridge: string;
  tap: string;
  mode: { encryption: 'chacha20-poly1305' | 'none'; aead: string; vnetHdr: boolean; tapReads: string; udpGso: boolean; udpGro: boolean; udpCoalesce: boolean };
  mtu: { underlay: number; overlay: number; maxDatagram: number };
  /** The sleeve's seal and open batches (--crypto-threads); absent from routers before issue 20. */
  crypto?: CryptoStatus;
  peers: PeerStatus[];
  mesh: MeshStatus;
  fastpath: FastPathStatus;
  /** IPAM summary (`weft ipam status` has the whole picture); undefined when IPAM is off. */
  ipam: IpamSummary | undefined;
  /** The pods' anti-spoofing table: pods guarded, their drops; undefined when IPAM (and so CNI) is off. */
  pods: PodGuardStatus | undefined;
  /** Kubernetes mode: discovery from Node objects; undefined when standalone. */
  kubernetes?: KubernetesStatus;
  /** What the pods' bridge has for kube-proxy's Services (bridge netfilter, forwarding, hairpin). */
  services: ServiceBridgeStatus;
  /** NetworkPolicy enforcement; undefined when off (--network-policy off, or auto without a source). */
  policy?: PolicyStatus;
  /** The blocklist (issue 19, revoking one node): entries in force, entries refused. */
  revocation?: RevocationStatus;
  /** Datagrams relayed for other peers; `trains`: runs of them forwarded as one GSO send (a relayed GRO train). */
  relayed: { datagrams: number; bytes: number; trains: number };
  traffic: {
    tap: IoCounters; udp: IoCounters; router: SwitchCounters; macs: number; sleeveMessages: number; udpFlushes: number;
    /** Sleeve probes (issue 18): requests sent, answers sent, answers received, punches that worked and failed. */
    probes?: { requests: number; answered: number; replies: number; punched: number; punchFailed: number };
  };
  drops: Record<string, number>;
  reassembly: { inUse: number; completed: number; stored: number; memoryBytes: number };
  memory: { rssBytes: number; heapUsedBytes: number };
}

/** The sleeve's AEAD work: threads each batch runs on (0: one message at a time), what the batches ran. */
export interface CryptoStatus {
  threads: number;
  seals: CryptoBatchStatus;
  opens: CryptoBatchStatus;
  /** Seals the AEAD library refused (out of memory): those messages went out damaged. */
  sealFailures: number;
}

/** Runs of a batch, jobs and bytes in them; `pooled*`: the part run on several threads. */
export interface CryptoBatchStatus {
  runs: number;
  pooledRuns: number;
  jobs: number;
  pooledJobs: number;
  bytes: number;
  pooledBytes: number;
  /** Jobs the pool's threads ran (the rest ran on the router's thread). */
  helped: number;
}

/** Hole punching towards one peer: the last attempt and what each candidate did. */
export interface PunchStatus {
  /** probing: the attempt runs; punched: a candidate works (the direct path came from it); failed: none answered. */
  state: 'probing' | 'punched' | 'failed';
  /** Attempts so far (each `Overlay.punch` call starts one). */
  attempts: number;
  /** Since the current attempt started. */
  sinceMs: number;
  /** The candidate that works ('' when none). */
  endpoint: string;
  candidates: PunchCandidateStatus[];
  /** Why the last attempt failed ('' when it did not). */
  why: string;
}

export interface PunchCandidateStatus {
  endpoint: string;
  /** local, advertised, reflexive, stun (`CandidateKind`). */
  kind: string;
  probes: number;
  replies: number;
  rttMs: number | null;
  /** working, probing, "no answer to N probes", "cannot send: ..." */
  result: string;
}

/** This router's own endpoints as the mesh knows them (issue 18). */
export interface EndpointsStatus {
  /** What this router offers peers to punch to: local addresses, --advertise, reflexive (observed by peers), STUN. */
  candidates: { endpoint: string; kind: string }[];
  /** Where peers saw our probes come from, newest first. */
  observed: { endpoint: string; by: string; agoMs: number }[];
  /**
   * What the observations say of the path out: none (peers see one of our own addresses),
   * mapped (one public endpoint whoever looks: punching works), endpoint-dependent (each peer
   * sees another port: direct paths only towards easy peers, else relays), unknown (no
   * observation yet).
   */
  nat: 'none' | 'mapped' | 'endpoint-dependent' | 'unknown';
  /** Hole punching per peer without a mesh connection: exchanges of candidates sent and received. */
  punches: { peer: string; state: string; offersSent: number; offersReceived: number; lastMsAgo: number | null }[];
  /** A hint for the operator ('' when none), e.g. that --advertise is missing behind NAT. */
  hint: string;
  /**
   * Per --stun server: the address asked ('' before any), waiting (no answer yet), mapped (it
   * sees us at `mapped`, a candidate of kind 'stun'), failed (`lastError` says why; retried with
   * backoff); requests sent and answers received.
   */
  stun: { server: string; resolved: string; state: 'waiting' | 'mapped' | 'failed'; mapped: string; lastError: string; requests: number; answers: number }[];
}

/** What a router runs (`weft version`, `weft_build_info`). */
export interface VersionInfo {
  /** The release (package.json's version); peers never check it. */
  version: string;
  /** The git commit the build was made from, when the build recorded one (dist/build-info.json). */
  commit?: string;
  /** Node's version, without the v. */
  node: string;
  /** The highest mesh protocol version this build speaks (= meshProtocolMax). */
  meshProtocol: number;
  /** The mesh protocol versions this build speaks; neighbours negotiate the highest both do. */
  meshProtocolMin: number;
  meshProtocolMax: number;
  /** The sleeve datagram header's version: datagrams with another are dropped. */
  sleeveProtocol: number;
}

/** Kubernetes mode: this router's Node, the API server, discovery and its watch. */
export interface KubernetesStatus {
  node: string;
  namespace: string;
  server: string;
  /** The Node list has completed at least once (the peers below reflect the API server). */
  synced: boolean;
  nodesSeen: number;
  /** Other routers found on Nodes: the mesh dials these. */
  peersFromNodes: { node: string; peer: string; endpoint: string; version: string }[];
  /** published, publishing, missing, deleted, no-endpoint, unknown (not synced yet). */
  ownNode: string;
  /** What is wrong with this router's own Node ('' when nothing). */
  ownNodeProblem: string;
  publishes: number;
  publishFailures: number;
  /** Nodes whose weft annotations were refused (once per Node and problem), and those refused now. */
  invalidNodes: number;
  invalid: { node: string; problem: string }[];
  /** Peers forgotten because their Node was deleted. */
  nodesDeleted: number;
  /** Deleted Nodes whose routers are still reachable: forgotten (and their blocks taken) once they are not. */
  deletedButReachable: { peer: string; node: string }[];
  watch: {
    watching: boolean;
    resourceVersion: string;
    lists: number;
    relists: number;
    watchRestarts: number;
    expired: number;
    errors: number;
    lastError: string | null;
    badEvents: number;
  };
}

/** The fast path: its peers, and (when it runs) probe counts and the VXLAN port filter. */
export interface FastPathStatus {
  mode: string;
  note: string;
  peers: FastPathPeerReport[];
  /** Present while the fast path runs. */
  probes?: { accepted: number; drops: ProbeDrops };
  vxlanPort?: VxlanPortReport;
}

export interface IpamSummary {
  ready: { ok: boolean; reason?: string };
  allocations: number;
  /** This router's addresses per range (decimal strings); owned = free + allocated + quarantined + reserved + held. */
  ranges: { range: string; owned: string; free: string; allocated: string; quarantined: string; reserved: string; held: string }[];
}

/** The learning switch's counters (frames from the TAP, where they went). */
export interface SwitchCounters {
  tapFrames: number;
  tapBytes: number;
  unicast: number;
  flooded: number;
  /** Frames for a peer the kernel fast path carries (the bridge will learn it there). */
  leftToFastPath: number;
  /** TAP writes (a coalesced super-frame is one) and their bytes. */
  toTap: number;
  toTapBytes: number;
  /** USO super-frames written (--no-udp-coalesce: none) and the frames they carried. */
  toTapSuperFrames: number;
  toTapCoalesced: number;
}

/** A device's or socket's I/O counters (the TAP, the UDP socket). */
export interface IoCounters {
  rxBatches: number;
  rxPackets: number;
  rxBytes: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  txErrors: number;
  txDropped: number;
  gsoFallbacks: number;
  truncated: number;
  pollErrors: number;
  spinHits: number;
  /** Datagrams dropped whole on send: more pieces (iovecs) than the addon sends in one datagram. */
  txIovLimit: number;
  /** Read-side system calls (read, recvmmsg, io_uring_enter): rxPackets / rxCalls is what one call brings. */
  rxCalls: number;
  lastErrno: number;
}

/** The mesh: connections, connection targets, peers and routes, pair keys, refusals. */
export interface MeshStatus {
  name: string;
  nickname: string;
  connections: {
    peer: string; nickname: string; address: string; outbound: boolean; state: string; sinceMs: number; pathUp: boolean;
    /** The negotiated mesh protocol version. */
    protocol: number;
    /** The neighbour's release, from its HELLO (protocol 3 and later); null: not known. */
    release: string | null;
  }[];
  targets: TargetStatus[];
  peers: { name: string; nickname: string; nextHop: string | undefined; hops: number | undefined }[];
  keys: PairKeyStatus[];
  closes: Record<string, number>;
  /**
   * Messages refused by their channel (malformed, over a limit), per channel, and those for a
   * channel this router does not have (`unknownChannel`): dropped, the connection stays.
   */
  refused: Record<string, number>;
  /** Each channel's messages and bytes sent and received, refusals, in the order made. */
  channels: GossipChannelStats[];
  /** Unauthenticated inbound connections held now, and the limits. */
  preauth: { pending: number; perAddressLimit: number; totalLimit: number; timeoutMs: number };
  routed: RoutedCounters;
  /** Own endpoints, observations and hole punching (issue 18). */
  endpoints: EndpointsStatus;
}

/** Messages and their bytes. */
export interface Traffic {
  messages: number;
  bytes: number;
}

/** Sum of a group of counters (a channel's sent or received kinds). */
export function totalTraffic(group: Readonly<Record<string, Traffic>>): Traffic {
  const out = { messages: 0, bytes: 0 };
  for (const t of Object.values(group)) {
    out.messages += t.messages;
    out.bytes += t.bytes;
  }
  return out;
}

/** One gossip channel's counters (`mesh.channels`). */
export interface GossipChannelStats {
  channel: string;
  sent: { periodic: Traffic; delta: Traffic; connect: Traffic; unicast: Traffic; broadcast: Traffic };
  received: { gossip: Traffic; unicast: Traffic; broadcast: Traffic };
  /** Deltas that left inside another send (coalesced) or inside periodic full state. */
  coalesced: number;
  decodeErrors: number;
  /** Messages the gossiper refused (malformed, over a limit; `decodeErrors` among them): dropped. */
  refused: number;
  /** Messages not sent to a neighbour whose negotiated mesh protocol is below the channel's `minProtocol`. */
  belowProtocol: number;
}

/** left: a learned endpoint that kept failing while its peer is reachable through the mesh; tried again only rarely (the punched path serves the peer). */
export type TargetState = 'connecting' | 'handshaking' | 'established' | 'failed' | 'waiting' | 'left';

/** An address the mesh connects to (configured, or learned from topology). */
export interface TargetStatus {
  address: string;
  configured: boolean;
  /** From Kubernetes Nodes (--kubernetes). */
  discovered?: boolean;
  state: TargetState;
  attempts: number;
  retryInMs: number | undefined;
  lastError: string | undefined;
  peer: string | undefined;
  /** A host name target (--peer HOST:PORT): the address it resolved to and was last dialled. */
  resolved?: string;
}

/** The pair keys with one peer. */
export interface PairKeyStatus {
  peer: string;
  /** expired: the keys are past their lifetime (the overlay no longer uses them) and no rekey succeeded yet. */
  state: 'none' | 'handshaking' | 'established' | 'expired';
  keyAgeMs: number | undefined;
  /** Until the overlay stops using these keys (0 once expired). */
  expiresInMs: number | undefined;
  rekeys: number;
  failures: number;
  lastError: string | undefined;
}

/** Mesh messages for other peers: forwarded, or dropped by reason. */
export interface RoutedCounters {
  unicastForwarded: number;
  unicastNoRoute: number;
  /** A unicast for another peer arriving with TTL 0. */
  ttlExpired: number;
  /** src neither the neighbour nor a live member, or ourselves. */
  unknownSource: number;
  broadcastsRelayed: number;
}

/** One peer of the kernel fast path. */
export interface FastPathPeerReport {
  name: string;
  underlay: string;
  state: 'probing' | 'up' | 'down' | 'ineligible';
  reason: string;
  sinceMs: number;
  switches: number;
}

/** Probes dropped before the health judge, by reason. */
export interface ProbeDrops {
  /** Of the probe ethertype but not a probe (wrong magic, length, or MACs that disagree with the ids). */
  malformed: number;
  /** Not for us, or from a router that is not a fast-path peer. */
  unknownPeer: number;
  /** From a peer we hold no probe key for (no pair keys yet, or any more). */
  noKey: number;
  /** A tag that matches none of the peer's keys: forged, damaged, or under an old key. */
  badTag: number;
  /** Authentic but not newer than one already accepted under that key. */
  replayed: number;
}

/** The fast path's VXLAN port filter. */
export interface VxlanPortReport {
  /** The nftables table holding the filter. */
  table: string;
  port: number;
  /** Underlay addresses allowed to reach the port (as last written). */
  peers: string[];
  /** Datagrams to the port from anyone else, dropped (since the table was written). */
  refused: { packets: number; bytes: number };
  /** Frames from pods to or from a probe MAC, or of the probe ethertype, dropped on the bridge (table bridge weft-probe). */
  podProbes: { packets: number; bytes: number };
}

/** Why the pods' anti-spoofing table dropped a frame. */
export type PodDropReason = 'unknown' | 'mac' | 'probe' | 'ethertype' | 'arp' | 'ipv4' | 'ipv6' | 'nd' | 'router' | 'vxlan';

/** The pods' anti-spoofing table. */
export interface PodGuardStatus {
  table: string;
  pods: GuardedPodStatus[];
  drops: Record<PodDropReason, number>;
  /** Pod ports (vw…) on the bridge with no attachment known: everything from them is dropped. */
  unknownPorts: string[];
  /** The last failure to program the table, until a later change succeeds. */
  problem: string | null;
}

/** NetworkPolicy on this node (src/daemon/policy.ts): the table, its source, per policy counters. */
export interface PolicyStatus {
  /** --network-policy: on (auto in Kubernetes mode or with --policy-file), or off. */
  enabled: boolean;
  /** Where policies come from; null when off. */
  source: { kind: 'kubernetes' | 'file'; where: string; synced: boolean; error: string | null; problems: { where: string; problem: string }[] } | null;
  /** `inet weft-policy`. */
  table: string;
  /** The policies in force on this node, by namespace and name. */
  policies: PolicyReport[];
  /** Packets dropped at isolated local pods, all policies together (null: the table has no such counter). */
  dropped: { ingress: number | null; egress: number | null };
  /** Transactions applied: the whole table, or set elements only. */
  applies: { full: number; elements: number };
  lastApply: { kind: 'full' | 'elements'; at: number; ms: number } | null;
  /** Transactions that failed (each is followed by a full rewrite). */
  failures: number;
  /** Bridge netfilter settings the policy needs that are not set (empty: all set). */
  bridgeNetfilter: string[];
  /** The last failure (compile or apply), until a later apply succeeds. */
  problem: string | null;
}

export interface PolicyReport {
  namespace: string;
  name: string;
  ingress: boolean;
  egress: boolean;
  /** The local pods it selects (`namespace/name`). */
  selected: string[];
  /** Packets of new connections it allowed. */
  allowed: number;
  /** Packets dropped at the pods it isolates. */
  dropped: number;
}

/** The bridge's settings for Services (src/daemon/service-bridge.ts). */
export interface ServiceBridgeStatus {
  /** Whether the router sets them (--service-bridge; auto: in Kubernetes mode); off, they are only read. */
  enabled: boolean;
  bridge: string;
  /** Each kernel parameter wanted and what it reads now (null: missing or unreadable). */
  settings: { name: string; want: string; value: string | null; ok: boolean }[];
  /** The bridge's veth ports (pods) and their hairpin mode. */
  hairpin: { ports: number; on: string[]; off: string[] };
  /** What could not be read or set, each naming the parameter or port (always empty when not enabled). */
  problems: string[];
  /** Clock ms of the last check. */
  checkedAt: number | null;
}

export interface GuardedPodStatus {
  containerId: string | null;
  ifName: string | null;
  port: string;
  mac: string;
  addresses: string[];
  /** Frames from this pod dropped by the table, every reason together. */
  dropped: number;
}

// --- POST /v1/forget -----------------------------------------------------------------------------

export interface ForgetRequest {
  /** A peer name or a nickname. */
  peer: string;
  /** Even while the peer is reachable (it is then fenced). */
  force?: boolean;
}

export interface ForgetResponse {
  /** The peer name forgotten. */
  forgotten: string;
  /** What becomes of its IPAM ranges ("off" when IPAM is off). */
  ipam: string;
}

// --- /v1/ipam ------------------------------------------------------------------------------------

/** An address with its prefix length: a pod's address, or a gateway's on the bridge. */
export interface PrefixedAddress {
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

/** An attachment: a container's interface. */
export interface IpamAllocateRequest {
  containerId: string;
  ifName: string;
  /**
   * The CNI network (the config's `name`) the allocation is for. Such an allocation is "adding"
   * until the ADD's POST /v1/cni/attach (or 60 s), and only a GC of that network releases it.
   * Absent (`weft ipam allocate`): a reservation by hand, which GC never releases.
   */
  network?: string;
  /** Wait for free space at most this long (ms; the router's own limit still applies). */
  timeoutMs?: number;
}

export interface IpamAllocateResponse {
  /** One per address range (IPv4, then IPv6 when dual-stack). */
  addresses: PrefixedAddress[];
  /** The attachment already had these addresses (a repeated request). */
  existing?: true;
}

export interface IpamReleaseRequest {
  containerId: string;
  /** Only this interface; all the container's when absent. */
  ifName?: string;
  /**
   * Conditional release (CNI GC, the replay of a journaled DEL): with `network` or `before`, an
   * allocation is released only when it was made for `network` (when given), is not adding, and
   * was last allocated or confirmed before `before` (ms since the epoch, when given); the others
   * are listed in `skipped`.
   */
  network?: string;
  before?: number;
}

export interface IpamReleaseResponse {
  released: string[];
  /** What a conditional release left alone, and why. */
  skipped?: { containerId: string; ifName: string; reason: 'adding' | 'newer' | 'other-network' }[];
}

/** The addresses IPAM granted one attachment. */
export interface AddressGrant {
  containerId: string;
  ifName: string;
  addresses: string[];
  /** When, in ms since the epoch (wall clock). */
  allocatedAt: number;
  /** The CNI network it was allocated for; absent: by hand (`weft ipam allocate`) or the router's own. */
  network?: string;
  /** Its CNI ADD has not confirmed it yet (see IpamAllocateRequest.network). */
  adding?: true;
}

export interface IpamAllocationsResponse {
  allocations: AddressGrant[];
}

/** GET /v1/ipam/status: readiness, bootstrap, per range who owns what and this router's counts. */
export interface IpamStatus {
  self: string;
  ready: { ok: boolean; reason?: string };
  fenced: boolean;
  /** How ownership is decided: the ring's bootstrap, or (Kubernetes mode) the API server's block Leases. */
  bootstrap:
    | { mode: 'seeds'; seeds: string[] }
    | { mode: 'initPeers'; initPeers: number; waiting: { peer: string; initPeers: number }[] }
    | { mode: 'join' }
    | { mode: 'kubernetes' };
  spaces: SpaceStatus[];
  allocations: number;
  ringConflicts: { count: number; last?: string };
  counters: IpamCounters;
  /** Kubernetes mode: where the blocks' holders come from and how reading and writing them went. */
  blocks?: BlocksStatus;
}

/** Kubernetes mode: the IPAM block Leases as this router sees them. */
export interface BlocksStatus {
  /** "Leases in namespace NS of https://..." */
  source: string;
  /** One list of the Leases succeeded (the holders are known). */
  synced: boolean;
  /** Wall ms of the last successful list. */
  lastSyncAt?: number;
  /** The last failed call to the API server, while the calls fail. */
  lastError?: string;
  counters: {
    /** Blocks created (claimed) here. */
    claimed: number;
    /** Creations refused with 409 (another router got that block first). */
    claimRaces: number;
    /** Blocks of forgotten routers taken over here. */
    reclaimed: number;
    /** Reclaims refused with 409 (another router took the block over first). */
    reclaimRaces: number;
    /** Blocks this router held that the API server showed held by another router. */
    lost: number;
    /** Calls to the API server that failed (no answer, or an error other than a lost race). */
    failures: number;
    /** Leases with the weft label that were ignored: bad name, CIDR or holder. */
    ignored: number;
  };
}

/** Kubernetes mode: one range's blocks. */
export interface SpaceBlocksStatus {
  /** The prefix length of a block (/26, /122, or the range's own when smaller). */
  blockPrefix: number;
  /** Blocks held here (CIDRs). */
  mine: string[];
  /** Blocks held elsewhere, per holder (peer name), most first. */
  others: { holder: string; blocks: number }[];
  /** Blocks held by nobody (decimal string: an IPv6 count can exceed 2^53). */
  free: string;
  /** Blocks this router held, or holds allocations in, that another router holds: never allocated from here. */
  conflicts: { block: string; holder: string }[];
}

/** One address range (space) as this router sees it. */
export interface SpaceStatus {
  range: string;
  family: 4 | 6;
  genesis: { seeds: string[]; adopted: string[]; waitingFor: string[] } | undefined;
  owners: OwnerStatus[];
  tombstones: string[];
  /** This peer's counts (decimal strings). */
  own: { owned: string; free: string; allocated: string; quarantined: string; reserved: string; held: string };
  /** Addresses allocated here that this peer does not own (fenced, or lost a race). */
  conflicts: string[];
  /**
   * Winning entries this router has not verified the right of (custody): not trusted for
   * anything here. At most 20 are listed; `count` has them all.
   */
  unconfirmed: { count: number; entries: { range: string; owner: string; writer: string }[]; unknown: number };
  pendingAsk: { asking: string | undefined; tried: string[]; waitingAllocations: number };
  /** Kubernetes mode: the range's blocks (`owners` then lists the blocks' holders). */
  blocks?: SpaceBlocksStatus;
}

export interface OwnerStatus {
  peer: string;
  /** CIDR when a run is one aligned block, else `first-last`. */
  ranges: string[];
  /** Addresses owned (decimal string: an IPv6 count can exceed 2^53). */
  size: string;
  /** A forgotten peer whose entries its heir has not taken over yet. */
  forgotten?: { heir: string | undefined };
}

export interface IpamCounters {
  donationsGiven: number;
  donationsReceived: number;
  asksSent: number;
  asksRefused: number;
  materialized: number;
  exhausted: number;
  decodeErrors: number;
  /** Records refused, each by itself (the rest of the message merged): a bad signature, a version or epoch past the bound, a record its writer may not write. */
  refusedSignature: number;
  refusedVersion: number;
  refusedRecord: number;
  /** Winning entries received whose writer this router could not verify owned the space. */
  unconfirmed: number;
  /** Donations to us that were not used (their giver not verified as the owner). */
  unusableGrants: number;
  /** Entries written back over space of ours someone else took. */
  defended: number;
  /** Space given to us and then given again by the same giver (not fought over). */
  doubleSpends: number;
  /** Space of ours taken at the version bound (cannot be written back). */
  defenceImpossible: number;
  /** Tombstones of ourselves cancelled with a revival. */
  revived: number;
  /** Reclaimed entries given back to a peer that revived. */
  givenBack: number;
}

// --- /v1/cni -------------------------------------------------------------------------------------

/** What a pod on this node is plugged into, and whether the router takes pods now. */
export interface CniNetwork {
  ready: boolean;
  /** Why not ready (absent when ready). */
  reason?: string;
  bridge: string;
  mtu: number;
  /** The gateway's address per family on the bridge. */
  gateways: PrefixedAddress[];
  /** Why no new pod can get an address now (the pool is exhausted); absent when one can. */
  exhausted?: string;
}

/** The router guards the attachment's port: frames from it must carry `mac` and its allocated addresses. */
export interface CniAttachRequest {
  containerId: string;
  ifName: string;
  mac: string;
  /** The pod (K8S_POD_NAMESPACE and K8S_POD_NAME of CNI_ARGS), when the runtime gives it: NetworkPolicy selects it. */
  pod?: CniPodIdentity;
}

/** A Kubernetes pod's identity: namespace (a DNS-1123 label) and name (a DNS-1123 subdomain). */
export interface CniPodIdentity {
  namespace: string;
  name: string;
}

export interface CniDetachRequest {
  containerId: string;
  ifName: string;
}

export interface CniDetachResponse {
  /** False: the attachment was not guarded (no error). */
  detached: boolean;
}

// --- POST /v1/revoke (issue 19: revoking one node) ------------------------------------------------

/** One revocation entry: signed by the revocation key (`weft revoke` signs; the daemon only checks). */
export interface RevocationEntryJson {
  /** The revoked router's peer name. */
  peer: string;
  /** When it was revoked (ms since the epoch). */
  at: number;
  reason: string;
  /** Ed25519 signature, 128 hex digits. */
  sig: string;
}

export type RevokeRequest = RevocationEntryJson;

export interface RevokeResponse {
  peer: string;
  /** false: the blocklist already had this peer. */
  added: boolean;
}

export interface RevocationStatus {
  /** A revocation public key is configured (--revocation-pubkey); without one every entry is refused. */
  enabled: boolean;
  /** The revocation public key (64 hex digits), '' without one. */
  publicKey: string;
  /** Entries in force, by peer name (with the nickname topology has for it, '' when none). */
  entries: (RevocationEntryJson & { nickname: string })[];
  /** Entries dropped (bad signature, no key, malformed, blocklist full), in all and by reason. */
  refused: number;
  refusedBy: Record<string, number>;
}
