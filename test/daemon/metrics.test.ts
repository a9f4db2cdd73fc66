/**
 * The metrics made from a status report, read back by parsing the exposition text as a scraper
 * would: names and TYPEs, labels, values, no duplicate series, and what disappears with the report.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRIC_HELP, WeftMetrics } from '../../src/daemon/metrics.js';
import { parseExposition, valueOf, type Exposition } from './prom-text.js';
import { peerStatus, statusReport } from './status-fixture.js';
import type { StatusReport } from '../../src/api/types.js';

const BUILD = { version: '0.1.0', node: '20.19.0', meshProtocol: 3, meshProtocolMin: 2, meshProtocolMax: 3, sleeveProtocol: 2 };

async function scrape(report: StatusReport | undefined, m = new WeftMetrics({ build: BUILD, processMetrics: false })): Promise<Exposition> {
  const e = parseExposition(await m.scrape(report));
  expect(e.problems).toEqual([]);
  return e;
}

const N2 = { peer: 'fedcba9876543210', nickname: 'n2' };
const N3 = { peer: 'aaaabbbbccccdddd', nickname: 'n3' };

describe('metrics from a status report', () => {
  it('every metric is declared with its TYPE and HELP, and named by the conventions', async () => {
    const e = await scrape(statusReport());
    for (const [name, [kind]] of Object.entries(METRIC_HELP)) {
      expect(e.types.get(name), name).toBe(kind);
      expect(e.help.get(name), name).not.toBe('');
      expect(name, name).toMatch(/^weft_[a-z0-9_]+$/);
      if (kind === 'counter') expect(name).toMatch(/_total$/);
      else expect(name).not.toMatch(/_total$/);
    }
    // Every family the report fills has samples.
    const filled = new Set(e.samples.map((s) => s.name));
    expect(Object.keys(METRIC_HELP).filter((n) => !filled.has(n))).toEqual([]);
  });

  it.each<[string, Record<string, string>, number]>([
    ['weft_build_info', { version: '0.1.0', node_version: '20.19.0', mesh_protocol: '3', sleeve_protocol: '2' }, 1],
    ['weft_peer_up', N2, 1],
    ['weft_peer_up', N3, 0],
    ['weft_peer_path', { ...N2, path: 'fastpath' }, 1],
    ['weft_peer_path', { ...N2, path: 'direct' }, 0],
    ['weft_peer_path', { ...N3, path: 'relay' }, 1],
    ['weft_peer_path_switches_total', N2, 2],
    ['weft_peer_sent_bytes_total', N2, 5000],
    ['weft_peer_received_bytes_total', N2, 400],
    ['weft_peer_sent_frames_total', N3, 3],
    ['weft_peer_received_frames_total', N2, 40],
    ['weft_drops_total', { component: 'rx', reason: 'badTag' }, 2],
    ['weft_drops_total', { component: 'gossip.topology', reason: 'malformed' }, 1],
    ['weft_drops_total', { component: 'pods', reason: 'mac' }, 9],
    ['weft_drops_total', { component: 'udp', reason: 'sendErrors' }, 0],
    ['weft_drops_total', { component: 'mesh.routed', reason: 'unicastNoRoute' }, 6],
    ['weft_relayed_datagrams_total', {}, 11],
    ['weft_relayed_bytes_total', {}, 1100],
    ['weft_io_packets_total', { device: 'udp', direction: 'sent' }, 40],
    ['weft_io_bytes_total', { device: 'tap', direction: 'received' }, 1000],
    ['weft_learned_macs', {}, 3],
    ['weft_mesh_connections', { state: 'established' }, 1],
    ['weft_mesh_connections', { state: 'handshake' }, 1],
    ['weft_mesh_connections', { state: 'draining' }, 0],
    ['weft_mesh_targets', { state: 'waiting' }, 1],
    ['weft_mesh_targets', { state: 'established' }, 0],
    ['weft_mesh_peers', { reachable: 'true' }, 1],
    ['weft_mesh_peers', { reachable: 'false' }, 1],
    ['weft_mesh_connection_closes_total', { reason: 'closedByPeer' }, 2],
    ['weft_mesh_handshake_failures_total', { reason: 'auth' }, 4],
    ['weft_mesh_handshake_failures_total', { reason: 'version' }, 0],
    ['weft_pair_keys', { state: 'established' }, 1],
    ['weft_pair_keys', { state: 'expired' }, 0],
    ['weft_pair_key_handshake_failures_total', { peer: N2.peer }, 1],
    ['weft_pair_key_rekeys_total', { peer: N2.peer }, 3],
    ['weft_gossip_sent_bytes_total', { channel: 'topology' }, 120],
    ['weft_gossip_received_bytes_total', { channel: 'topology' }, 307],
    ['weft_gossip_refused_total', { channel: 'topology' }, 5],
    ['weft_fastpath_running', {}, 1],
    ['weft_fastpath_peer_state', { peer: N2.peer, state: 'up' }, 1],
    ['weft_fastpath_peer_state', { peer: N2.peer, state: 'probing' }, 0],
    ['weft_fastpath_probes_accepted_total', {}, 77],
    ['weft_ipam_ready', {}, 1],
    ['weft_ipam_allocations', {}, 2],
    ['weft_ipam_owned_addresses', { range: '10.40.0.0/16' }, 32768],
    ['weft_ipam_addresses', { range: '10.40.0.0/16', state: 'free' }, 32700],
    ['weft_ipam_addresses', { range: '10.40.0.0/16', state: 'allocated' }, 2],
    ['weft_ipam_addresses', { range: '10.40.0.0/16', state: 'quarantined' }, 1],
    ['weft_ipam_addresses', { range: '10.40.0.0/16', state: 'held' }, 64],
    ['weft_pods', {}, 0],
  ])('%s %j = %d', async (name, labels, value) => {
    expect(valueOf(await scrape(statusReport()), name, labels)).toBe(value);
  });

  it('NAT traversal: the NAT guess (one series per guess), candidates by kind, punch refusals by reason', async () => {
    const r = statusReport();
    r.mesh.endpoints = {
      ...r.mesh.endpoints,
      nat: 'endpoint-dependent',
      candidates: [
        { endpoint: '198.18.0.9:6784', kind: 'reflexive' },
        { endpoint: '198.18.0.10:6784', kind: 'reflexive' },
        { endpoint: '198.19.1.2:6784', kind: 'local' },
      ],
    };
    r.mesh.refused = { ...r.mesh.refused, 'punch.replayed': 3, 'punch.badSignature': 1 };
    const e = await scrape(r);
    const value = (name: string, labels: Record<string, string>) =>
      e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    const nat = e.samples.filter((s) => s.name === 'weft_nat');
    expect(nat.map((s) => s.labels.nat).sort()).toEqual(['endpoint-dependent', 'mapped', 'none', 'unknown']);
    expect(nat.filter((s) => s.value === 1).map((s) => s.labels.nat)).toEqual(['endpoint-dependent']);
    expect(value('weft_endpoint_candidates', { kind: 'reflexive' })).toBe(2);
    expect(value('weft_endpoint_candidates', { kind: 'local' })).toBe(1);
    expect(value('weft_endpoint_candidates', { kind: 'stun' })).toBe(0);
    expect(value('weft_punch_refused_total', { reason: 'replayed' })).toBe(3);
    expect(value('weft_punch_refused_total', { reason: 'badSignature' })).toBe(1);
    expect(value('weft_punch_refused_total', { reason: 'rateLimited' })).toBe(0);
  });

  it('each peer is on exactly one path, and has one series per path', async () => {
    const e = await scrape(statusReport());
    for (const p of [N2, N3]) {
      const series = e.samples.filter((s) => s.name === 'weft_peer_path' && s.labels.peer === p.peer);
      expect(series.map((s) => s.labels.path).sort()).toEqual(['direct', 'fastpath', 'none', 'relay']);
      expect(series.filter((s) => s.value === 1)).toHaveLength(1);
    }
  });

  it('a peer that goes away disappears from every metric; one that comes back is there again', async () => {
    const m = new WeftMetrics({ build: BUILD, processMetrics: false });
    const both = await scrape(statusReport(), m);
    expect(both.samples.some((s) => s.labels.peer === N3.peer)).toBe(true);
    const one = await scrape(statusReport({ peers: [peerStatus(N2.peer, 'n2')] }), m);
    expect(one.samples.filter((s) => s.labels.peer === N3.peer)).toEqual([]);
    expect(valueOf(one, 'weft_peer_sent_bytes_total', N2)).toBe(300);
    const again = await scrape(statusReport(), m);
    expect(valueOf(again, 'weft_peer_up', N3)).toBe(0);
  });

  it('while the router starts (no report): build info only; IPAM and pods off: no IPAM or pod samples', async () => {
    const starting = await scrape(undefined);
    expect(starting.samples.map((s) => s.name)).toEqual(['weft_build_info']);
    const off = await scrape(statusReport({ ipam: undefined, pods: undefined }));
    expect(off.samples.filter((s) => s.name.startsWith('weft_ipam_') || s.name === 'weft_pods')).toEqual([]);
    expect(valueOf(off, 'weft_peer_up', N2)).toBe(1);
  });

  it('label values from peers (nicknames) are escaped: quotes, backslashes and newlines round-trip', async () => {
    const nickname = 'a "b" \\ c\nd';
    const e = await scrape(statusReport({ peers: [peerStatus('0000111122223333', nickname)] }));
    expect(valueOf(e, 'weft_peer_up', { peer: '0000111122223333', nickname })).toBe(1);
  });

  it('a count that is not a non-negative number is left out, not thrown on', async () => {
    const e = await scrape(statusReport({ drops: { 'rx.badTag': -1, 'rx.short': Number.NaN, 'rx.replayed': 4 } }));
    expect(valueOf(e, 'weft_drops_total', { component: 'rx', reason: 'badTag' })).toBeUndefined();
    expect(valueOf(e, 'weft_drops_total', { component: 'rx', reason: 'short' })).toBeUndefined();
    expect(valueOf(e, 'weft_drops_total', { component: 'rx', reason: 'replayed' })).toBe(4);
  });

  it('NetworkPolicy: per policy allowed and dropped packets, applies, the source; absent when off', async () => {
    const e = await scrape(statusReport());
    expect(valueOf(e, 'weft_policy_packets_total', { namespace: 'shop', policy: 'db-ingress', verdict: 'allowed' })).toBe(12);
    expect(valueOf(e, 'weft_policy_packets_total', { namespace: 'shop', policy: 'db-ingress', verdict: 'dropped' })).toBe(3);
    expect(valueOf(e, 'weft_policy_applies_total', { kind: 'full' })).toBe(2);
    expect(valueOf(e, 'weft_policy_applies_total', { kind: 'elements' })).toBe(9);
    expect(valueOf(e, 'weft_policy_apply_failures_total')).toBe(1);
    expect(valueOf(e, 'weft_policy_source_synced')).toBe(1);
    const policy = statusReport().policy!;
    const unsynced = await scrape(statusReport({ policy: { ...policy, source: { ...policy.source!, synced: false } } }));
    expect(valueOf(unsynced, 'weft_policy_source_synced')).toBe(0);
    const off = await scrape(statusReport({ policy: undefined }));
    expect(off.samples.filter((s) => s.name.startsWith('weft_policy_'))).toEqual([]);
  });

  it("Node's process metrics keep their standard names, in each daemon's own registry", async () => {
    const a = await scrape(statusReport(), new WeftMetrics({ build: BUILD, processMetrics: true }));
    const b = await scrape(statusReport(), new WeftMetrics({ build: BUILD, processMetrics: true }));
    for (const e of [a, b]) {
      expect(e.types.get('process_cpu_user_seconds_total')).toBe('counter');
      expect(e.types.get('process_resident_memory_bytes')).toBe('gauge');
      expect(e.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
      expect(valueOf(e, 'weft_build_info')).toBe(1);
    }
  });

  it("README's metrics table lists each metric with its type and labels, and nothing else", () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('## Metrics and health'), readme.indexOf('### Versions'));
    const rows = [...section.matchAll(/^\| `(weft_[a-z0-9_]+)` \| (gauge|counter) \| ([^|]*) \|/gm)].map((m) => [m[1], m[2], [...m[3]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1])]);
    expect(rows).toEqual(Object.entries(METRIC_HELP).map(([name, [kind, labels]]) => [name, kind, [...labels]]));
  });
});
