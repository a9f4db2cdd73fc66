import { WeftError } from '../../core/errors.js';
import type { LinkInfo, Netlink, RouteInfo } from '../netlink.js';
import { run } from './run.js';

interface IpLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  flags?: string[];
  operstate?: string;
  master?: string;
  address?: string;
  linkinfo?: { info_kind?: string };
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
  };
}

/** Netlink through iproute2 (`ip -j`), in the network namespace this process runs in. */
export class IpNetlink implements Netlink {
  private readonly ip: string;

  constructor(init: { ipPath?: string } = {}) {
    this.ip = init.ipPath ?? 'ip';
  }

  async getLink(name: string): Promise<LinkInfo | undefined> {
    const links = await this.listLinks();
    return links.find((l) => l.name === name);
  }

  async listLinks(): Promise<LinkInfo[]> {
    const out = await run(this.ip, ['-j', '-d', 'link', 'show']);
    return (JSON.parse(out) as IpLink[]).map(toLink);
  }

  async ensureBridge(name: string): Promise<LinkInfo> {
    let link = await this.getLink(name);
    if (link === undefined) {
      await run(this.ip, ['link', 'add', name, 'type', 'bridge']);
      link = await this.getLink(name);
    }
    if (link === undefined) throw new WeftError('ERR_BRIDGE', `bridge ${name} vanished right after it was created`);
    if (link.kind !== 'bridge') throw new WeftError('ERR_BRIDGE', `${name} exists but is a ${link.kind ?? 'plain'} link, not a bridge`);
    return link;
  }

  async setMtu(name: string, mtu: number): Promise<void> {
    await run(this.ip, ['link', 'set', 'dev', name, 'mtu', String(mtu)]);
  }

  async setMaster(name: string, master: string): Promise<void> {
    await run(this.ip, ['link', 'set', 'dev', name, 'master', master]);
  }

  async setUp(name: string): Promise<void> {
    await run(this.ip, ['link', 'set', 'dev', name, 'up']);
  }

  async deleteLink(name: string): Promise<void> {
    await run(this.ip, ['link', 'del', 'dev', name]);
  }

  async bridgePorts(bridge: string): Promise<LinkInfo[]> {
    return (await this.listLinks()).filter((l) => l.master === bridge);
  }

  async routeGet(address: string): Promise<RouteInfo | undefined> {
    let out: string;
    try {
      out = await run(this.ip, ['-j', 'route', 'get', address]);
    } catch {
      return undefined;
    }
    const r = (JSON.parse(out) as { dev?: string; prefsrc?: string; metrics?: { mtu?: number }[] }[])[0];
    if (r?.dev === undefined) return undefined;
    const link = await this.getLink(r.dev);
    return { dev: r.dev, src: r.prefsrc, mtu: r.metrics?.find((m) => m.mtu !== undefined)?.mtu ?? link?.mtu };
  }

  async linkWithAddress(address: string): Promise<LinkInfo | undefined> {
    const out = await run(this.ip, ['-j', 'addr', 'show']);
    const rows = JSON.parse(out) as (IpLink & { addr_info?: { local?: string }[] })[];
    const hit = rows.find((r) => (r.addr_info ?? []).some((a) => a.local === address));
    return hit === undefined ? undefined : toLink(hit);
  }
}
