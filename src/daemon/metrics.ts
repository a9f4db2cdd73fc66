/**
 * The router's Prometheus metrics: one prom-client Registry per daemon, filled from the status
 * report at scrape time (`scrape(report)`), so the data plane pays nothing per frame. Every
 * value is reset and set again on each scrape: a peer, a range or a reason that is gone from the
 * report is gone from the metrics. Counters from the report are counters here (the report's
 * counts only grow while the router runs). Names follow Prometheus conventions: `weft_` prefix,
 * snake_case, `_total` for counters, `_bytes` and base units, what varies in labels. Node's
 * process metrics keep their standard names (`process_*`, `nodejs_*`) so stock dashboards work.
 * README's "Metrics and health" lists each metric; METRIC_HELP here is that list.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatusReport, VersionInfo } from '../api/types.js';
import { PUNCH_REFUSALS } from '../mesh/punch-wire.js';

/** Mesh connection close reasons that are failed handshakes (src/mesh: connection.ts, mesh-protocol.ts). */
export const HANDSHAKE_FAILURES = ['auth', 'handshakeTimeout', 'version', 'notWeft', 'downgrade'] as const;

const PATHS = ['fastpath', 'direct', 'relay', 'none'] as const;
const CONNECTION_STATES = ['preamble', 'handshake', 'hello', 'established', 'draining'] as const;
const TARGET_STATES = ['connecting', 'handshaking', 'established', 'failed', 'waiting', 'left'] as const;
const KEY_STATES = ['none', 'handshaking', 'established', 'expired'] as const;
const FASTPATH_STATES = ['probing', 'up', 'down', 'ineligible'] as const;
const IPAM_STATES = ['free', 'allocated', 'quarantined', 'reserved', 'held'] as const;
const NAT_GUESSES = ['none', 'mapped', 'endpoint-dependent', 'unknown'] as const;
const CANDIDATE_KINDS = ['local', 'advertised', 'reflexive', 'stun'] as const;

const REVOCATION_REFUSALS = ['badSignature', 'unchecked', 'noKey', 'malformed', 'full'] as const;

type Kind = 'gauge' | 'counter';

/** Every weft metric: kind, labels, help (the README table is this). */
export const METRIC_HELP = {
  weft_build_info: ['gauge', ['version', 'node_version', 'mesh_protocol', 'sleeve_protocol'], 'Always 1; the labels say what runs (peers check only the protocol versions)'],
  weft_peer_up: ['gauge', ['peer', 'nickname'], '1 while the peer is established on the sleeve (heard from recently), else 0'],
  weft_peer_path: ['gauge', ['peer', 'nickname', 'path'], "1 for the peer's current path (fastpath, direct, relay, none), 0 for the others"],
  weft_peer_path_switches_total: ['counter', ['peer', 'nickname'], "Changes of the peer's path"],
  weft_peer_sent_bytes_total: ['counter', ['peer', 'nickname'], 'Frame bytes sent to the peer over the sleeve (not the kernel fast path)'],
  weft_peer_received_bytes_total: ['counter', ['peer', 'nickname'], 'Frame bytes received from the peer over the sleeve'],
  weft_peer_sent_frames_total: ['counter', ['peer', 'nickname'], 'Frames sent to the peer over the sleeve'],
  weft_peer_received_frames_total: ['counter', ['peer', 'nickname'], 'Frames received from the peer over the sleeve'],
  weft_drops_total: ['counter', ['component', 'reason'], "Frames, datagrams and messages dropped, by where and why (status's drops: rx, tx, reassembly, switch, offload, udp, tap, fastpath, gossip, pods; and mesh.routed)"],
  weft_relayed_datagrams_total: ['counter', [], 'Sleeve datagrams relayed for other peers'],
  weft_relayed_bytes_total: ['counter', [], 'Bytes of the datagrams relayed for other peers'],
  weft_probes_total: ['counter', ['kind'], 'Sleeve probes: requests sent, answers sent, answers received (hole punching, observations, round trips)'],
  weft_punches_total: ['counter', ['result'], 'Hole-punching attempts that found a working candidate (punched) or none (failed)'],
  weft_relayed_trains_total: ['counter', [], 'Runs of relayed datagrams forwarded as one GSO send (received GRO trains)'],
  weft_io_packets_total: ['counter', ['device', 'direction'], 'Packets through the TAP device and the UDP socket (direction sent or received)'],
  weft_io_bytes_total: ['counter', ['device', 'direction'], 'Bytes through the TAP device and the UDP socket'],
  weft_learned_macs: ['gauge', [], 'MAC addresses in the learning switch'],
  weft_mesh_connections: ['gauge', ['state'], 'Mesh (TCP) connections by state'],
  weft_mesh_targets: ['gauge', ['state'], 'Addresses the mesh connects to, by state'],
  weft_mesh_peers: ['gauge', ['reachable'], 'Peers in the topology, reachable (a route) or not'],
  weft_mesh_connection_closes_total: ['counter', ['reason'], 'Mesh connections closed or refused, by reason'],
  weft_mesh_handshake_failures_total: ['counter', ['reason'], 'Mesh connections that failed their handshake (auth: wrong cluster secret; handshakeTimeout; version: another mesh protocol; notWeft)'],
  weft_pair_keys: ['gauge', ['state'], 'Peers by the state of their pair keys (the sleeve keys made over the mesh)'],
  weft_pair_key_handshake_failures_total: ['counter', ['peer'], 'Failed pair-key handshakes with the peer'],
  weft_pair_key_rekeys_total: ['counter', ['peer'], 'Pair-key rekeys with the peer'],
  weft_gossip_sent_bytes_total: ['counter', ['channel'], 'Gossip bytes sent on the channel (periodic, delta, connect, unicast, broadcast)'],
  weft_gossip_received_bytes_total: ['counter', ['channel'], 'Gossip bytes received on the channel'],
  weft_gossip_refused_total: ['counter', ['channel'], 'Gossip messages the channel refused (malformed, over a limit)'],
  weft_nat: ['gauge', ['nat'], "1 for what peers' observations say of this router's NAT (none, mapped, endpoint-dependent, unknown), 0 for the others"],
  weft_endpoint_candidates: ['gauge', ['kind'], 'Endpoints this router offers peers for hole punching, by kind (local, advertised, reflexive, stun)'],
  weft_punch_refused_total: ['counter', ['reason'], 'Candidate offers and answers from peers refused, by reason'],
  weft_fastpath_running: ['gauge', [], '1 while the kernel VXLAN fast path runs, else 0 (off, or not possible here)'],
  weft_fastpath_peer_state: ['gauge', ['peer', 'state'], "1 for the peer's fast-path state (probing, up, down, ineligible), 0 for the others"],
  weft_fastpath_probes_accepted_total: ['counter', [], 'Fast-path probes accepted'],
  weft_ipam_ready: ['gauge', [], '1 when IPAM can allocate, else 0 (absent when IPAM is off)'],
  weft_ipam_allocations: ['gauge', [], 'Allocations held by this router'],
  weft_ipam_owned_addresses: ['gauge', ['range'], 'Addresses of the range this router owns'],
  weft_ipam_addresses: ['gauge', ['range', 'state'], "This router's owned addresses by state: free, allocated (used), quarantined (released, not reusable yet), reserved, held (reclaimed, not allocatable yet)"],
  weft_pods: ['gauge', [], 'Pod interfaces the anti-spoofing table guards'],
  weft_policy_packets_total: ['counter', ['namespace', 'policy', 'verdict'], 'Packets a NetworkPolicy in force on this node allowed (new connections) or dropped (at the pods it isolates); verdict allowed or dropped'],
  weft_policy_applies_total: ['counter', ['kind'], 'Transactions applied to the policy table: full (the whole table) or elements (set elements only)'],
  weft_policy_apply_failures_total: ['counter', [], 'Transactions on the policy table that failed (the rules in force stay; a full rewrite follows)'],
  weft_policy_source_synced: ['gauge', [], '1 when the policy source (API server or file) has been read in full, else 0 (absent when NetworkPolicy is off)'],
  weft_revoked_peers: ['gauge', [], 'Peers in the blocklist (revoked: their connections are closed and refused)'],
  weft_revocations_refused_total: ['counter', ['reason'], 'Blocklist entries dropped, by reason (badSignature, unchecked: after a forged entry in the same gossip message, noKey: no --revocation-pubkey, malformed, full)'],
} as const satisfies Record<string, readonly [Kind, readonly string[], string]>;

type Name = keyof typeof METRIC_HELP;
type Labels = Record<string, string>;

export class WeftMetrics {
  readonly registry: Registry;
  private readonly build: VersionInfo;
  private readonly gauges = new Map<Name, Gauge>();
  private readonly counters = new Map<Name, Counter>();
  private readonly unlabelled: (Gauge | Counter)[] = [];

  /** `processMetrics`: Node's default process metrics too (the daemon: yes; tests may leave them out). */
  constructor(init: { build: VersionInfo; processMetrics: boolean }) {
    this.registry = new Registry();
    this.build = init.build;
    for (const [name, [kind, labelNames, help]] of Object.entries(METRIC_HELP) as [Name, (typeof METRIC_HELP)[Name]][]) {
      const config = { name, help, labelNames: [...labelNames], registers: [this.registry] };
      const metric = kind === 'gauge' ? new Gauge(config) : new Counter(config);
      if (metric instanceof Gauge) this.gauges.set(name, metric);
      else this.counters.set(name, metric);
      if (labelNames.length === 0) this.unlabelled.push(metric);
    }
    if (init.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.update(undefined);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text for this report (undefined while the router starts: build info and
   * process metrics only). The values are taken before the first await, so scrapes that overlap
   * each get their own report's values.
   */
  scrape(report: StatusReport | undefined): Promise<string> {
    this.update(report);
    return this.registry.metrics();
  }

  private update(r: StatusReport | undefined): void {
    // reset() leaves a 0 sample in a metric without labels; remove() takes it out, so what the
    // report does not have (IPAM off, a router still starting) is absent rather than 0.
    for (const g of this.gauges.values()) g.reset();
    for (const c of this.counters.values()) c.reset();
    for (const m of this.unlabelled) m.remove();
    const b = this.build;
    this.gauge('weft_build_info', { version: b.version, node_version: b.node, mesh_protocol: String(b.meshProtocol), sleeve_protocol: String(b.sleeveProtocol) }, 1);
    if (r === undefined) return;

    for (const p of r.peers) {
      const l = { peer: p.name, nickname: p.nickname };
      this.gauge('weft_peer_up', l, p.state === 'established' ? 1 : 0);
      this.states('weft_peer_path', l, 'path', PATHS, p.path);
      this.counter('weft_peer_path_switches_total', l, p.pathSwitches);
      this.counter('weft_peer_sent_bytes_total', l, p.txBytes);
      this.counter('weft_peer_received_bytes_total', l, p.rxBytes);
      this.counter('weft_peer_sent_frames_total', l, p.txFrames);
      this.counter('weft_peer_received_frames_total', l, p.rxFrames);
    }

    for (const [key, n] of Object.entries(r.drops)) {
      const dot = key.lastIndexOf('.');
      this.counter('weft_drops_total', dot < 0 ? { component: '', reason: key } : { component: key.slice(0, dot), reason: key.slice(dot + 1) }, n);
    }
    const routed = r.mesh.routed;
    this.counter('weft_drops_total', { component: 'mesh.routed', reason: 'unicastNoRoute' }, routed.unicastNoRoute);
    this.counter('weft_drops_total', { component: 'mesh.routed', reason: 'ttlExpired' }, routed.ttlExpired);
    this.counter('weft_drops_total', { component: 'mesh.routed', reason: 'unknownSource' }, routed.unknownSource);

    this.counter('weft_relayed_datagrams_total', {}, r.relayed.datagrams);
    this.counter('weft_relayed_bytes_total', {}, r.relayed.bytes);
    const pr = r.traffic.probes;
    if (pr !== undefined) {
      for (const [kind, n] of [['request', pr.requests], ['answer_sent', pr.answered], ['answer_received', pr.replies]] as const) this.counter('weft_probes_total', { kind }, n);
      this.counter('weft_punches_total', { result: 'punched' }, pr.punched);
      this.counter('weft_punches_total', { result: 'failed' }, pr.punchFailed);
    }
    this.counter('weft_relayed_trains_total', {}, r.relayed.trains);
    for (const [device, io] of [['tap', r.traffic.tap], ['udp', r.traffic.udp]] as const) {
      this.counter('weft_io_packets_total', { device, direction: 'sent' }, io.txPackets);
      this.counter('weft_io_packets_total', { device, direction: 'received' }, io.rxPackets);
      this.counter('weft_io_bytes_total', { device, direction: 'sent' }, io.txBytes);
      this.counter('weft_io_bytes_total', { device, direction: 'received' }, io.rxBytes);
    }
    this.gauge('weft_learned_macs', {}, r.traffic.macs);

    const m = r.mesh;
    this.tally('weft_mesh_connections', CONNECTION_STATES, m.connections.map((c) => c.state));
    this.tally('weft_mesh_targets', TARGET_STATES, m.targets.map((t) => t.state));
    const reachable = m.peers.filter((p) => p.hops !== undefined).length;
    this.gauge('weft_mesh_peers', { reachable: 'true' }, reachable);
    this.gauge('weft_mesh_peers', { reachable: 'false' }, m.peers.length - reachable);
    for (const [reason, n] of Object.entries(m.closes)) this.counter('weft_mesh_connection_closes_total', { reason }, n);
    for (const reason of HANDSHAKE_FAILURES) this.counter('weft_mesh_handshake_failures_total', { reason }, m.closes[reason] ?? 0);
    this.tally('weft_pair_keys', KEY_STATES, m.keys.map((k) => k.state));
    for (const k of m.keys) {
      this.counter('weft_pair_key_handshake_failures_total', { peer: k.peer }, k.failures);
      this.counter('weft_pair_key_rekeys_total', { peer: k.peer }, k.rekeys);
    }
    for (const ch of m.channels) {
      const sent = Object.values(ch.sent).reduce((a, t) => a + t.bytes, 0);
      const received = Object.values(ch.received).reduce((a, t) => a + t.bytes, 0);
      this.counter('weft_gossip_sent_bytes_total', { channel: ch.channel }, sent);
      this.counter('weft_gossip_received_bytes_total', { channel: ch.channel }, received);
      this.counter('weft_gossip_refused_total', { channel: ch.channel }, ch.refused);
    }
    this.states('weft_nat', {}, 'nat', NAT_GUESSES, m.endpoints.nat);
    const kinds = new Map<string, number>(CANDIDATE_KINDS.map((k) => [k, 0]));
    for (const c of m.endpoints.candidates) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
    for (const [kind, n] of kinds) this.gauge('weft_endpoint_candidates', { kind }, n);
    for (const reason of PUNCH_REFUSALS) this.counter('weft_punch_refused_total', { reason }, m.refused[`punch.${reason}`] ?? 0);

    const f = r.fastpath;
    this.gauge('weft_fastpath_running', {}, f.probes !== undefined ? 1 : 0);
    for (const p of f.peers) this.states('weft_fastpath_peer_state', { peer: p.name }, 'state', FASTPATH_STATES, p.state);
    if (f.probes !== undefined) this.counter('weft_fastpath_probes_accepted_total', {}, f.probes.accepted);

    if (r.ipam !== undefined) {
      this.gauge('weft_ipam_ready', {}, r.ipam.ready.ok ? 1 : 0);
      this.gauge('weft_ipam_allocations', {}, r.ipam.allocations);
      for (const s of r.ipam.ranges) {
        this.gauge('weft_ipam_owned_addresses', { range: s.range }, Number(s.owned));
        for (const state of IPAM_STATES) this.gauge('weft_ipam_addresses', { range: s.range, state }, Number(s[state]));
      }
    }
    if (r.pods !== undefined) this.gauge('weft_pods', {}, r.pods.pods.length);
    const np = r.policy;
    if (np !== undefined) {
      this.gauge('weft_policy_source_synced', {}, np.source?.synced === true ? 1 : 0);
      for (const p of np.policies) {
        this.counter('weft_policy_packets_total', { namespace: p.namespace, policy: p.name, verdict: 'allowed' }, p.allowed);
        this.counter('weft_policy_packets_total', { namespace: p.namespace, policy: p.name, verdict: 'dropped' }, p.dropped);
      }
      this.counter('weft_policy_applies_total', { kind: 'full' }, np.applies.full);
      this.counter('weft_policy_applies_total', { kind: 'elements' }, np.applies.elements);
      this.counter('weft_policy_apply_failures_total', {}, np.failures);
    }
    const rv = r.revocation;
    if (rv !== undefined) {
      this.gauge('weft_revoked_peers', {}, rv.entries.length);
      for (const reason of REVOCATION_REFUSALS) this.counter('weft_revocations_refused_total', { reason }, rv.refusedBy[reason] ?? 0);
    }
  }

  private gauge(name: Name, labels: Labels, value: number): void {
    if (Number.isFinite(value)) this.gauges.get(name)!.set(labels, value);
  }

  /** A count from the report; one that is not a non-negative number (never expected) is left out rather than thrown on. */
  private counter(name: Name, labels: Labels, value: number): void {
    if (Number.isFinite(value) && value >= 0) this.counters.get(name)!.inc(labels, value);
  }

  /** An enum as gauges: 1 for `current`, 0 for every other known state (and `current` even when unknown). */
  private states(name: Name, labels: Labels, label: string, known: readonly string[], current: string): void {
    for (const s of new Set([...known, current])) this.gauge(name, { ...labels, [label]: s }, s === current ? 1 : 0);
  }

  /** How many of `values` are in each state: every known state (0 included), and any other seen. */
  private tally(name: Name, known: readonly string[], values: readonly string[]): void {
    const n = new Map<string, number>(known.map((s) => [s, 0]));
    for (const v of values) n.set(v, (n.get(v) ?? 0) + 1);
    for (const [state, count] of n) this.gauge(name, { state }, count);
  }
}
