import { WeftError } from '../../core/errors.js';
import { FLOOD_MAC, type BridgeFdbEntry, type FdbEntry, type LinkInfo, type Netlink, type RouteInfo, type VxlanInfo, type VxlanSpec } from '../netlink.js';
import { run } from './run.js';
import { HERE, addressDump, closeNetns, fdbDump, linkDump, linkGet, linkIndexOf, openNetns, parseAddress, parseFdb, parseLink, transact, type RtnlRequest } from './rtnl.js';

interface IpLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  flags?: string[];
  operstate?: string;
  master?: string;
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string; learning?: boolean }; info_slave_data?: { isolated?: boolean; hairpin?: boolean } };
}

function toLink(l: IpLink): LinkInfo {
  return {
    name: l.ifname,
    index: l.ifindex,
    mtu: l.mtu,
    up: (l.flags ?? []).includes('UP'),
    master: l.master,
    kind: l.linkinfo?.info_kind,
    mac: l.address,
    ...(l.linkinfo?.info_slave_data?.hairpin === undefined ? {} : { hairpin: l.linkinfo.info_slave_data.hairpin }),
  };
}

/**
 * Netlink through iproute2 (`ip -j`, `bridge -j`), in the network namespace this process runs in,
 * or in the named one (`netns`, for tests and the lab).
 */
export class IpNetlink implements Netlink {
  private readonly ip: string;
  private readonly bridgePath: string;
  private readonly nsArgs: string[];
  private readonly netns: string | undefined;

  constructor(init: { ipPath?: string; bridgePath?: string; netns?: string } = {}) {
    this.ip = init.ipPath ?? 'ip';
    this.bridgePath = init.bridgePath ?? 'bridge';
    this.nsArgs = init.netns === undefined ? [] : ['-n', init.netns];
    this.netns = init.netns;
  }


  async getLink(name: string): Promise<LinkInfo | undefined> {
    const links = await this.listLinks();
    return links.find((l) => l.name === name);
  }

  /**
   * One netlink dump through the addon, not `ip -j -d link show`: the pod guard and the service
   * bridge list the bridge's ports every 10 s, and a process each time cost the router a fork.
   */
  async listLinks(): Promise<LinkInfo[]> {
    return this.linksOf(await this.transact([linkDump()]));
  }

  /** Runs netlink requests through the addon in this object's namespace. */
  private async transact(requests: RtnlRequest[]): Promise<Buffer[]> {
    const ns = this.netns === undefined ? HERE : openNetns(`/run/netns/${this.netns}`);
    try {
      return await transact(ns, requests);
    } finally {
      if (ns !== HERE) closeNetns(ns);
    }
  }

  /** The links among `replies` (answers of a linkDump), masters resolved to names. */
  private linksOf(replies: Buffer[]): LinkInfo[] {
    const links = replies.flatMap((r) => {
      const l = parseLink(r);
      return l === undefined || l.name === '' ? [] : [l];
    });
    const names = new Map(links.map((l) => [l.index, l.name]));
    return links.map((l) => ({
      name: l.name,
      index: l.index,
      mtu: l.mtu,
      up: l.up,
      master: l.masterIndex === undefined ? undefined : names.get(l.masterIndex),
      kind: l.kind,
      mac: l.mac,
      ...(l.hairpin === undefined ? {} : { hairpin: l.hairpin }),
    }));
  }

  async ensureBridge(name: string): Promise<LinkInfo> {
    let link = await this.getLink(name);
    if (link === undefined) {
      await run(this.ip, [...this.nsArgs, 'link', 'add', name, 'type', 'bridge']);
      link = await this.getLink(name);
    }
    if (link === undefined) throw new WeftError('ERR_BRIDGE', `bridge ${name} vanished right after it was created`);
    if (link.kind !== 'bridge') throw new WeftError('ERR_BRIDGE', `${name} exists but is a ${link.kind ?? 'plain'} link, not a bridge`);
    return link;
  }

  async setMtu(name: string, mtu: number): Promise<void> {
    await run(this.ip, [...this.nsArgs, 'link', 'set', 'dev', name, 'mtu', String(mtu)]);
  }

  async setMaster(name: string, master: string): Promise<void> {
    await run(this.ip, [...this.nsArgs, 'link', 'set', 'dev', name, 'master', master]);
  }

  async setUp(name: string): Promise<void> {
    await run(this.ip, [...this.nsArgs, 'link', 'set', 'dev', name, 'up']);
  }

  async deleteLink(name: string): Promise<void> {
    await run(this.ip, [...this.nsArgs, 'link', 'del', 'dev', name]);
  }

  async bridgePorts(bridge: string): Promise<LinkInfo[]> {
    return (await this.listLinks()).filter((l) => l.master === bridge);
  }

  async routeGet(address: string): Promise<RouteInfo | undefined> {
    let out: string;
    try {
      out = await run(this.ip, [...this.nsArgs, '-j', 'route', 'get', address]);
    } catch {
      return undefined;
    }
    const r = (JSON.parse(out) as { dev?: string; prefsrc?: string; metrics?: { mtu?: number }[] }[])[0];
    if (r?.dev === undefined) return undefined;
    const link = await this.getLink(r.dev);
    return { dev: r.dev, src: r.prefsrc, mtu: r.metrics?.find((m) => m.mtu !== undefined)?.mtu ?? link?.mtu };
  }

  async linkWithAddress(address: string): Promise<LinkInfo | undefined> {
    const out = await run(this.ip, [...this.nsArgs, '-j', 'addr', 'show']);
    const rows = JSON.parse(out) as (IpLink & { addr_info?: { local?: string }[] })[];
    const hit = rows.find((r) => (r.addr_info ?? []).some((a) => a.local === address));
    return hit === undefined ? undefined : toLink(hit);
  }

  async getVxlan(name: string): Promise<VxlanInfo | undefined> {
    let out: string;
    try {
      out = await run(this.ip, [...this.nsArgs, '-j', '-d', 'link', 'show', 'dev', name]);
    } catch {
      return undefined;
    }
    const l = (JSON.parse(out) as IpLink[])[0];
    if (l === undefined || l.linkinfo?.info_kind !== 'vxlan') return undefined;
    const d = l.linkinfo.info_data ?? {};
    return { name: l.ifname, vni: d.id ?? 0, port: d.port ?? 0, local: d.local, learning: d.learning !== false, mtu: l.mtu };
  }

  async ensureVxlan(spec: VxlanSpec): Promise<VxlanInfo> {
    const existing = await this.getLink(spec.name);
    if (existing === undefined) {
      await run(this.ip, [
        ...this.nsArgs, 'link', 'add', spec.name, 'type', 'vxlan', 'id', String(spec.vni), 'dstport', String(spec.port),
        'local', spec.local, 'nolearning', ...(spec.dev === undefined ? [] : ['dev', spec.dev]),
      ]);
    }
    const v = await this.getVxlan(spec.name);
    if (v === undefined) {
      throw new WeftError('ERR_VXLAN', `${spec.name} exists but is a ${existing?.kind ?? 'plain'} link, not a VXLAN device`);
    }
    const diff: string[] = [];
    if (v.vni !== spec.vni) diff.push(`VNI ${v.vni} (wanted ${spec.vni})`);
    if (v.port !== spec.port) diff.push(`port ${v.port} (wanted ${spec.port})`);
    if (v.local !== spec.local) diff.push(`local ${v.local ?? 'unset'} (wanted ${spec.local})`);
    if (v.learning) diff.push('learning on (wanted off)');
    if (diff.length > 0) throw new WeftError('ERR_VXLAN', `VXLAN device ${spec.name} exists with other settings: ${diff.join(', ')}`);
    if (v.mtu !== spec.mtu) await this.setMtu(spec.name, spec.mtu);
    return { ...v, mtu: spec.mtu };
  }

  async fdbList(dev: string): Promise<FdbEntry[]> {
    const out = await run(this.bridgePath, [...this.nsArgs, '-j', 'fdb', 'show', 'dev', dev]);
    const rows = JSON.parse(out === '' ? '[]' : out) as { mac?: string; dst?: string }[];
    return rows.filter((r) => r.mac !== undefined && r.dst !== undefined).map((r) => ({ mac: r.mac!, dst: r.dst! }));
  }

  async fdbSet(dev: string, entry: FdbEntry): Promise<void> {
    const verb = entry.mac === FLOOD_MAC ? 'append' : 'replace';
    try {
      await run(this.bridgePath, [...this.nsArgs, 'fdb', verb, entry.mac, 'dev', dev, 'dst', entry.dst, 'self', 'permanent']);
    } catch (err) {
      // Appending a flood entry that is already there fails with EEXIST: the state is what we want.
      if (verb === 'append' && /exists/i.test(String(err))) return;
      throw err;
    }
  }

  async fdbDelete(dev: string, entry: FdbEntry): Promise<void> {
    try {
      await run(this.bridgePath, [...this.nsArgs, 'fdb', 'del', entry.mac, 'dev', dev, 'dst', entry.dst, 'self']);
    } catch (err) {
      if (/no such file|not found|cannot find/i.test(String(err))) return;
      throw err;
    }
  }

  async setIsolated(port: string, isolated: boolean): Promise<void> {
    await run(this.bridgePath, [...this.nsArgs, 'link', 'set', 'dev', port, 'isolated', isolated ? 'on' : 'off']);
  }

  async setHairpin(port: string, on: boolean): Promise<void> {
    await run(this.bridgePath, [...this.nsArgs, 'link', 'set', 'dev', port, 'hairpin', on ? 'on' : 'off']);
  }

  async isIsolated(port: string): Promise<boolean> {
    const out = await run(this.ip, [...this.nsArgs, '-j', '-d', 'link', 'show', 'dev', port]);
    const l = (JSON.parse(out) as IpLink[])[0];
    return l?.linkinfo?.info_slave_data?.isolated === true;
  }

  /**
   * The bridge's forwarding entries (`bridge fdb show br BRIDGE`: those whose master it is), from
   * one link and one neighbour dump: the fast path reads them every second.
   */
  async bridgeFdbList(bridge: string): Promise<BridgeFdbEntry[]> {
    const replies = await this.transact([linkDump(), fdbDump()]);
    const links = this.linksOf(replies);
    const br = links.find((l) => l.name === bridge);
    if (br === undefined) throw new WeftError('ERR_NETLINK', `bridge ${bridge} does not exist${this.netns === undefined ? '' : ` in ${this.netns}`}`);
    const names = new Map(links.map((l) => [l.index, l.name]));
    return replies.flatMap((r) => {
      const e = parseFdb(r);
      const port = e === undefined ? undefined : names.get(e.index);
      return e === undefined || e.masterIndex !== br.index || port === undefined ? [] : [{ mac: e.mac, port, kind: e.kind }];
    });
  }

  async bridgeFdbSetStatic(port: string, mac: string): Promise<void> {
    // sticky: learning never moves it to another port
    await run(this.bridgePath, [...this.nsArgs, 'fdb', 'replace', mac, 'dev', port, 'master', 'static', 'sticky']);
  }

  /** The global-scope addresses of `dev` (`ip addr show dev DEV scope global`), from one netlink dump: the pod network checks them every 2 s. */
  async addresses(dev: string): Promise<{ address: string; prefix: number; family: 4 | 6 }[]> {
    const [link, ...replies] = await this.transact([linkGet(dev), addressDump()]);
    const index = linkIndexOf(link!);
    return replies.flatMap((r) => {
      const a = parseAddress(r);
      return a === undefined || a.index !== index || a.scope !== 0 ? [] : [{ address: a.address, prefix: a.prefixLength, family: a.family }];
    });
  }

  async ensureAddress(dev: string, address: string, prefix: number): Promise<void> {
    const v6 = address.includes(':');
    await run(this.ip, [...this.nsArgs, ...(v6 ? ['-6'] : []), 'addr', 'replace', `${address}/${prefix}`, 'dev', dev, ...(v6 ? ['nodad'] : [])]);
  }

  async bridgeFdbDelete(port: string, mac: string): Promise<void> {
    try {
      await run(this.bridgePath, [...this.nsArgs, 'fdb', 'del', mac, 'dev', port, 'master']);
    } catch (err) {
      if (/no such file|not found|cannot find/i.test(String(err))) return;
      throw err;
    }
  }
}
