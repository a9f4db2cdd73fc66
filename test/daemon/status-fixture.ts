/** A status report for tests of what is made from one (metrics, readiness); `peers` and `ipam` vary. */
import type { IoCounters, PeerStatus, StatusReport } from '../../src/api/types.js';

const io = (k: number): IoCounters => ({
  rxBatches: 1, rxPackets: 10 * k, rxBytes: 1000 * k, rxErrors: 0, txPackets: 20 * k, txBytes: 2000 * k, txErrors: 0, txDropped: 0,
  gsoFallbacks: 0, truncated: 0, pollErrors: 0, spinHits: 0, txIovLimit: 0, rxCalls: 0, lastErrno: 0,
});

export function peerStatus(name: string, nickname: string, over: Partial<PeerStatus> = {}): PeerStatus {
  return {
    name, nickname, id: '89abcdef', endpoint: '198.18.0.2:6784', state: 'established', path: 'direct', via: null,
    pathReason: 'heartbeats answered', pathSinceMs: 2500, pathSwitches: 1, pathChanges: 1, relayedRx: 0, lastSeenMsAgo: 100,
    rxSession: 1, txSession: 2, pendingSession: null, keyExpiresInMs: 1000, vnetCapable: true, rttMs: null, punch: null,
    txFrames: 3, txBytes: 300, rxFrames: 4, rxBytes: 400, txMessages: 3, rxMessages: 4,
    ...over,
  };
}

export function statusReport(over: Partial<StatusReport> = {}): StatusReport {
  return {
    version: 1,
    build: { version: '0.1.0', node: '20.19.0', meshProtocol: 3, meshProtocolMin: 2, meshProtocolMax: 3, sleeveProtocol: 2 },
    name: '0123456789abcdef', nickname: 'n1', id: '01234567', pid: 42, uptimeS: 7, listen: '198.18.0.1:6784', bridge: 'weft', tap: 'weft-tap',
    mode: { encryption: 'chacha20-poly1305', aead: 'openssl', vnetHdr: true, tapReads: 'io_uring', udpGso: true, udpGro: false, udpCoalesce: true },
    mtu: { underlay: 1500, overlay: 1404, maxDatagram: 1472 },
    peers: [
      peerStatus('fedcba9876543210', 'n2', { path: 'fastpath', pathSwitches: 2, txBytes: 5000, rxFrames: 40 }),
      peerStatus('aaaabbbbccccdddd', 'n3', { path: 'relay', via: 'n2', state: 'unreachable' }),
    ],
    mesh: {
      name: '0123456789abcdef', nickname: 'n1',
      connections: [
        { peer: 'fedcba9876543210', nickname: 'n2', address: '198.18.0.2:6784', outbound: true, state: 'established', sinceMs: 5000, pathUp: true, protocol: 3, release: '0.1.0' },
        { peer: '', nickname: '', address: '198.18.0.7:40000', outbound: false, state: 'handshake', sinceMs: 10, pathUp: false, protocol: 2, release: null },
      ],
      targets: [{ address: '198.18.0.9:6784', configured: true, state: 'waiting', attempts: 2, retryInMs: 1500, lastError: 'refused', peer: undefined }],
      peers: [
        { name: 'fedcba9876543210', nickname: 'n2', nextHop: 'fedcba9876543210', hops: 1 },
        { name: 'aaaabbbbccccdddd', nickname: 'n3', nextHop: undefined, hops: undefined },
      ],
      keys: [{ peer: 'fedcba9876543210', state: 'established', keyAgeMs: 100, expiresInMs: 1000, rekeys: 3, failures: 1, lastError: undefined }],
      closes: { auth: 4, closedByPeer: 2 },
      refused: {},
      channels: [{
        channel: 'topology',
        sent: { periodic: { messages: 1, bytes: 100 }, delta: { messages: 2, bytes: 20 }, connect: { messages: 0, bytes: 0 }, unicast: { messages: 0, bytes: 0 }, broadcast: { messages: 0, bytes: 0 } },
        received: { gossip: { messages: 3, bytes: 300 }, unicast: { messages: 0, bytes: 0 }, broadcast: { messages: 1, bytes: 7 } },
        coalesced: 0, decodeErrors: 0, refused: 5, belowProtocol: 0,
      }],
      preauth: { pending: 0, perAddressLimit: 4, totalLimit: 64, timeoutMs: 5000 },
      routed: { unicastForwarded: 0, unicastNoRoute: 6, ttlExpired: 0, unknownSource: 0, broadcastsRelayed: 0 },
      endpoints: { candidates: [], observed: [], nat: 'unknown', punches: [], hint: '', stun: [] },
    },
    fastpath: {
      mode: 'auto', note: 'auto',
      peers: [{ name: 'fedcba9876543210', underlay: '198.18.0.2', state: 'up', reason: 'probes answered', sinceMs: 2500, switches: 1 }],
      probes: { accepted: 77, drops: { malformed: 0, unknownPeer: 0, noKey: 0, badTag: 1, replayed: 0 } },
    },
    ipam: {
      ready: { ok: true }, allocations: 2,
      ranges: [{ range: '10.40.0.0/16', owned: '32768', free: '32700', allocated: '2', quarantined: '1', reserved: '1', held: '64' }],
    },
    pods: { table: 'weft-pods', pods: [], drops: { unknown: 0, mac: 9, probe: 0, ethertype: 0, arp: 0, ipv4: 0, ipv6: 0, nd: 0, router: 0, vxlan: 0 }, unknownPorts: [], problem: null },
    services: {
      enabled: true, bridge: 'weft',
      settings: [{ name: 'net.bridge.bridge-nf-call-iptables', want: '1', value: '1', ok: true }],
      hairpin: { ports: 1, on: ['vw0123456789ab'], off: [] }, problems: [], checkedAt: 5,
    },
    policy: {
      enabled: true,
      source: { kind: 'kubernetes', where: 'the API server', synced: true, error: null, problems: [] },
      table: 'inet weft-policy',
      policies: [{ namespace: 'shop', name: 'db-ingress', ingress: true, egress: false, selected: ['shop/db-0'], allowed: 12, dropped: 3 }],
      dropped: { ingress: null, egress: null },
      applies: { full: 2, elements: 9 },
      lastApply: { kind: 'elements', at: 1_700_000_000_000, ms: 4 },
      failures: 1,
      bridgeNetfilter: [],
      problem: null,
    },
    revocation: {
      enabled: true, publicKey: 'ab'.repeat(32),
      entries: [{ peer: 'cccc000011112222', at: 1_700_000_000_000, reason: 'stolen laptop', sig: '00'.repeat(64), nickname: 'n9' }],
      refused: 2, refusedBy: { badSignature: 2 },
    },
    relayed: { datagrams: 11, bytes: 1100, trains: 2 },
    traffic: { tap: io(1), udp: io(2), router: { tapFrames: 0, tapBytes: 0, unicast: 5, flooded: 6, leftToFastPath: 0, toTap: 0, toTapBytes: 0, toTapSuperFrames: 0, toTapCoalesced: 0 }, macs: 3, sleeveMessages: 0, udpFlushes: 0, probes: { requests: 7, answered: 6, replies: 5, punched: 1, punchFailed: 1 } },
    drops: { 'rx.badTag': 2, 'gossip.topology.malformed': 1, 'pods.mac': 9, 'udp.sendErrors': 0 },
    reassembly: { inUse: 0, completed: 0, stored: 0, memoryBytes: 0 },
    memory: { rssBytes: 50 << 20, heapUsedBytes: 10 << 20 },
    ...over,
  };
}
