/**
 * The relay named for a peer (issue 18), even while its direct path works, so a failover needs
 * no gossip: among our neighbours with a proven path whose topology record lists an established
 * connection to the peer, the one with the lowest round trip (`Overlay.rttMs`); else the route's
 * next hop. Hysteresis: the relay named now stays while it qualifies unless another is clearly
 * faster (by `ratio` and by `minMs` both), so relays do not flap on noisy round trips.
 */
import type { PeerName } from './contracts.js';

export interface RelayCandidate {
  name: PeerName;
  /** Round trip to this neighbour (ms); undefined when not measured. */
  rttMs: number | undefined;
}

export interface RelayChoice {
  /** Neighbours that qualify (proven path, established connection to the peer). */
  candidates: readonly RelayCandidate[];
  /** The relay named now (undefined: none). */
  current: PeerName | undefined;
  /** The route's next hop when it is not the peer itself (undefined: none). */
  nextHop: PeerName | undefined;
  /** A challenger must be at most this fraction of the current relay's round trip. Default 0.8. */
  ratio?: number;
  /** ... and at least this much faster (ms). Default 1. */
  minMs?: number;
}

function rtt(c: RelayCandidate): number {
  return c.rttMs ?? Infinity;
}

/** The relay to name for a peer (undefined: none). */
export function chooseRelay(x: RelayChoice): PeerName | undefined {
  if (x.candidates.length === 0) return x.nextHop;
  const sorted = [...x.candidates].sort((a, b) => rtt(a) - rtt(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const best = sorted[0]!;
  const current = x.candidates.find((c) => c.name === x.current);
  if (best.rttMs === undefined) {
    // Nothing measured yet: keep what we have, else the route's choice, else a stable one.
    if (current !== undefined) return current.name;
    if (x.nextHop !== undefined && x.candidates.some((c) => c.name === x.nextHop)) return x.nextHop;
    return best.name;
  }
  if (current === undefined || current.name === best.name) return best.name;
  if (current.rttMs === undefined) return best.name;
  const clearly = best.rttMs <= current.rttMs * (x.ratio ?? 0.8) && current.rttMs - best.rttMs >= (x.minMs ?? 1);
  return clearly ? best.name : current.name;
}
