/**
 * The kernel fast path: a VXLAN device (no learning) on the bridge beside the sleeve's TAP,
 * programmed per peer from probes that travel it, with fallback to the sleeve and return.
 *
 *   bridge ─┬─ pods' veths
 *           ├─ TAP (sleeve)         isolated ┐ split horizon: the bridge never forwards
 *           ├─ VXLAN (fast path)    isolated ┘ between the two overlays
 *           └─ probe TAP            probes only: static entries send peers' probe MACs to VXLAN
 *
 * Per peer (eligible: a direct underlay address, and trusted when the cluster encrypts):
 *   always      VXLAN entry for the peer's probe MAC; probes every 250 ms (health.ts)
 *   when up     flood entry and one entry per MAC the peer owns (gossip); the peer leaves the
 *               sleeve's flood list; the bridge gets a sticky entry per such MAC on the VXLAN
 *               port, so frames the peer still sends over the sleeve (it judges on its own
 *               schedule) cannot pull its MACs back to the TAP, where the sleeve drops them
 *   when down   those entries removed, bridge entries learned on VXLAN for its MACs flushed, the
 *               peer back in the sleeve's flood list
 * Kernel state outlives the router: on start the device is adopted and existing entries stay until
 * probes judge the peer (so a restart does not cut fast-path traffic).
 *
 * Probes carry a tag under the pair's probe key (probe-channel.ts, probe-auth.ts): a probe from a
 * peer we hold no key for, with a wrong tag, or not newer than one already accepted is dropped
 * and counted by reason, and never reaches the health judge. Without a key we send no probes.
 *
 * nftables (filters.ts) lets only the current peers' underlay addresses reach the VXLAN port.
 */
import { isIPv4 } from 'node:net';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { describeError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { FLOOD_MAC, type Netlink } from '../../platform/netlink.js';
import type { Nft } from '../../platform/nft.js';
import type { TapDevice } from '../../platform/tap.js';
import { FastPathFilters, type VxlanPortReport } from './filters.js';
import { FastPathHealth } from './health.js';
import { ProbeChannel, type ProbeDrops } from './probe-channel.js';
import { probeIdOf, probeMacText } from './probe-frame.js';
import type { FastPathPeerReport } from '../../api/types.js';

export type { FastPathPeerReport };

/** Who owns which pod MAC (gossip/mac-owners.ts fits). */
export interface MacDirectory {
  macsOf(owner: string): readonly string[];
  setLocal(macs: Iterable<string>): boolean;
  onChange(listener: () => void): () => void;
}

/**
 * The owner of each peer's path (the OverlaySwitch): told when the kernel path takes a peer or
 * gives it back, and asked whether a peer's router is silent on the sleeve too.
 */
export interface FastPathOwner {
  /** The kernel path carries (or stops carrying) this peer's frames; `reason` says why. */
  setFast(id: number, fast: boolean, reason: string): void;
  /** The peer's router has been silent on the sleeve too since `lastHeard` (see FastPathHealthComponents.peerSilent). */
  peerSilent(id: number, lastHeard: number): boolean;
}

export interface FastPathComponents {
  netlink: Netlink;
  nft: Nft;
  probeTap: TapDevice;
  clock: Clock;
  logger: Logger;
  macs: MacDirectory;
  owner: FastPathOwner;
}

export interface FastPathInit {
  selfId: number;
  bridge: string;
  sleeveTap: string;
  vxlan: { name: string; vni: number; port: number; local: string; mtu: number };
  /** Largest frame a pod sends (overlay MTU + 14): the size of full probes. */
  maxFrame: number;
  /** The cluster encrypts: only peers in `trusted` may use the unencrypted kernel path. */
  encrypted: boolean;
  trusted: readonly { address: string; prefix: number }[];
}

interface Peer {
  id: number;
  name: string;
  underlay: string;
  eligible: boolean;
  why: string;
  macs: Set<string>;
  up: boolean;
  /** Entries for its MACs are wanted in the VXLAN device (the path passes probes, or is up). */
  programmed: boolean;
}

/** The fast path's state beyond its peers, for status. */
export interface FastPathReport {
  peers: FastPathPeerReport[];
  probes: { accepted: number; drops: ProbeDrops };
  vxlanPort: VxlanPortReport;
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, x) => (n << 8) | Number(x), 0) >>> 0;
}

export function inSubnets(address: string, subnets: readonly { address: string; prefix: number }[]): boolean {
  if (!isIPv4(address)) return false;
  const a = ipv4ToInt(address);
  return subnets.some((s) => {
    const mask = s.prefix === 0 ? 0 : (~0 << (32 - s.prefix)) >>> 0;
    return ((a & mask) >>> 0) === ((ipv4ToInt(s.address) & mask) >>> 0);
  });
}

export class FastPath {
  readonly health: FastPathHealth;
  readonly filters: FastPathFilters;
  private readonly components: FastPathComponents;
  private readonly init: FastPathInit;
  private readonly log: Logger;
  private readonly peers = new Map<number, Peer>();
  private timers: TimerHandle[] = [];
  private queue: Promise<void> = Promise.resolve();
  private readonly probes: ProbeChannel;
  opErrors = 0;
  private filterQueued = false;

  constructor(components: FastPathComponents, init: FastPathInit) {
    this.components = components;
    this.init = init;
    this.log = components.logger;
    this.probes = new ProbeChannel(
      { tap: components.probeTap, logger: components.logger, isPeer: (id) => this.peers.get(id)?.eligible === true, onProbe: (p) => this.health.onProbe(p) },
      { selfId: init.selfId, maxFrame: init.maxFrame },
    );
    this.filters = new FastPathFilters(
      { nft: components.nft, clock: components.clock, logger: components.logger },
      { port: init.vxlan.port, overlayPorts: [init.sleeveTap, init.vxlan.name, components.probeTap.name] },
    );
    this.health = new FastPathHealth(
      {
        clock: components.clock,
        send: (p) => this.probes.send(p),
        onSwitch: (id, up, reason) => this.switched(id, up, reason),
        peerSilent: (id, lastHeard) => components.owner.peerSilent(id, lastHeard),
        onHealth: (id, healthy) => this.healthChanged(id, healthy),
      },
      { selfId: init.selfId },
    );
  }

  async start(): Promise<void> {
    const nl = this.components.netlink;
    const v = this.init.vxlan;
    await nl.ensureVxlan(v);
    await this.adoptKernelState();
    // Before the device goes up (a new one is down; an adopted one keeps the old table until
    // this replaces it in one transaction): only the peers' addresses reach the VXLAN port.
    await this.filters.install(this.allowedUnderlays());
    await nl.setMaster(v.name, this.init.bridge);
    await nl.setUp(v.name);
    await nl.setIsolated(v.name, true);
    await nl.setIsolated(this.init.sleeveTap, true);
    await nl.setMtu(this.components.probeTap.name, this.init.maxFrame - 14);
    await nl.setMaster(this.components.probeTap.name, this.init.bridge);
    await nl.setUp(this.components.probeTap.name);
    await nl.bridgeFdbSetStatic(this.components.probeTap.name, probeMacText(this.init.selfId));
    this.components.probeTap.start((count) => this.probes.onBatch(count));
    this.components.macs.onChange(() => this.enqueue(() => this.reconcileMacs()));
    this.timers.push(this.components.clock.setInterval(() => this.health.tick(), 125));
    this.timers.push(this.components.clock.setInterval(() => this.enqueue(() => this.pollLocalMacs()), 1000));
    // (the refused counter is logged once when it first grows, even if nobody asks for status)
    this.timers.push(this.components.clock.setInterval(() => void this.filters.refresh(), 30_000));
    this.enqueue(() => this.pollLocalMacs());
  }

  /**
   * After a restart: peers whose flood entry and probe entry are still in the kernel are taken as
   * up at once (ids from their probe MACs), and probed right away, so neither end sees a gap.
   */
  private async adoptKernelState(): Promise<void> {
    const entries = await this.components.netlink.fdbList(this.init.vxlan.name);
    const flood = new Set(entries.filter((e) => e.mac === FLOOD_MAC).map((e) => e.dst));
    for (const e of entries) {
      const id = probeIdOf(e.mac);
      if (id === undefined || !flood.has(e.dst)) continue;
      const macs = new Set(entries.filter((x) => x.dst === e.dst && x.mac !== FLOOD_MAC && x.mac !== e.mac).map((x) => x.mac));
      this.peers.set(id, { id, name: '', underlay: e.dst, eligible: true, why: '', macs, up: true, programmed: true });
      this.health.addPeer(id, '', true);
      this.log.info('fast path adopted from the kernel after a restart', { underlay: e.dst });
    }
  }

  /** Stops probing; the kernel state stays (traffic keeps flowing while the router restarts). */
  stop(): void {
    for (const t of this.timers) t.cancel();
    this.timers = [];
    this.components.probeTap.stop();
    this.probes.clear();
  }

  /**
   * The pair's probe key for peer `id` (copied; see PeerKeys.probe), from the mesh's key
   * installation. `confirmTx` as in Overlay.installKeys.
   */
  installKeys(id: number, probeKey: Uint8Array, confirmTx: boolean): void {
    this.probes.installKey(id, probeKey, confirmTx);
  }

  /** The peer left the mesh: its probe keys are wiped. */
  removeKeys(id: number): void {
    this.probes.removeKeys(id);
  }

  /** A peer with a direct underlay address (or none: it leaves the fast path). */
  setPeer(id: number, name: string, underlay: string | undefined): void {
    const cur = this.peers.get(id);
    if (underlay === undefined) {
      if (cur !== undefined) this.removePeer(cur, 'left the fast path: the peer was removed');
      return;
    }
    if (cur !== undefined && cur.underlay === underlay) {
      if (cur.name === '') {
        // an adopted peer, now known by name: apply the policy and tell the sleeve
        cur.name = name;
        if (this.init.encrypted && !inSubnets(underlay, this.init.trusted)) {
          this.removePeer(cur, 'left the fast path: not in a trusted subnet');
          this.setPeer(id, name, underlay);
          return;
        }
        this.health.rename(id, name);
        this.components.owner.setFast(id, cur.up, cur.up ? 'adopted from the kernel after a restart; probes confirm it' : 'adopted from the kernel after a restart; probes failed since');
      }
      return;
    }
    if (cur !== undefined) this.removePeer(cur, 'left the fast path: its underlay address changed');
    const why = !isIPv4(underlay)
      ? 'not an IPv4 underlay address'
      : this.init.encrypted && !inSubnets(underlay, this.init.trusted)
        ? 'not in a trusted subnet: the cluster encrypts and this kernel has no IPsec or WireGuard, so traffic stays on the sleeve'
        : '';
    const eligible = why === '';
    const p: Peer = { id, name, underlay, eligible, why, macs: new Set(), up: false, programmed: false };
    this.peers.set(id, p);
    if (!eligible) return;
    // the peer's address reaches our VXLAN port before we probe it
    this.syncFilter();
    const mac = probeMacText(id);
    this.enqueue(async () => {
      await this.components.netlink.bridgeFdbSetStatic(this.init.vxlan.name, mac);
      await this.components.netlink.fdbSet(this.init.vxlan.name, { mac, dst: underlay });
      // Probe only once the entries exist: a probe must never be flooded (into the sleeve).
      if (this.peers.get(id) === p) this.health.addPeer(id, name);
    });
  }

  /** Status beyond the peers: probe counts and the VXLAN port filter (its counters as last read; see refreshCounters). */
  report(): FastPathReport {
    return { peers: this.status(), probes: { accepted: this.probes.accepted, drops: { ...this.probes.drops } }, vxlanPort: this.filters.report() };
  }

  /** Probes dropped before the health judge, by reason (live counts). */
  get probeDrops(): ProbeDrops {
    return this.probes.drops;
  }

  /** Reads the nftables counters again (at most once a second); never throws. */
  refreshCounters(): Promise<void> {
    return this.filters.refresh();
  }

  status(): FastPathPeerReport[] {
    const h = new Map(this.health.status().map((s) => [s.id, s]));
    return [...this.peers.values()].map((p) => {
      const s = h.get(p.id);
      const reason = p.eligible && s !== undefined ? s.reason : p.why;
      return {
        name: p.name,
        underlay: p.underlay,
        state: p.eligible && s !== undefined ? s.state : 'ineligible',
        reason: p.eligible && !this.probes.hasKey(p.id) ? `no probe key yet (probes are authenticated with the pair's keys); ${reason}` : reason,
        sinceMs: s?.sinceMs ?? 0,
        switches: s?.switches ?? 0,
      };
    });
  }

  isFast(id: number): boolean {
    return this.peers.get(id)?.up === true;
  }

  private removePeer(p: Peer, reason: string): void {
    this.peers.delete(p.id);
    this.health.removePeer(p.id);
    if (p.eligible) this.syncFilter();
    if (p.up) this.components.owner.setFast(p.id, false, reason);
    const mac = probeMacText(p.id);
    this.enqueue(async () => {
      await this.unprogram(p);
      await this.components.netlink.fdbDelete(this.init.vxlan.name, { mac, dst: p.underlay });
      await this.components.netlink.bridgeFdbDelete(this.init.vxlan.name, mac);
    });
  }

  /**
   * A path that passes probes carries unicast for the peer's MACs at once (so replies to what the
   * peer already sends over it work), but not floods: those stay on the sleeve until the path is
   * up, so nothing arrives twice.
   */
  private healthChanged(id: number, healthy: boolean): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    p.programmed = healthy;
    if (healthy) this.enqueue(() => this.programMacs(p));
    else this.enqueue(() => this.unprogram(p));
  }

  private switched(id: number, up: boolean, reason: string): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    p.up = up;
    p.programmed = up;
    this.log.info(up ? 'fast path up' : 'fast path down; traffic moves to the sleeve', { peer: p.name, reason });
    if (up) {
      this.enqueue(async () => {
        await this.programMacs(p);
        await this.components.netlink.fdbSet(this.init.vxlan.name, { mac: FLOOD_MAC, dst: p.underlay });
        // the peer's MACs go to the VXLAN port and stay there (see the header)
        for (const mac of p.macs) await this.components.netlink.bridgeFdbSetStatic(this.init.vxlan.name, mac);
        this.components.owner.setFast(id, true, `probes ok (${reason})`);
      });
    } else {
      this.components.owner.setFast(id, false, `probes failed: ${reason}`);
    }
  }

  private async programMacs(p: Peer): Promise<void> {
    for (const mac of this.components.macs.macsOf(p.name)) {
      if (p.macs.has(mac)) continue;
      await this.components.netlink.fdbSet(this.init.vxlan.name, { mac, dst: p.underlay });
      p.macs.add(mac);
    }
  }

  private async unprogram(p: Peer): Promise<void> {
    const nl = this.components.netlink;
    const v = this.init.vxlan.name;
    const probe = probeMacText(p.id);
    const covered = new Set<string>();
    for (const e of await nl.fdbList(v)) {
      if (e.dst === p.underlay && e.mac !== probe) {
        await nl.fdbDelete(v, e);
        if (e.mac !== FLOOD_MAC) await nl.bridgeFdbDelete(v, e.mac);
      } else {
        covered.add(e.mac);
      }
    }
    p.macs.clear();
    // MACs the bridge learned on VXLAN that no VXLAN entry covers now (the peer's, even those
    // gossip had not told us about): forget them, so the next frame floods and finds the sleeve.
    for (const e of await nl.bridgeFdbList(this.init.bridge)) {
      if (e.port === v && e.kind === 'learned' && !covered.has(e.mac)) await nl.bridgeFdbDelete(v, e.mac);
    }
  }

  /** MACs moved, appeared or went: bring up peers' entries in line. */
  private async reconcileMacs(): Promise<void> {
    for (const p of this.peers.values()) {
      // a peer whose path passes probes but is not up yet gets its new MACs too: replies to what
      // it already sends over VXLAN need them
      if (!p.programmed) continue;
      const want = new Set(this.components.macs.macsOf(p.name));
      for (const mac of want) {
        if (!p.macs.has(mac)) {
          await this.components.netlink.fdbSet(this.init.vxlan.name, { mac, dst: p.underlay });
          if (p.up) await this.components.netlink.bridgeFdbSetStatic(this.init.vxlan.name, mac);
          p.macs.add(mac);
        }
      }
      for (const mac of [...p.macs]) {
        if (!want.has(mac)) {
          await this.components.netlink.fdbDelete(this.init.vxlan.name, { mac, dst: p.underlay });
          await this.components.netlink.bridgeFdbDelete(this.init.vxlan.name, mac);
          p.macs.delete(mac);
        }
      }
    }
  }

  /** Our pods' MACs: what the bridge learned on ports other than the overlays. */
  private async pollLocalMacs(): Promise<void> {
    const skip = new Set([this.init.sleeveTap, this.init.vxlan.name, this.components.probeTap.name]);
    const entries = await this.components.netlink.bridgeFdbList(this.init.bridge);
    this.components.macs.setLocal(entries.filter((e) => e.kind === 'learned' && !skip.has(e.port)).map((e) => e.mac));
  }

  /** The underlay addresses allowed to reach the VXLAN port: every eligible peer's, whatever its state (probes must pass). */
  private allowedUnderlays(): string[] {
    return [...this.peers.values()].filter((p) => p.eligible).map((p) => p.underlay);
  }

  /** Brings the VXLAN port's peer set in line, once for any number of changes queued meanwhile. */
  private syncFilter(): void {
    if (this.filterQueued) return;
    this.filterQueued = true;
    this.enqueue(async () => {
      this.filterQueued = false;
      await this.filters.setPeers(this.allowedUnderlays());
    });
  }

  /** Kernel changes run one at a time, in order; a failure is logged and counted, never thrown. */
  private enqueue(op: () => Promise<void>): void {
    this.queue = this.queue.then(op).catch((err: unknown) => {
      this.opErrors++;
      this.log.warn('fast path kernel update failed', { err: describeError(err) });
    });
  }
}
