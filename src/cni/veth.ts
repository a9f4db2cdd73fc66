/**
 * The interface work of ADD, DEL and CHECK, behind `LinkOps` so the commands can be tested with a
 * fake. `PodLinks` runs in the node's network namespace (where the bridge is). What ADD and DEL
 * change goes through rtnetlink from the native addon (src/platform/linux/rtnl.ts), with no
 * process per call: ADD is on the pod start-up path. CHECK and GC read through `ip -j` (and
 * `nsenter --net=<CNI_NETNS>` for the pod's side).
 *
 *   1. here: the veth, its host end on the bridge and up, its container end created straight
 *      inside the pod's netns (nothing is ever left half-moved); hairpin on the host end
 *   2. in the pod netns: its routes read (is there a default route per family yet?), then lo up,
 *      addresses (IPv6 without DAD), up, default routes (see PodAddressing.defaultRoute) and the
 *      config's routes
 *
 * The pod's netns may be any path naming one (/var/run/netns/x, /proc/<pid>/ns/net,
 * /proc/<pid>/fd/<n>); it is opened and checked to be a network namespace first.
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { WeftError } from '../core/errors.js';
import { formatLinkAddress } from '../core/mac.js';
import { run } from '../platform/linux/run.js';
import {
  addressAdd,
  bridgePortHairpin,
  closeNetns,
  HERE,
  linkDelete,
  linkGet,
  linkAddressOf,
  linkIndexOf,
  linkSet,
  openNetns,
  parseRoute,
  routeAdd,
  routeDump,
  RT_TABLE_MAIN,
  RTN_UNICAST,
  RtnlError,
  transact,
  vethAdd,
  type RtnlRequest,
} from '../platform/linux/rtnl.js';
import type { CniRoute, Gateway, PodAddress } from './result.js';

export interface PodLinkSpec {
  netns: string;
  ifName: string;
  hostName: string;
  bridge: string;
  mtu: number;
  /** The container end's MAC (ADD picks it first so the router can guard the port meanwhile); default random. */
  containerMac?: string;
}

export interface PodAddressing {
  netns: string;
  ifName: string;
  addresses: PodAddress[];
  gateways: Gateway[];
  /** The config's routes (dst a canonical network prefix); without gw, via the family's gateway. */
  routes?: CniRoute[];
  /** true: a default route per family of `addresses`; false: none; undefined: only for a family the netns has no default route of yet. */
  defaultRoute?: boolean;
}

export interface CreatedPair {
  hostMac: string;
  containerMac: string;
  /** The bridge's MAC (the result lists the bridge). */
  bridgeMac: string;
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
  /** Addresses, link up, default routes (as `defaultRoute` says) and the config's routes; resolves with the routes it added (gw filled in). */
  configure(a: PodAddressing): Promise<CniRoute[]>;
  /** true when `netns` is the network namespace this process runs in (the node's): never a pod's. */
  isOwnNetns(netns: string): boolean;
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
  return formatLinkAddress(b);
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

/** The kernel's description of link `name` in namespace `ns` (RTM_NEWLINK), undefined when there is none. */
async function linkReply(ns: number, name: string): Promise<Buffer | undefined> {
  try {
    const [reply] = await transact(ns, [linkGet(name)]);
    return reply;
  } catch (err) {
    if (err instanceof RtnlError && err.code === 'ENODEV') return undefined;
    throw err;
  }
}

/** The index of link `name` in namespace `ns`, undefined when there is none. */
async function linkIndex(ns: number, name: string): Promise<number | undefined> {
  const reply = await linkReply(ns, name);
  return reply === undefined ? undefined : linkIndexOf(reply);
}

/** The families (4, 6) with a default route in the main table, from the answers of a routeDump. */
function defaultRouteFamilies(replies: readonly Buffer[]): Set<4 | 6> {
  const out = new Set<4 | 6>();
  for (const reply of replies) {
    const r = parseRoute(reply);
    if (r !== undefined && r.prefixLength === 0 && r.table === RT_TABLE_MAIN && r.type === RTN_UNICAST) out.add(r.family);
  }
  return out;
}

function prefixOf(dst: string): { address: string; length: number; family: 4 | 6 } {
  const i = dst.lastIndexOf('/');
  const address = dst.slice(0, i);
  return { address, length: Number(dst.slice(i + 1)), family: address.includes(':') ? 6 : 4 };
}

/**
 * The routes `configure` adds for `a`, in order: a default route per family (as `defaultRoute`
 * says; `auto` marks those that depend on the netns having none, and a config route to the
 * default prefix replaces ours), then the config's routes, via the family's gateway when they
 * name none. `existing`: the families with a default route in the netns already.
 */
export function plannedRoutes(a: PodAddressing, existing: ReadonlySet<4 | 6>): (CniRoute & { auto: boolean })[] {
  const families = [...new Set(a.addresses.map((x) => x.family))].sort();
  const gw = (f: 4 | 6): string | undefined => a.gateways.find((g) => g.family === f)?.address;
  const extra = (a.routes ?? []).map((r) => {
    const g = r.gw ?? gw(prefixOf(r.dst).family);
    return { dst: r.dst, ...(g === undefined ? {} : { gw: g }), auto: false };
  });
  const out: (CniRoute & { auto: boolean })[] = [];
  for (const f of families) {
    const g = gw(f);
    if (g === undefined || a.defaultRoute === false) continue;
    if (extra.some((r) => prefixOf(r.dst).family === f && prefixOf(r.dst).length === 0)) continue;
    if (a.defaultRoute === undefined && existing.has(f)) continue;
    out.push({ dst: f === 4 ? '0.0.0.0/0' : '::/0', gw: g, auto: a.defaultRoute === undefined });
  }
  return [...out, ...extra];
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
    const pair: CreatedPair = { hostMac: randomMac(), containerMac: spec.containerMac ?? randomMac(), bridgeMac: '' };
    const podNs = openPodNetns(spec.netns);
    try {
      for (let attempt = 0; ; attempt++) {
        const found = await linkReply(HERE, spec.bridge).catch((err: unknown) => {
          throw new LinkError('failed', `looking up bridge ${spec.bridge}: ${(err as Error).message}`, { cause: err });
        });
        if (found === undefined) throw new LinkError('failed', `bridge ${spec.bridge} does not exist in the node's network namespace`);
        const bridge = linkIndexOf(found);
        const create = vethAdd({
          name: spec.hostName,
          mac: pair.hostMac,
          mtu: spec.mtu,
          master: bridge,
          up: true,
          peer: { name: spec.ifName, mac: pair.containerMac, mtu: spec.mtu, nsFd: podNs },
        });
        try {
          // The bridge read again once the port is on it: a bridge without a MAC of its own takes its ports' lowest.
          const replies = await transact(HERE, [create, bridgePortHairpin(spec.hostName, true), linkGet(spec.bridge)]);
          const after = replies[replies.length - 1];
          pair.bridgeMac = (after === undefined ? undefined : linkAddressOf(after)) ?? linkAddressOf(found) ?? '';
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

  async configure(a: PodAddressing): Promise<CniRoute[]> {
    const ns = openPodNetns(a.netns);
    try {
      // The interface and (when it matters) the netns's routes, in one round trip.
      const replies = await transact(ns, a.defaultRoute === undefined ? [linkGet(a.ifName), routeDump()] : [linkGet(a.ifName)]).catch((err: unknown) => {
        if (err instanceof RtnlError && err.code === 'ENODEV' && err.index === 0) throw new LinkError('failed', `${a.ifName} does not exist there`);
        throw err;
      });
      const index = linkIndexOf(replies[0]!);
      const existing = defaultRouteFamilies(replies.slice(1));
      const routes = plannedRoutes(a, existing);
      const requests: RtnlRequest[] = [linkSet({ name: 'lo', up: true })];
      for (const x of a.addresses) requests.push(addressAdd({ index, address: x.address, prefixLength: x.prefixLength, nodad: x.family === 6 }));
      requests.push(linkSet({ index, up: true }));
      const first = requests.length;
      for (const r of routes) {
        const p = prefixOf(r.dst);
        requests.push(routeAdd({ index, dst: p.address, prefixLength: p.length, ...(r.gw === undefined ? {} : { gateway: r.gw }) }));
      }
      // An attachment made at the same moment in the same netns may have added its default
      // route since we looked: then ours (added only because there was none) is left out.
      let from = 0;
      const skipped = new Set<number>();
      for (;;) {
        try {
          await transact(ns, requests.slice(from));
          break;
        } catch (err) {
          const at = err instanceof RtnlError ? from + err.index - first : -1;
          if (!(err instanceof RtnlError) || err.code !== 'EEXIST' || at < 0 || routes[at]?.auto !== true) throw err;
          skipped.add(at);
          from = first + at + 1;
        }
      }
      return routes.filter((_, i) => !skipped.has(i)).map((r) => (r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw }));
    } catch (err) {
      throw new LinkError('failed', `configuring ${a.ifName} in ${a.netns}: ${(err as Error).message}`, { cause: err });
    } finally {
      closeNetns(ns);
    }
  }

  isOwnNetns(netns: string): boolean {
    try {
      const given = statSync(netns);
      const own = statSync('/proc/self/ns/net');
      return given.dev === own.dev && given.ino === own.ino;
    } catch {
      return false; // not there or not readable: creating the pair reports it
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
        const raw = x.dst ?? '';
        const dst = raw === 'default' ? (fam === '-4' ? '0.0.0.0/0' : '::/0') : raw.includes('/') ? raw : `${raw}/${fam === '-4' ? 32 : 128}`;
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
