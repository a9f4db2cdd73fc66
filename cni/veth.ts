/**
 * The interface work of ADD, DEL and CHECK, behind `LinkOps` so the commands can be tested with a
 * fake. `IpLinks` drives iproute2: the plugin runs in the node's network namespace (where the
 * bridge is); work in the pod's namespace goes through `nsenter --net=<CNI_NETNS>`, which accepts
 * any namespace path (/var/run/netns/x, /proc/<pid>/ns/net).
 *
 *   1. in the pod netns: `ip link add <ifName> type veth peer name <host> netns <our pid>` (the
 *      host end is born in our namespace: nothing is ever left half-moved)
 *   2. here: host end on the bridge, hairpin on, up
 *   3. in the pod netns (ip -batch): lo up, addresses (IPv6 without DAD), up, default routes
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { run } from '../src/platform/linux/run.js';
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

/** Thrown by LinkOps; `kind` lets commands pick the CNI code. */
export class LinkError extends Error {
  readonly kind: 'netns' | 'exists' | 'failed';

  constructor(kind: 'netns' | 'exists' | 'failed', message: string, options?: { cause?: unknown }) {
    super(message, options);
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

export interface IpLinksInit {
  /** PATH of the plugin's environment (may be undefined). */
  pathEnv?: string;
  /** Our PID: `ip link ... netns <pid>` names our namespace from inside the pod's. */
  pid: number;
  timeoutMs?: number;
}

export class IpLinks implements LinkOps {
  private readonly pathEnv: string | undefined;
  private readonly pid: number;
  private readonly timeoutMs: number;
  private tools: { ip: string; nsenter: string } | undefined;

  constructor(init: IpLinksInit) {
    this.pathEnv = init.pathEnv;
    this.pid = init.pid;
    this.timeoutMs = init.timeoutMs ?? 15_000;
  }

  private get bin(): { ip: string; nsenter: string } {
    this.tools ??= { ip: findTool('ip', this.pathEnv), nsenter: findTool('nsenter', this.pathEnv) };
    return this.tools;
  }

  private here(args: string[], input?: string): Promise<string> {
    return run(this.bin.ip, args, { timeoutMs: this.timeoutMs, ...(input === undefined ? {} : { input }) });
  }

  private inNs(netns: string, args: string[], input?: string): Promise<string> {
    return run(this.bin.nsenter, [`--net=${netns}`, '--', this.bin.ip, ...args], { timeoutMs: this.timeoutMs, ...(input === undefined ? {} : { input }) });
  }

  /**
   * One `ip -batch` in the node's namespace: the veth with its peer created straight inside the
   * pod's netns (iproute2 opens a `netns` argument containing '/' as a path), then the host end
   * on the bridge with hairpin, up. One process instead of nsenter + two ip runs: ADD is on the
   * pod start-up path.
   */
  async createPair(spec: PodLinkSpec): Promise<CreatedPair> {
    const pair = { hostMac: randomMac(), containerMac: randomMac() };
    const mtu = String(spec.mtu);
    const batch = [
      `link add ${spec.hostName} address ${pair.hostMac} mtu ${mtu} type veth peer name ${spec.ifName} address ${pair.containerMac} mtu ${mtu} netns ${spec.netns}`,
      `link set dev ${spec.hostName} master ${spec.bridge}`,
      `link set dev ${spec.hostName} type bridge_slave hairpin on`,
      `link set dev ${spec.hostName} up`,
    ];
    if (/\s/.test(spec.netns)) throw new LinkError('netns', `${spec.netns} is not a usable network namespace path (white space)`);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.here(['-batch', '-'], `${batch.join('\n')}\n`);
        return pair;
      } catch (err) {
        const text = stderrOf(err).trim();
        // A path that is no netns: missing (refused while parsing line 1) or another kind of file
        // (the kernel refuses the add on line 1 with EINVAL).
        if (/Invalid "netns" value/.test(text) || (/Invalid argument/.test(text) && /Command failed -:1$/m.test(text))) {
          throw new LinkError('netns', `${spec.netns} is not a network namespace: ${text}`, { cause: err });
        }
        // ip reports "Command failed -:N" for what the kernel refused; a line it could not parse
        // (a missing bridge) stops the batch with no line number, after line 1 ran.
        if (!/Command failed -:1$/m.test(text)) throw new LinkError('failed', `attaching ${spec.hostName} to bridge ${spec.bridge}: ${text}`, { cause: err });
        if (!/File exists/i.test(text)) throw new LinkError('failed', `creating veth ${spec.ifName}/${spec.hostName}: ${text}`, { cause: err });
        const inPod = await this.inNs(spec.netns, ['link', 'show', 'dev', spec.ifName]).then(() => true, () => false);
        if (inPod) throw new LinkError('exists', `interface ${spec.ifName} already exists in ${spec.netns}`, { cause: err });
        // The host end's name is derived from this very attachment: a leftover of an earlier, interrupted ADD.
        if (attempt > 0 || !(await this.removeHost(spec.hostName))) {
          throw new LinkError('failed', `creating veth ${spec.ifName}/${spec.hostName}: ${text}`, { cause: err });
        }
      }
    }
  }

  async configure(a: PodAddressing): Promise<void> {
    const lines = ['link set dev lo up'];
    for (const x of a.addresses) lines.push(`addr add ${x.address}/${x.prefixLength} dev ${a.ifName}${x.family === 6 ? ' nodad' : ''}`);
    lines.push(`link set dev ${a.ifName} up`);
    const families = new Set(a.addresses.map((x) => x.family));
    for (const g of a.gateways) {
      if (!families.has(g.family)) continue;
      lines.push(`route add ${g.family === 4 ? '0.0.0.0/0' : '::/0'} via ${g.address} dev ${a.ifName} onlink`);
    }
    try {
      await this.inNs(a.netns, ['-batch', '-'], `${lines.join('\n')}\n`);
    } catch (err) {
      throw new LinkError('failed', `configuring ${a.ifName} in ${a.netns}: ${(err as Error).message}`, { cause: err });
    }
  }

  async removeHost(hostName: string): Promise<boolean> {
    try {
      await this.here(['link', 'del', 'dev', hostName]);
      return true;
    } catch (err) {
      if (NO_DEVICE.test((err as Error).message)) return false;
      throw new LinkError('failed', `deleting ${hostName}: ${(err as Error).message}`, { cause: err });
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
