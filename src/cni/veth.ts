/**
 * The interface work of ADD, DEL and CHECK, behind `LinkOps` so the commands can be tested with a
 * fake. `PodLinks` runs in the node's network namespace (where the bridge is). What ADD and DEL
 * change goes through rtnetlink from the native addon (src/platform/linux/rtnl.ts), with no
 * process per call: ADD is on the pod start-up path. CHECK and GC read through `ip -j` (and
 * `nsenter --net=<CNI_NETNS>` for the pod's side).
 *
 *   1. here: the veth, its host end on the bridge and up, its container end created straight
 *      inside the pod's netns (nothing is ever left half-moved); hairpin on the host end
 *   2. in the pod netns: lo up, addresses (IPv6 without DAD), up, default routes
 *
 * The pod's netns may be any path naming one (/var/run/netns/x, /proc/<pid>/ns/net,
 * /proc/<pid>/fd/<n>); it is opened and checked to be a network namespace first.
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { WeftError } from '../core/errors.js';
import { run } from '../platform/linux/run.js';
import {
  addressAdd,
  bridgePortHairpin,
  closeNetns,
  defaultRouteAdd,
  HERE,
  linkDelete,
  linkGet,
  linkIndexOf,
  linkSet,
  openNetns,
  RtnlError,
  transact,
  vethAdd,
  type RtnlRequest,
} from '../platform/linux/rtnl.js';
import type { Gateway, PodAddress } from './result.js';

export interface PodLinkSpec {
  netns: string;
  ifName: string;
  hostName: string;
  bridge: string;
  mtu: number;
}

export interface PodAddressing {
  netns: string;
  ifName: string;
  addresses: PodAddress[];
  gateways: Gateway[];
}

export interface CreatedPair {
  hostMac: string;
  containerMac: string;
}

export interface ContainerLink {
  mtu: number;
  mac: string;
  up: boolean;
  /** CIDRs, global scope only. */
  addresses: string[];
}

export interface PodRoute {
  dst: string;
  gw?: string;
  dev?: string;
}

export interface HostLink {
  master?: string;
  mtu: number;
  up: boolean;
}

/** Thrown by LinkOps; `kind` (in the code too: ERR_LINK_NETNS, _EXISTS, _FAILED) lets commands pick the CNI code. */
export class LinkError extends WeftError {
  readonly kind: 'netns' | 'exists' | 'failed';

  constructor(kind: 'netns' | 'exists' | 'failed', message: string, options?: { cause?: unknown }) {
    super(`ERR_LINK_${kind.toUpperCase()}`, message, options);
    this.name = 'LinkError';
    this.kind = kind;
  }
}

export interface LinkOps {
  /** Creates the pair and puts the host end on the bridge; kind 'netns' (bad path) or 'exists' (ifName or host name taken). */
  createPair(spec: PodLinkSpec): Promise<CreatedPair>;
  /** Addresses, link up, default route per family with a gateway. */
  configure(a: PodAddressing): Promise<void>;
  /** Deletes the host end (taking the container end with it); false when it did not exist. */
  removeHost(hostName: string): Promise<boolean>;
  /** The container interface, undefined when absent; kind 'netns' when the namespace is gone. */
  inspect(netns: string, ifName: string): Promise<{ link: ContainerLink; routes: PodRoute[] } | undefined>;
  hostLink(hostName: string): Promise<HostLink | undefined>;
  /** Names of host ends made by weft (`vw` + 12 hex) in our namespace. */
  hostEnds(): Promise<string[]>;
}

export const HOST_END = /^vw[0-9a-f]{12}$/;

/** The host end's name: deterministic, so DEL finds it without prevResult; 14 characters. */
export function hostVethName(containerId: string, ifName: string): string {
  return `vw${createHash('sha256').update(`${containerId}\0${ifName}`).digest('hex').slice(0, 12)}`;
}

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Finds an executable on PATH, then in the usual system directories (runtimes promise no PATH). */
export function findTool(name: string, pathEnv: string | undefined): string {
  const dirs = [...(pathEnv ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_DIRS];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new LinkError('failed', `${name} not found on PATH or in ${SYSTEM_DIRS.join(':')}; install ${name === 'ip' ? 'iproute2' : 'util-linux'}`);
}

const NO_DEVICE = /Cannot find device|does not exist|No such device/i;
/** nsenter's own complaints (the namespace path is wrong), as opposed to ip's. */
const NETNS_BAD = /^nsenter:/m;

function stderrOf(err: unknown): string {
  const e = err as { stderr?: unknown; message?: unknown };
  return typeof e.stderr === 'string' ? e.stderr : String(e.message);
}

export interface PodLinksInit {
  /** PATH of the plugin's environment (may be undefined): where CHECK and GC find ip and nsenter. */
  pathEnv?: string;
  timeoutMs?: number;
}

/** The index of link `name` in namespace `ns`, undefined when there is none. */
async function linkIndex(ns: number, name: string): Promise<number | undefined> {
  try {
    const [reply] = await transact(ns, [linkGet(name)]);
    return reply === undefined ? undefined : linkIndexOf(reply);
  } catch (err) {
    if (err instanceof RtnlError && err.code === 'ENODEV') return undefined;
    throw err;
  }
}

function openPodNetns(path: string): number {
  if (/\s/.test(path)) throw new LinkError('netns', `${path} is not a usable network namespace path (white space)`);
  try {
    return openNetns(path);
  } catch (err) {
    throw new LinkError('netns', `${path} is not a network namespace: ${(err as Error).message}`, { cause: err });
  }
}

export class PodLinks implements LinkOps {
  private readonly pathEnv: string | undefined;
  private readonly timeoutMs: number;
  private tools: { ip: string; nsenter: string } | undefined;

  constructor(init: PodLinksInit = {}) {
    this.pathEnv = init.pathEnv;
    this.timeoutMs = init.timeoutMs ?? 15_000;
  }

  private get bin(): { ip: string; nsenter: string } {
    this.tools ??= { ip: findTool('ip', this.pathEnv), nsenter: findTool('nsenter', this.pathEnv) };
    return this.tools;
  }

  private here(args: string[]): Promise<string> {
    return run(this.bin.ip, args, { timeoutMs: this.timeoutMs });
  }

  private inNs(netns: string, args: string[]): Promise<string> {
    return run(this.bin.nsenter, [`--net=${netns}`, '--', this.bin.ip, ...args], { timeoutMs: this.timeoutMs });
  }

  /**
   * The pair in one request from the node's namespace: host end named, addressed, on the bridge
   * and up; the container end made inside the pod's netns. Then hairpin on the host end.
   */
  async createPair(spec: PodLinkSpec): Promise<CreatedPair> {
    const pair = { hostMac: randomMac(), containerMac: randomMac() };
    const podNs = openPodNetns(spec.netns);
    try {
      for (let attempt = 0; ; attempt++) {
        const bridge = await linkIndex(HERE, spec.bridge).catch((err: unknown) => {
          throw new LinkError('failed', `looking up bridge ${spec.bridge}: ${(err as Error).message}`, { cause: err });
        });
        if (bridge === undefined) throw new LinkError('failed', `bridge ${spec.bridge} does not exist in the node's network namespace`);
        const create = vethAdd({
          name: spec.hostName,
          mac: pair.hostMac,
          mtu: spec.mtu,
          master: bridge,
          up: true,
          peer: { name: spec.ifName, mac: pair.containerMac, mtu: spec.mtu, nsFd: podNs },
        });
        try {
          await transact(HERE, [create, bridgePortHairpin(spec.hostName, true)]);
          return pair;
        } catch (err) {
          const text = (err as Error).message;
          if (!(err instanceof RtnlError) || err.index !== 0 || err.code !== 'EEXIST') {
            throw new LinkError('failed', `${text} (host end on bridge ${spec.bridge})`, { cause: err });
          }
          if ((await linkIndex(podNs, spec.ifName)) !== undefined) throw new LinkError('exists', `interface ${spec.ifName} already exists in ${spec.netns}`, { cause: err });
          // The host end's name is derived from this very attachment: a leftover of an earlier, interrupted ADD.
          if (attempt > 0 || !(await this.removeHost(spec.hostName))) throw new LinkError('failed', text, { cause: err });
        }
      }
    } finally {
      closeNetns(podNs);
    }
  }

  async configure(a: PodAddressing): Promise<void> {
    const ns = openPodNetns(a.netns);
    try {
      const index = await linkIndex(ns, a.ifName);
      if (index === undefined) throw new LinkError('failed', `${a.ifName} does not exist there`);
      const requests: RtnlRequest[] = [linkSet({ name: 'lo', up: true })];
      for (const x of a.addresses) requests.push(addressAdd({ index, address: x.address, prefixLength: x.prefixLength, nodad: x.family === 6 }));
      requests.push(linkSet({ index, up: true }));
      const families = new Set(a.addresses.map((x) => x.family));
      for (const g of a.gateways) if (families.has(g.family)) requests.push(defaultRouteAdd({ index, gateway: g.address }));
      await transact(ns, requests);
    } catch (err) {
      throw new LinkError('failed', `configuring ${a.ifName} in ${a.netns}: ${(err as Error).message}`, { cause: err });
    } finally {
      closeNetns(ns);
    }
  }

  async removeHost(hostName: string): Promise<boolean> {
    try {
      await transact(HERE, [linkDelete(hostName)]);
      return true;
    } catch (err) {
      if (err instanceof RtnlError && err.code === 'ENODEV') return false;
      throw new LinkError('failed', (err as Error).message, { cause: err });
    }
  }

  async inspect(netns: string, ifName: string): Promise<{ link: ContainerLink; routes: PodRoute[] } | undefined> {
    let text: string;
    try {
      text = await this.inNs(netns, ['-j', 'addr', 'show', 'dev', ifName]);
    } catch (err) {
      const msg = stderrOf(err).trim();
      if (NETNS_BAD.test(msg)) throw new LinkError('netns', `cannot enter ${netns}: ${msg}`, { cause: err });
      if (NO_DEVICE.test(msg)) return undefined;
      throw new LinkError('failed', `reading ${ifName} in ${netns}: ${msg}`, { cause: err });
    }
    const info = (JSON.parse(text) as { mtu?: number; address?: string; flags?: string[]; addr_info?: { local?: string; prefixlen?: number; scope?: string }[] }[])[0];
    if (info === undefined) return undefined;
    const link: ContainerLink = {
      mtu: info.mtu ?? 0,
      mac: info.address ?? '',
      up: (info.flags ?? []).includes('UP'),
      addresses: (info.addr_info ?? []).filter((x) => x.scope === 'global').map((x) => `${x.local}/${x.prefixlen}`),
    };
    const routes: PodRoute[] = [];
    for (const fam of ['-4', '-6']) {
      const r = JSON.parse(await this.inNs(netns, ['-j', fam, 'route', 'show'])) as { dst?: string; gateway?: string; dev?: string }[];
      for (const x of r) {
        const dst = x.dst === 'default' ? (fam === '-4' ? '0.0.0.0/0' : '::/0') : (x.dst ?? '');
        routes.push({ dst, ...(x.gateway === undefined ? {} : { gw: x.gateway }), ...(x.dev === undefined ? {} : { dev: x.dev }) });
      }
    }
    return { link, routes };
  }

  async hostLink(hostName: string): Promise<HostLink | undefined> {
    let text: string;
    try {
      text = await this.here(['-j', 'link', 'show', 'dev', hostName]);
    } catch (err) {
      if (NO_DEVICE.test((err as Error).message)) return undefined;
      throw err;
    }
    const info = (JSON.parse(text) as { master?: string; mtu?: number; flags?: string[] }[])[0];
    if (info === undefined) return undefined;
    return { ...(info.master === undefined ? {} : { master: info.master }), mtu: info.mtu ?? 0, up: (info.flags ?? []).includes('UP') };
  }

  async hostEnds(): Promise<string[]> {
    const links = JSON.parse(await this.here(['-j', 'link', 'show', 'type', 'veth'])) as { ifname?: string }[];
    return links.map((l) => l.ifname ?? '').filter((n) => HOST_END.test(n));
  }
}
