/**
 * Kernel network configuration the daemon needs: links, bridges, MTUs, routes. The Linux
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
}

export interface RouteInfo {
  dev: string;
  src: string | undefined;
  mtu: number | undefined;
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
}
