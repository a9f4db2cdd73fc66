/** An in-memory LinkOps: namespaces holding interfaces, host ends, and switches to make a step fail. */
import type { CniRoute } from '../../src/cni/result.js';
import type { ContainerLink, CreatedPair, HostLink, LinkOps, PodAddressing, PodLinkSpec, PodRoute } from '../../src/cni/veth.js';
import { LinkError, plannedRoutes } from '../../src/cni/veth.js';

interface FakeIf {
  link: ContainerLink;
  routes: PodRoute[];
  hostName: string;
}

export class FakeLinks implements LinkOps {
  /** netns path → interfaces by name; a path not in here is not a namespace. */
  readonly namespaces = new Map<string, Map<string, FakeIf>>();
  readonly hosts = new Map<string, HostLink & { netns: string; ifName: string }>();
  readonly calls: string[] = [];
  failConfigure = false;
  failRemove = false;
  failAttach = false;
  /** The path that names "our own" (the node's) network namespace. */
  ownNetns = '/proc/self/ns/net';

  addNamespace(path: string, existing: string[] = []): void {
    const m = new Map<string, FakeIf>();
    for (const n of existing) m.set(n, { link: { mtu: 1500, mac: '02:00:00:00:00:01', up: true, addresses: [] }, routes: [], hostName: '' });
    this.namespaces.set(path, m);
  }

  async createPair(spec: PodLinkSpec): Promise<CreatedPair> {
    this.calls.push(`createPair ${spec.netns} ${spec.ifName} ${spec.hostName} ${spec.bridge} ${spec.mtu}`);
    const ns = this.namespaces.get(spec.netns);
    if (ns === undefined) throw new LinkError('netns', `${spec.netns} is not a network namespace`);
    if (ns.has(spec.ifName)) throw new LinkError('exists', `interface ${spec.ifName} already exists in ${spec.netns}`);
    const pair = { hostMac: '02:aa:00:00:00:01', containerMac: spec.containerMac ?? '02:bb:00:00:00:01', bridgeMac: '02:cc:00:00:00:01' };
    ns.set(spec.ifName, { link: { mtu: spec.mtu, mac: pair.containerMac, up: false, addresses: [] }, routes: [], hostName: spec.hostName });
    this.hosts.set(spec.hostName, { master: spec.bridge, mtu: spec.mtu, up: true, netns: spec.netns, ifName: spec.ifName });
    if (this.failAttach) throw new LinkError('failed', `attaching ${spec.hostName} to bridge ${spec.bridge}: no such bridge`);
    return pair;
  }

  async configure(a: PodAddressing): Promise<CniRoute[]> {
    this.calls.push(`configure ${a.netns} ${a.ifName} ${a.addresses.map((x) => `${x.address}/${x.prefixLength}`).join(',')}`);
    if (this.failConfigure) throw new LinkError('failed', `configuring ${a.ifName} in ${a.netns}: RTNETLINK answers: Permission denied`);
    const ns = this.namespaces.get(a.netns);
    const itf = ns?.get(a.ifName);
    if (ns === undefined || itf === undefined) throw new LinkError('failed', 'no such interface');
    const existing = new Set<4 | 6>();
    for (const other of ns.values()) for (const r of other.routes) if (r.dst === '0.0.0.0/0' || r.dst === '::/0') existing.add(r.dst.includes(':') ? 6 : 4);
    const routes = plannedRoutes(a, existing);
    for (const r of routes) {
      for (const other of ns.values()) {
        if (other.routes.some((x) => x.dst === r.dst)) throw new LinkError('failed', `configuring ${a.ifName} in ${a.netns}: adding the route to ${r.dst}: EEXIST`);
      }
    }
    itf.link.up = true;
    itf.link.addresses = a.addresses.map((x) => `${x.address}/${x.prefixLength}`);
    itf.routes = routes.map((r) => ({ dst: r.dst, ...(r.gw === undefined ? {} : { gw: r.gw }), dev: a.ifName }));
    return routes.map((r) => (r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw }));
  }

  isOwnNetns(netns: string): boolean {
    return netns === this.ownNetns;
  }

  async removeHost(hostName: string): Promise<boolean> {
    this.calls.push(`removeHost ${hostName}`);
    if (this.failRemove) throw new LinkError('failed', `deleting ${hostName}: Operation not permitted`);
    const h = this.hosts.get(hostName);
    if (h === undefined) return false;
    this.hosts.delete(hostName);
    this.namespaces.get(h.netns)?.delete(h.ifName);
    return true;
  }

  async inspect(netns: string, ifName: string): Promise<{ link: ContainerLink; routes: PodRoute[] } | undefined> {
    const ns = this.namespaces.get(netns);
    if (ns === undefined) throw new LinkError('netns', `cannot enter ${netns}`);
    const itf = ns.get(ifName);
    return itf === undefined ? undefined : { link: { ...itf.link, addresses: [...itf.link.addresses] }, routes: [...itf.routes] };
  }

  async hostLink(hostName: string): Promise<HostLink | undefined> {
    const h = this.hosts.get(hostName);
    return h === undefined ? undefined : { ...(h.master === undefined ? {} : { master: h.master }), mtu: h.mtu, up: h.up };
  }

  async hostEnds(): Promise<string[]> {
    return [...this.hosts.keys()];
  }
}
