/**
 * What `weft status` says in words (src/cli/format-status.ts), kept apart from the layout: the
 * drops a healthy cluster shows and why they are expected, durations without "0.0 s", and
 * which connection targets are in fact connected (through the peer's own dial).
 */
import type { MeshStatus, TargetStatus } from '../api/types.js';

/**
 * Drop counters that a healthy cluster shows, each with why (in a few words). Anything else in
 * `drops` is worth a look. Keys are `StatusReport.drops` keys.
 */
export const EXPECTED_DROPS: Readonly<Record<string, string>> = {
  'tx.noKey': 'frames for a peer before its pair keys were in place (start-up, a new peer)',
  'tx.noEndpoint': 'frames for a peer before a direct path or a relay to it was known (start-up)',
  'rx.unknownKey': 'datagrams under keys a peer installed a moment before this router did (start-up, rekeys)',
  'rx.replay': 'datagrams that arrived twice, over two paths while a path switched',
  'rx.probeUnmatched': 'probe answers that came after their hole-punching attempt had already succeeded',
  'rx.unknownPeer': 'datagrams from a peer this router did not know yet (it joined a moment before)',
  'switch.noPeers': 'frames flooded while no peer was connected yet (start-up)',
  'switch.localDst': 'frames for a MAC on this node that reached the TAP (the bridge delivers them itself)',
  'switch.probe': "the fast path's own health probes seen on the TAP (they never cross the sleeve)",
};

/** A duration for people: "40ms", "2.5s", "3m 05s", "2h 10m"; never "0.0s". */
export function duration(ms: number): string {
  const m = Math.max(0, ms);
  if (m < 1000) return `${Math.round(m)}ms`;
  if (m < 60_000) return `${(m / 1000).toFixed(1)}s`;
  const s = Math.floor(m / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "how long ago": "just now" under a second, else `duration` + " ago". */
export function ago(ms: number): string {
  return ms < 1000 ? 'just now' : `${duration(ms)} ago`;
}

function host(address: string): string {
  const i = address.lastIndexOf(':');
  return (i < 0 ? address : address.slice(0, i)).replace(/^\[|\]$/g, '');
}

/**
 * A target not established by our own dial but whose peer is connected anyway (it dialled us,
 * the connection stands): nothing to wait for. Matched by the target's last peer, else by the
 * address the target names (or resolved to) against the connections' remote addresses.
 */
export function connectedTarget(t: TargetStatus, connections: MeshStatus['connections']): boolean {
  const up = connections.filter((c) => c.state === 'established');
  if (t.peer !== undefined && up.some((c) => c.peer === t.peer)) return true;
  const hosts = new Set([host(t.address), ...(t.resolved === undefined ? [] : [host(t.resolved)])]);
  return up.some((c) => hosts.has(host(c.address)));
}

/** Drops split into those worth a look and those expected on a healthy cluster (non-zero only). */
export function splitDrops(drops: Record<string, number>): { unexpected: [string, number][]; expected: [string, number, string][] } {
  const unexpected: [string, number][] = [];
  const expected: [string, number, string][] = [];
  for (const [k, n] of Object.entries(drops)) {
    if (n <= 0) continue;
    const why = EXPECTED_DROPS[k];
    if (why === undefined) unexpected.push([k, n]);
    else expected.push([k, n, why]);
  }
  return { unexpected, expected };
}
