/**
 * src/api/types.ts declares the API's answers by itself (it imports only core); the parts build
 * them from their own report types. The type checks below (run by `npm run lint`, tsc) fail when
 * a part's report and the API's type drift apart; the tests run the CLI's formatters over
 * answers of those types.
 */
import { describe, expect, it } from 'vitest';
import type * as api from '../../src/api/types.js';
import { formatIpamStatus, formatStatus } from '../../src/cli/format-status.js';
import type { AddressGrant } from '../../src/api/types.js';
import type { PodGuardStatus } from '../../src/daemon/pod-guard.js';
import type { DropReason } from '../../src/daemon/pod-guard-rules.js';
import type { PodNetwork } from '../../src/daemon/pod-network.js';
import type { ServiceBridge } from '../../src/daemon/service-bridge.js';
import type { Ipam } from '../../src/ipam/ipam.js';
import type { IpamStatus } from '../../src/ipam/status.js';
import type { MeshStatus } from '../../src/mesh/mesh.js';
import type { IoCounters } from '../../src/platform/tap.js';
import type { FastPathReport } from '../../src/router/fastpath/fast-path.js';
import type { LearningSwitchCounters } from '../../src/router/learning-switch.js';

/** true when A and B are the same type (each assignable to the other), else false. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export const sameShapes = {
  mesh: true satisfies Same<MeshStatus, api.MeshStatus>,
  fastPathPeers: true satisfies Same<FastPathReport['peers'], api.FastPathStatus['peers']>,
  fastPathProbes: true satisfies Same<FastPathReport['probes'], NonNullable<api.FastPathStatus['probes']>>,
  fastPathPort: true satisfies Same<FastPathReport['vxlanPort'], NonNullable<api.FastPathStatus['vxlanPort']>>,
  ipamStatus: true satisfies Same<IpamStatus, api.IpamStatus>,
  ipamStatusServed: true satisfies Same<ReturnType<Ipam['status']>, api.IpamStatus>,
  allocate: true satisfies Same<Awaited<ReturnType<Ipam['allocate']>>, api.IpamAllocateResponse>,
  release: true satisfies Same<Awaited<ReturnType<Ipam['release']>>, api.IpamReleaseResponse>,
  grants: true satisfies Same<ReturnType<Ipam['list']>[number], AddressGrant>,
  pods: true satisfies Same<PodGuardStatus, api.PodGuardStatus>,
  podDrops: true satisfies Same<DropReason, api.PodDropReason>,
  services: true satisfies Same<ReturnType<ServiceBridge['status']>, api.ServiceBridgeStatus>,
  cniNetwork: true satisfies Same<ReturnType<PodNetwork['network']>, api.CniNetwork>,
  io: true satisfies Same<IoCounters, api.IoCounters>,
  switch: true satisfies Same<LearningSwitchCounters, api.SwitchCounters>,
};

const io: api.IoCounters = {
  rxBatches: 1, rxPackets: 10, rxBytes: 2048, rxErrors: 0, txPackets: 20, txBytes: 4096, txErrors: 0, txDropped: 0,
  gsoFallbacks: 0, truncated: 0, pollErrors: 0, spinHits: 0, txIovLimit: 0, rxCalls: 0, lastErrno: 0,
};

const report: api.StatusReport = {
  version: 1,
  build: { version: '0.1.0', node: '20.19.0', meshProtocol: 3, meshProtocolMin: 2, meshProtocolMax: 3, sleeveProtocol: 2 },
  name: '0123456789abcdef',
  nickname: 'n1',
  id: '01234567',
  pid: 42,
  uptimeS: 7,
  listen: '198.18.0.1:6784',
  bridge: 'weft',
  tap: 'weft-tap',
  mode: { encryption: 'chacha20-poly1305', aead: 'openssl', vnetHdr: true, tapReads: 'io_uring', udpGso: true, udpGro: false, udpCoalesce: true },
  mtu: { underlay: 1500, overlay: 1404, maxDatagram: 1472 },
  peers: [{
    name: 'fedcba9876543210', nickname: 'n2', id: '89abcdef', endpoint: '198.18.0.2:6784', state: 'established', path: 'relay', via: 'n3',
    pathReason: 'relay via n3 (no direct path)', pathSinceMs: 2500, pathSwitches: 2,
    pathChanges: 1, relayedRx: 0, lastSeenMsAgo: 1500, rxSession: 1, txSession: 2, pendingSession: null, keyExpiresInMs: 1000, vnetCapable: true, rttMs: 1.5, punch: null,
    txFrames: 3, txBytes: 300, rxFrames: 4, rxBytes: 400, txMessages: 3, rxMessages: 4,
  }],
  mesh: {
    name: '0123456789abcdef', nickname: 'n1',
    connections: [{ peer: 'fedcba9876543210', nickname: 'n2', address: '198.18.0.2:6784', outbound: true, state: 'established', sinceMs: 5000, pathUp: true, protocol: 3, release: '0.1.0' }],
    targets: [{ address: '198.18.0.9:6784', configured: true, state: 'waiting', attempts: 2, retryInMs: 1500, lastError: 'refused', peer: undefined }],
    peers: [], keys: [], closes: {}, refused: {}, channels: [],
    preauth: { pending: 0, perAddressLimit: 4, totalLimit: 64, timeoutMs: 5000 },
    routed: { unicastForwarded: 0, unicastNoRoute: 0, ttlExpired: 0, unknownSource: 0, broadcastsRelayed: 0 },
    endpoints: { candidates: [], observed: [], nat: 'unknown', punches: [], hint: '', stun: [] },
  },
  fastpath: { mode: 'auto', note: 'auto', peers: [{ name: 'n2', underlay: '198.18.0.2', state: 'up', reason: 'probes answered', sinceMs: 2500, switches: 1 }] },
  ipam: { ready: { ok: false, reason: 'waiting for peers' }, allocations: 2, ranges: [] },
  pods: undefined,
  services: {
    enabled: true,
    bridge: 'weft',
    settings: [
      { name: 'net.bridge.bridge-nf-call-iptables', want: '1', value: null, ok: false },
      { name: 'net.ipv4.ip_forward', want: '1', value: '1', ok: true },
    ],
    hairpin: { ports: 3, on: ['vp1', 'vp2'], off: ['vp3'] },
    problems: ['net.bridge.bridge-nf-call-iptables: not in this kernel: br_netfilter is not loaded (modprobe br_netfilter)'],
    checkedAt: 5,
  },
  relayed: { datagrams: 0, bytes: 0, trains: 0 },
  traffic: { tap: io, udp: io, router: { tapFrames: 0, tapBytes: 0, unicast: 5, flooded: 6, leftToFastPath: 0, toTap: 0, toTapBytes: 0, toTapSuperFrames: 0, toTapCoalesced: 0 }, macs: 3, sleeveMessages: 0, udpFlushes: 0 },
  drops: { 'rx.badHops': 2, 'rx.replayed': 0 },
  reassembly: { inUse: 0, completed: 0, stored: 0, memoryBytes: 0 },
  memory: { rssBytes: 50 << 20, heapUsedBytes: 10 << 20 },
};

describe('the API types as the CLI reads them', () => {
  it.each([
    ['the router line', 'weft router 0123456789abcdef "n1" (id 01234567, pid 42, up 7s)'],
    ['the release, Node and the protocol versions', '\n  weft 0.1.0, node 20.19.0, mesh protocol 2..3, sleeve protocol 2\n'],
    ['a relayed peer', 'relay via n3'],
    ["a peer's path, why and since when", 'n2: relay for 2.5s, 2 switches: relay via n3 (no direct path)'],
    ['a connection target waiting', 'target 198.18.0.9:6784: waiting (refused), retry in 1.5s'],
    ['a fast-path peer', 'n2 (198.18.0.2): up, probes answered, for 2.5s, 1 switches'],
    ['IPAM not ready', 'IPAM: not ready (waiting for peers), 2 allocations'],
    ['the drops that happened, not the others', 'drops: rx.badHops=2'],
    ['what the bridge lacks for Services', 'Services bridge weft: set up by the router; off: net.bridge.bridge-nf-call-iptables=missing; hairpin on 2/3 veth ports'],
    ['why a Services setting is missing', 'problem: net.bridge.bridge-nf-call-iptables: not in this kernel: br_netfilter is not loaded'],
    ['the switch counters', 'MACs learned 3   unicast 5   flooded 6'],
  ])('weft status shows %s', (_, line) => {
    expect(formatStatus(report)).toContain(line);
  });

  it('weft status shows a punched peer as direct (punched), its round trip, and the attempt with a line per candidate', () => {
    const punched: api.PeerStatus = {
      ...report.peers[0]!, name: '1111111111111111', nickname: 'n4', endpoint: '198.18.0.4:6784', path: 'direct', via: null,
      pathReason: 'punched (via 198.18.0.4:6784)', rttMs: 2.5,
      punch: {
        state: 'punched', attempts: 2, sinceMs: 3000, endpoint: '198.18.0.4:6784', why: '',
        candidates: [
          { endpoint: '198.19.1.4:6784', kind: 'local', probes: 2, replies: 0, rttMs: null, result: 'not needed (2 probes, no answer yet)' },
          { endpoint: '198.18.0.4:6784', kind: 'reflexive', probes: 2, replies: 1, rttMs: 2.5, result: 'working' },
        ],
      },
    };
    const failed: api.PeerStatus = {
      ...punched, name: '2222222222222222', nickname: 'n5', path: 'relay', via: 'n3', pathReason: 'relay via n3 (no direct endpoint)', rttMs: null,
      punch: { state: 'failed', attempts: 1, sinceMs: 6000, endpoint: '', why: 'no answer from 1 candidate', candidates: [{ endpoint: '[2001:2::5]:6784', kind: 'local', probes: 0, replies: 0, rttMs: null, result: 'cannot send: an IPv4 socket' }] },
    };
    const text = formatStatus({ ...report, peers: [...report.peers, punched, failed] });
    expect(text).toMatch(/1111111111111111 +n4 +direct \(punched\) +198\.18\.0\.4:6784/);
    for (const line of [
      'n4: direct for 2.5s, 2 switches: punched (via 198.18.0.4:6784); rtt 2.5 ms',
      '    hole punching: attempt 2, punched 198.18.0.4:6784 (3.0s ago)',
      '      198.19.1.4:6784 (local): not needed (2 probes, no answer yet); 2 probes, 0 answers',
      '      198.18.0.4:6784 (reflexive): working; 2 probes, 1 answers, rtt 2.5 ms',
      '    hole punching: attempt 1, failed: no answer from 1 candidate (6.0s ago)',
      '      [2001:2::5]:6784 (local): cannot send: an IPv4 socket; 0 probes, 0 answers',
    ]) expect(text).toContain(line);
  });

  it('weft ipam status shows readiness, bootstrap and each range', () => {
    const st: api.IpamStatus = {
      self: '0123456789abcdef',
      ready: { ok: true },
      fenced: false,
      bootstrap: { mode: 'seeds', seeds: ['0123456789abcdef'] },
      spaces: [{
        range: '10.32.0.0/12', family: 4, genesis: undefined, owners: [{ peer: '0123456789abcdef', ranges: ['10.32.0.0/12'], size: '1048576' }], tombstones: [],
        own: { owned: '1048576', free: '1048574', allocated: '2', quarantined: '0', reserved: '0', held: '0' },
        conflicts: [], unconfirmed: { count: 0, entries: [], unknown: 0 }, pendingAsk: { asking: undefined, tried: [], waitingAllocations: 0 },
      }],
      allocations: 2,
      ringConflicts: { count: 0 },
      counters: {
        donationsGiven: 0, donationsReceived: 0, asksSent: 0, asksRefused: 0, materialized: 0, exhausted: 0, decodeErrors: 0, refusedSignature: 0,
        refusedVersion: 0, refusedRecord: 0, unconfirmed: 0, unusableGrants: 0, defended: 0, doubleSpends: 0, defenceImpossible: 0, revived: 0, givenBack: 0,
      },
    };
    const text = formatIpamStatus(st);
    expect(text).toContain('IPAM of 0123456789abcdef: ready');
    expect(text).toContain('bootstrap: seeds 0123456789abcdef');
    expect(text).toContain('0123456789abcdef (self): 1048576 addresses in 10.32.0.0/12');
    // The default start-up mode of a router started with --peer: it joins a member's ring.
    const joining = formatIpamStatus({ ...st, ready: { ok: false, reason: 'joining: waiting for the ring from a member' }, bootstrap: { mode: 'join' } });
    expect(joining).toContain('bootstrap: join (the ring comes from a member)');
    expect(joining).toContain('joining: waiting for the ring from a member');

    // Kubernetes mode: the blocks' Leases instead of the ring.
    const kube: api.IpamStatus = {
      ...st,
      bootstrap: { mode: 'kubernetes' },
      spaces: [{
        ...st.spaces[0]!, owners: [],
        blocks: { blockPrefix: 26, mine: ['10.32.0.0/26', '10.32.0.64/26'], others: [{ holder: 'fedcba9876543210', blocks: 3 }], free: '16379', conflicts: [{ block: '10.32.1.0/26', holder: 'fedcba9876543210' }] },
      }],
      blocks: { source: 'Leases in namespace kube-system of https://10.0.0.1:443', synced: true, lastError: 'listing the Leases: the API server answered 503', counters: { claimed: 2, claimRaces: 1, reclaimed: 0, reclaimRaces: 0, lost: 1, failures: 4, ignored: 1 } },
    };
    const k = formatIpamStatus(kube);
    expect(k).toContain('ownership: blocks as Leases, Leases in namespace kube-system of https://10.0.0.1:443; synced; last error: listing the Leases: the API server answered 503');
    expect(k).toContain('blocks: claimed 2 (lost races 1), reclaimed 0 (lost races 0), taken away 1, failed calls 4, Leases ignored 1');
    expect(k).toContain('blocks /26 held here (2): 10.32.0.0/26, 10.32.0.64/26');
    expect(k).toContain('held elsewhere: fedcba9876543210 3; free 16379');
    expect(k).toContain('BLOCK CONFLICTS (another router holds them; nothing is handed out there): 10.32.1.0/26 held by fedcba9876543210');
    expect(k).not.toContain('bootstrap:');
  });
});

describe('weft status, Kubernetes section', () => {
  const k: api.KubernetesStatus = {
    node: 'n1', namespace: 'kube-system', server: 'https://10.96.0.1:443', synced: true, nodesSeen: 3,
    peersFromNodes: [{ node: 'n2', peer: 'fedcba9876543210', endpoint: '198.18.0.2:6784', version: '0.1.0' }],
    ownNode: 'deleted', ownNodeProblem: "this router's Node n1 was deleted", publishes: 1, publishFailures: 0, invalidNodes: 1, deletedButReachable: [{ peer: '0123456789abcdef', node: 'n3' }],
    invalid: [{ node: 'n4', problem: 'weft.dev/peer "x" is not a peer name' }], nodesDeleted: 2,
    watch: { watching: false, resourceVersion: '42', lists: 2, relists: 1, watchRestarts: 5, expired: 1, errors: 3, lastError: 'listing Nodes: ECONNREFUSED', badEvents: 0 },
  };
  it.each([
    ['the Node, the server and the counts', 'Kubernetes: Node n1 (namespace kube-system) via https://10.96.0.1:443; synced, 3 Nodes seen, 1 peers from Nodes, 2 deleted Nodes forgotten'],
    ['each peer from a Node', 'n2: fedcba9876543210 at 198.18.0.2:6784 (0.1.0)'],
    ["the own Node's problem", "own Node: deleted (this router's Node n1 was deleted)"],
    ['the watch counters and last error', 'watch: closed at resourceVersion 42; lists 2, relists 1, restarts 5, 410 Gone 1, errors 3, bad events 0; last error: listing Nodes: ECONNREFUSED'],
    ['refused Nodes', 'Nodes refused: 1 (now: n4: weft.dev/peer "x" is not a peer name)'],
    ['a deleted Node whose router is still reachable', 'Node n3 deleted, but its router 0123456789abcdef is still reachable: forgotten (its blocks taken) once it is not'],
  ])('weft status shows %s', (_what, line) => {
    expect(formatStatus({ ...report, kubernetes: k })).toContain(line);
  });

  it('weft status marks a target from a Node, and has no Kubernetes section when standalone', () => {
    const mesh = { ...report.mesh, targets: [{ ...report.mesh.targets[0]!, configured: false, discovered: true }] };
    expect(formatStatus({ ...report, mesh })).toContain('target 198.18.0.9:6784 (from its Node): waiting');
    expect(formatStatus(report)).not.toContain('Kubernetes');
  });
});
