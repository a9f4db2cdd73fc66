/**
 * Kernel network configuration the daemon needs: links, bridges, MTUs, routes, and for the kernel
 * fast path VXLAN devices, their forwarding entries and bridge port isolation. The Linux
 * implementation drives iproute2; tests can substitute a recording fake.
 */
export interface LinkInfo {
  name: string;
  index: number;
  mtu: number;
  up: boolean;
  master: string | undefined;
  kind: string | undefined;
  mac: string | undefined;
  /** A bridge port's hairpin mode (frames may leave through the port they came in by); undefined for a link that is no bridge port. */
  hairpin?: boolean;
}

export interface RouteInfo {
  dev: string;
  src: string | undefined;
  mtu: number | undefined;
}

export interface VxlanSpec {
  name: string;
  vni: number;
  /** UDP destination port of the tunnel. */
  port: number;
  /** Underlay source address. */
  local: string;
  /** Underlay device (optional). */
  dev?: string;
  mtu: number;
}

export interface VxlanInfo {
  name: string;
  vni: number;
  port: number;
  local: string | undefined;
  learning: boolean;
  mtu: number;
}

/** One forwarding entry of a VXLAN device: frames for `mac` go to the VTEP at `dst`. */
export interface FdbEntry {
  /** "00:00:00:00:00:00" is the flood entry (broadcast, unknown unicast, multicast). */
  mac: string;
  dst: string;
}

export const FLOOD_MAC = '00:00:00:00:00:00';

/** One entry of a bridge's own forwarding table (not a VXLAN device's). */
export interface BridgeFdbEntry {
  mac: string;
  port: string;
  /** learned (aged by the bridge), static (configured), or permanent (a port's own address). */
  kind: 'learned' | 'static' | 'permanent';
}

export interface Netlink {
  getLink(name: string): Promise<LinkInfo | undefined>;
  listLinks(): Promise<LinkInfo[]>;
  /** Creates a bridge when none of that name exists (idempotent); fails if `name` is not a bridge. */
  ensureBridge(name: string): Promise<LinkInfo>;
  setMtu(name: string, mtu: number): Promise<void>;
  setMaster(name: string, master: string): Promise<void>;
  setUp(name: string): Promise<void>;
  deleteLink(name: string): Promise<void>;
  /** Links whose master is `bridge`. */
  bridgePorts(bridge: string): Promise<LinkInfo[]>;
  /** The route the kernel would use towards `address`, with the device MTU. */
  routeGet(address: string): Promise<RouteInfo | undefined>;
  /** Interface holding `address`, if any. */
  linkWithAddress(address: string): Promise<LinkInfo | undefined>;
  /**
   * A VXLAN device without learning (its forwarding entries are programmed, never learned). An
   * existing device of that name with the same VNI, port and local address is kept; one that
   * differs is an error naming the difference (the caller decides whether to delete it).
   */
  ensureVxlan(spec: VxlanSpec): Promise<VxlanInfo>;
  getVxlan(name: string): Promise<VxlanInfo | undefined>;
  /** The device's programmed entries (flood entries included). */
  fdbList(dev: string): Promise<FdbEntry[]>;
  /** Unicast entry: replaces any entry for `mac`. Flood entry (`FLOOD_MAC`): adds `dst` to the list. */
  fdbSet(dev: string, entry: FdbEntry): Promise<void>;
  /** Removes one entry; a missing one is not an error. */
  fdbDelete(dev: string, entry: FdbEntry): Promise<void>;
  /** Bridge port isolation: isolated ports never forward to each other (split horizon). */
  setIsolated(port: string, isolated: boolean): Promise<void>;
  isIsolated(port: string): Promise<boolean>;
  /**
   * Bridge port hairpin mode: a frame may leave through the port it came in by (a pod reaching
   * itself through a Service: bridge-netfilter DNAT sends the frame back out the pod's own port).
   */
  setHairpin(port: string, on: boolean): Promise<void>;
  /** The bridge's forwarding table (entries of its ports, not the bridge device's own). */
  bridgeFdbList(bridge: string): Promise<BridgeFdbEntry[]>;
  /** A static, sticky bridge entry: frames for `mac` leave through `port`, whatever the bridge learns. */
  bridgeFdbSetStatic(port: string, mac: string): Promise<void>;
  /** Removes the bridge entry for `mac` on `port` (learned or static); a missing one is not an error. */
  bridgeFdbDelete(port: string, mac: string): Promise<void>;
  /** The addresses on a link (global scope). */
  addresses(dev: string): Promise<{ address: string; prefix: number; family: 4 | 6 }[]>;
  /** Puts `address/prefix` on `dev` (idempotent; IPv6 without duplicate address detection). */
  ensureAddress(dev: string, address: string, prefix: number): Promise<void>;
}
