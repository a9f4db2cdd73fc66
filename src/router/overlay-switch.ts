/**
 * The overlay switch (weave's name for the same thing): the one owner of each peer's path.
 *
 *   fastpath   the kernel VXLAN path carries the peer's frames (its probes pass; fastpath/)
 *   direct     the sleeve, to the peer's own underlay endpoint (proven by heartbeats)
 *   relay      the sleeve, through another peer (no proven direct path)
 *   none       no way to the peer now (no keys, no endpoint, no relay, or removed)
 *
 * It is the mesh's `Overlay` on top of the sleeve: peer names become wire ids, endpoint text
 * becomes addresses, sleeve events become mesh callbacks. It owns the fast path's side of each
 * peer too: every change that makes a peer a candidate for the kernel path or takes it away
 * (keys installed or removed, a direct IPv4 endpoint set or moved, the peer removed) goes to the
 * fast path as it happens, and the fast path says here when it takes a peer or gives it back,
 * and why (`FastPathOwner`).
 *
 * After each change the peers it can touch are classified again (the peer; for a new direct
 * endpoint also the peers relayed through it; for a removal all); a peer whose path changed gets
 * `since` and `switches` updated, one event, and one log line. The learning switch reads the path per frame
 * with `pathAt(index)`: one array read, nothing allocated. No packet passes through here.
 */
import type { Clock } from '../core/clock.js';
import { peerIdFromPeerName } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { formatEndpoint, parseEndpoint, type Endpoint } from '../core/net.js';
import type { Startable } from '../core/startable.js';
import type { Overlay, PathCandidate, PeerKeys, PeerName } from '../mesh/contracts.js';
import type { FastPathOwner } from './fastpath/fast-path.js';
import type { SleevePeer } from './sleeve/peer.js';
import type { PunchAttempt, Sleeve, SleeveCandidate } from './sleeve/sleeve.js';

export type PathName = 'fastpath' | 'direct' | 'relay' | 'none';

/** Path codes, as `pathAt` returns them (indexes into PATH_NAMES). */
export const PATH_NONE = 0;
export const PATH_DIRECT = 1;
export const PATH_RELAY = 2;
export const PATH_FASTPATH = 3;
const PATH_NAMES: readonly PathName[] = ['none', 'direct', 'relay', 'fastpath'];

/** One peer's path. */
export interface PeerPath {
  name: PeerName;
  id: number;
  path: PathName;
  /** Why this path now ("probes ok (...)", "probes failed: ...", "relay via X (...)", "keys pending", ...). */
  reason: string;
  /** Clock time of the last change (of the first sight while there was none). */
  since: number;
  /** Changes so far. */
  switches: number;
  /** The relay named for the peer while its direct path is down (whatever the path). */
  via: PeerName | undefined;
  /** The direct endpoint came from hole punching ("direct (punched)"). */
  punched: boolean;
  /** Round trip over the direct path from probe answers (ms); undefined when not measured. */
  rttMs: number | undefined;
  /** The last hole-punching attempt; undefined when never tried. */
  punch: PunchReport | undefined;
}

/** One hole-punching attempt as status shows it (`PunchStatus` without the clock). */
export interface PunchReport {
  state: 'probing' | 'punched' | 'failed';
  attempts: number;
  /** Clock time the attempt started. */
  startedAt: number;
  endpoint: string;
  candidates: { endpoint: string; kind: string; probes: number; replies: number; rttMs: number | undefined; result: string }[];
  why: string;
}

/** One path change, as listeners get it. */
export interface PathChange {
  name: PeerName;
  id: number;
  from: PathName;
  to: PathName;
  reason: string;
  since: number;
  switches: number;
}

/** What the learning switch reads per frame: the path code of the peer at a MAC-table port (its sleeve index). */
export interface PathReader {
  pathAt(index: number): number;
}

/** Every peer on the sleeve (a learning switch without an overlay switch: tests of the switch alone). */
export const SLEEVE_ONLY: PathReader = { pathAt: () => PATH_DIRECT };

/** What the overlay switch asks of the kernel fast path (`FastPath`). */
export interface KernelPath {
  /** The pair's probe key (copied), `confirmTx` as in Overlay.installKeys. */
  installKeys(id: number, probeKey: Uint8Array, confirmTx: boolean): void;
  removeKeys(id: number): void;
  /** A candidate with a direct IPv4 underlay address, or none (it leaves the fast path). */
  setPeer(id: number, name: string, underlay: string | undefined): void;
}

export interface OverlaySwitchComponents {
  sleeve: Sleeve;
  clock: Clock;
  logger: Logger;
}

class PeerState {
  readonly name: PeerName;
  readonly id: number;
  /** The sleeve holds this peer (it took its keys); `index` is its sleeve index then. */
  keyed = false;
  index = -1;
  removed = false;
  /** Endpoint and relay named before the first keys; applied when they arrive. */
  earlyDirect: string | undefined = undefined;
  hasEarlyDirect = false;
  earlyVia: PeerName | undefined = undefined;
  hasEarlyVia = false;
  /** The kernel path carries the peer, and why it last took or gave it back ('' never). */
  fast = false;
  fastReason = '';
  code = PATH_NONE;
  reason = 'keys pending';
  since: number;
  switches = 0;
  via: PeerName | undefined = undefined;

  constructor(name: PeerName, id: number, now: number) {
    this.name = name;
    this.id = id;
    this.since = now;
  }
}

export class OverlaySwitch implements Overlay, FastPathOwner, PathReader, Startable {
  private readonly sleeve: Sleeve;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly peers = new Map<PeerName, PeerState>();
  /** Peers the sleeve holds, by wire id. */
  private readonly byId = new Map<number, PeerState>();
  /** Path code per sleeve index (the learning switch's MAC-table ports); grown as peers come. */
  private codes = new Uint8Array(64);
  private fastPath: KernelPath | undefined = undefined;
  /** Candidates go to the fast path only between start and stop (it is started before). */
  private running = false;
  private readonly pathListeners: ((name: PeerName, up: boolean) => void)[] = [];
  private readonly rekeyListeners: ((name: PeerName) => void)[] = [];
  private readonly changeListeners: ((change: PathChange) => void)[] = [];
  private readonly observedListeners: ((by: PeerName, endpoint: string) => void)[] = [];
  private readonly stunListeners: ((server: string, mapped: Endpoint) => void)[] = [];

  constructor(components: OverlaySwitchComponents) {
    this.sleeve = components.sleeve;
    this.clock = components.clock;
    this.log = components.logger;
    this.sleeve.setEvents({
      pathChange: (peer, up) => {
        // (retargets only this peer: others' paths do not depend on its direct path)
        this.classifyPeer(peer);
        for (const l of this.pathListeners) l(peer.name, up);
      },
      rekeyWanted: (peer) => {
        for (const l of this.rekeyListeners) l(peer.name);
      },
      endpointMoved: (peer) => {
        this.offer(peer);
        this.classifyAround(peer);
      },
      punched: (peer) => {
        this.offer(peer);
        this.classifyAround(peer);
      },
      observed: (peer, endpoint) => {
        const st = this.byId.get(peer.id);
        if (st === undefined || st.name !== peer.name) return;
        for (const l of this.observedListeners) l(peer.name, endpoint);
      },
      stunMapped: (server, mapped) => {
        for (const l of this.stunListeners) l(server, mapped);
      },
    });
  }

  /** A STUN server answered a request of `Sleeve.stunRequest`: it sees us at `mapped`. */
  onStunMapped(listener: (server: string, mapped: Endpoint) => void): void {
    this.stunListeners.push(listener);
  }

  /** The kernel fast path, when this router runs one; attached before start. */
  attach(fastPath: KernelPath): void {
    this.fastPath = fastPath;
  }

  /** Hands the fast path every candidate the sleeve holds; from now on each change as it happens. */
  start(): void {
    this.running = true;
    for (const p of this.sleeve.peers) this.offer(p);
    this.classify();
  }

  stop(): void {
    this.running = false;
  }

  // ---------------------------------------------------------------- the mesh's Overlay

  installKeys(keys: PeerKeys, confirm: boolean): void {
    const st = this.state(keys.name);
    const peer = this.sleeve.installKeys(keys, confirm);
    // Only keys the sleeve took (it refuses a second peer with the same wire id). The key bytes
    // are wiped when this returns: the fast path copies the probe key.
    if (peer === undefined || peer.name !== keys.name) return;
    this.fastPath?.installKeys(keys.id, keys.probe, confirm);
    if (!st.keyed) {
      st.keyed = true;
      st.index = peer.index;
      this.byId.set(peer.id, st);
      if (st.hasEarlyDirect) this.applyDirect(st, st.earlyDirect);
      if (st.hasEarlyVia) this.applyVia(st, st.earlyVia);
      st.hasEarlyDirect = st.hasEarlyVia = false;
      st.earlyDirect = st.earlyVia = undefined;
    }
    // after the early endpoint: so the peer's address reaches the VXLAN port's filter before its first probes do
    this.offer(peer);
    this.classifyAround(peer);
  }

  setDirect(name: PeerName, endpoint: string | undefined): void {
    const st = this.state(name);
    if (!st.keyed) {
      st.earlyDirect = endpoint;
      st.hasEarlyDirect = true;
      return;
    }
    this.applyDirect(st, endpoint);
    const peer = this.sleeve.peerById(st.id);
    if (peer === undefined) return;
    this.offer(peer);
    this.classifyAround(peer);
  }

  setVia(name: PeerName, via: PeerName | undefined): void {
    const st = this.state(name);
    if (!st.keyed) {
      st.earlyVia = via;
      st.hasEarlyVia = true;
      return;
    }
    this.applyVia(st, via);
    this.classifyOne(st);
  }

  removePeer(name: PeerName): void {
    const st = this.peers.get(name);
    if (st === undefined) return;
    st.removed = true;
    if (st.keyed) {
      this.sleeve.removePeer(st.id);
      this.fastPath?.removeKeys(st.id);
      if (this.running) this.fastPath?.setPeer(st.id, '', undefined);
    }
    this.classify();
    this.peers.delete(name);
    if (st.keyed) {
      this.byId.delete(st.id);
      this.codes[st.index] = PATH_NONE;
    }
  }

  pathUp(name: PeerName): boolean {
    const st = this.peers.get(name);
    return st !== undefined && st.keyed && this.sleeve.peerById(st.id)?.pathUp === true;
  }

  onPathChange(listener: (name: PeerName, up: boolean) => void): void {
    this.pathListeners.push(listener);
  }

  onRekeyWanted(listener: (name: PeerName) => void): void {
    this.rekeyListeners.push(listener);
  }

  /** The contract is `Overlay.punch`; candidates that are no endpoint show as invalid. Peers without keys: ignored. */
  punch(name: PeerName, candidates: readonly PathCandidate[]): void {
    const st = this.peers.get(name);
    if (st === undefined || !st.keyed || st.removed) return;
    const list: SleeveCandidate[] = candidates.map((c) => {
      const ep = parseEndpoint(c.endpoint);
      return typeof ep === 'string' ? { text: c.endpoint, kind: c.kind, endpoint: undefined, error: ep } : { text: c.endpoint, kind: c.kind, endpoint: ep, error: '' };
    });
    this.sleeve.punch(st.id, list);
  }

  onObserved(listener: (by: PeerName, endpoint: string) => void): void {
    this.observedListeners.push(listener);
  }

  rttMs(name: PeerName): number | undefined {
    const p = this.peerOf(name);
    return p === undefined || p.rttMs < 0 ? undefined : p.rttMs;
  }

  // ---------------------------------------------------------------- the fast path's owner

  setFast(id: number, fast: boolean, reason: string): void {
    const st = this.byId.get(id);
    // (a peer adopted from the kernel before the sleeve knows it: the fast path tells again once it does)
    if (st === undefined) return;
    st.fast = fast;
    st.fastReason = reason;
    this.classifyOne(st);
  }

  peerSilent(id: number, lastHeard: number): boolean {
    // A live router sends sleeve heartbeats every 500 ms (default --heartbeat-ms): if nothing
    // came on the sleeve since the last probe (1 s ago or more), the router itself is quiet,
    // not the kernel path.
    const p = this.sleeve.peerById(id);
    // (250 ms: a heartbeat may land just after the last probe of a router that then died;
    // a live router's next heartbeat comes within ~625 ms, before probes count as lost.)
    return p === undefined || p.lastRx <= lastHeard + 250;
  }

  // ---------------------------------------------------------------- paths

  /** The path code of the peer at this sleeve index (PATH_NONE when there is none). Per frame: no allocation. */
  pathAt(index: number): number {
    return index < this.codes.length ? this.codes[index]! : PATH_NONE;
  }

  /** Every peer the mesh has named, with its path. */
  paths(): PeerPath[] {
    return [...this.peers.values()].map((st) => this.report(st));
  }

  pathOf(name: PeerName): PeerPath | undefined {
    const st = this.peers.get(name);
    return st === undefined ? undefined : this.report(st);
  }

  /** Called once per path change (after the change; listeners must not call back into the overlay). */
  onChange(listener: (change: PathChange) => void): void {
    this.changeListeners.push(listener);
  }

  // ---------------------------------------------------------------- internals

  private state(name: PeerName): PeerState {
    let st = this.peers.get(name);
    if (st === undefined) {
      st = new PeerState(name, peerIdFromPeerName(name), this.clock.now());
      this.peers.set(name, st);
    }
    return st;
  }

  private applyDirect(st: PeerState, endpoint: string | undefined): void {
    const ep = endpoint === undefined ? undefined : parseEndpoint(endpoint, 0);
    this.sleeve.setDirect(st.id, typeof ep === 'string' ? undefined : ep);
  }

  private applyVia(st: PeerState, via: PeerName | undefined): void {
    this.sleeve.setVia(st.id, via === undefined ? undefined : peerIdFromPeerName(via));
  }

  /** A candidate for the kernel path: a peer with a direct IPv4 endpoint. */
  private offer(p: SleevePeer): void {
    // The address stays known while the mesh connection is down (an endpoint cleared is not
    // passed on): probes judge the kernel path.
    if (this.running && p.hasDirect && p.directFamily === 4) this.fastPath?.setPeer(p.id, p.name, p.directAddress);
  }

  /** Classifies every peer again (a removal: peers relayed through it lose their relay). */
  private classify(): void {
    for (const st of this.peers.values()) this.classifyOne(st);
  }

  /** A peer whose direct endpoint changed, and the peers relayed through it (the sleeve retargets them too). */
  private classifyAround(peer: SleevePeer): void {
    this.classifyPeer(peer);
    for (const p of this.sleeve.peers) if (p.via === peer) this.classifyPeer(p);
  }

  private classifyPeer(peer: SleevePeer): void {
    const st = this.byId.get(peer.id);
    if (st !== undefined && st.name === peer.name) this.classifyOne(st);
  }

  /** Each peer whose path changed gets one event and one log line. */
  private classifyOne(st: PeerState): void {
    const p = st.keyed && !st.removed ? this.sleeve.peerById(st.id) : undefined;
    let code = PATH_NONE;
    let reason: string;
    let via: PeerName | undefined = undefined;
    if (st.removed) reason = 'peer removed';
    else if (p === undefined || p.name !== st.name) reason = 'keys pending';
    else {
      if (!p.pathUp && p.via !== undefined) via = p.via.name;
      if (st.fast) {
        code = PATH_FASTPATH;
        reason = st.fastReason;
      } else if (p.pathUp) {
        code = PATH_DIRECT;
        reason = p.punched ? `punched (via ${formatEndpoint({ address: p.directAddress, port: p.directPort })})`
          : st.fastReason !== '' ? st.fastReason : 'direct path proven by heartbeats';
      } else if (p.via !== undefined && p.hasEndpoint) {
        code = PATH_RELAY;
        reason = `relay via ${p.via.name} (${p.hasDirect ? 'direct path not proven by heartbeats' : 'no direct endpoint'})`;
      } else if (!p.hasDirect) {
        reason = p.via === undefined ? 'no direct endpoint' : `no direct endpoint, and the relay ${p.via.name} has none either`;
      } else {
        reason = 'direct path not proven by heartbeats, and no relay';
      }
    }
    st.reason = reason;
    st.via = via;
    if (st.keyed && !st.removed) this.setCode(st.index, code);
    if (code === st.code) return;
    const from = PATH_NAMES[st.code]!;
    st.code = code;
    st.since = this.clock.now();
    st.switches++;
    const to = PATH_NAMES[code]!;
    this.log.info('path changed', { peer: st.name, from, to, reason });
    const change: PathChange = { name: st.name, id: st.id, from, to, reason, since: st.since, switches: st.switches };
    for (const l of this.changeListeners) l(change);
  }

  private setCode(index: number, code: number): void {
    if (index >= this.codes.length) {
      const grown = new Uint8Array(Math.max(index + 1, this.codes.length * 2));
      grown.set(this.codes);
      this.codes = grown;
    }
    this.codes[index] = code;
  }

  private report(st: PeerState): PeerPath {
    const p = this.peerOf(st.name);
    return {
      name: st.name, id: st.id, path: PATH_NAMES[st.code]!, reason: st.reason, since: st.since, switches: st.switches, via: st.via,
      punched: p !== undefined && p.pathUp && p.punched,
      rttMs: p === undefined || p.rttMs < 0 ? undefined : p.rttMs,
      punch: p?.punch === undefined ? undefined : punchReport(p.punch),
    };
  }

  /** The sleeve's peer of this name (undefined: no keys yet, removed, or another name's id). */
  private peerOf(name: PeerName): SleevePeer | undefined {
    const st = this.peers.get(name);
    if (st === undefined || !st.keyed || st.removed) return undefined;
    const p = this.sleeve.peerById(st.id);
    return p !== undefined && p.name === name ? p : undefined;
  }
}

function punchReport(a: PunchAttempt): PunchReport {
  return {
    state: a.state, attempts: a.attempt, startedAt: a.startedAt, endpoint: a.endpoint, why: a.why,
    candidates: a.candidates.map((c) => ({ endpoint: c.text, kind: c.kind, probes: c.probes, replies: c.replies, rttMs: c.rttMs < 0 ? undefined : c.rttMs, result: c.result })),
  };
}
