/**
 * The CNI result (spec 1.0.0 / 1.1.0): what ADD prints and what the next plugin in the chain
 * (portmap) and the runtime read back as `prevResult`. As the reference bridge plugin reports it:
 * `interfaces` lists the bridge (0), the host veth (1) and the container interface (2, with
 * `sandbox`, the netns path); `ips[].interface` indexes the container interface. 1.1.0 adds `mtu`
 * on the veth's ends. Results of older weft versions (host veth, container interface) are read too.
 */
import type { PrefixedAddress } from '../api/types.js';
import { CniCode, CniError } from './errors.js';
import type { CniVersion } from './versions.js';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIpConfig {
  /** CIDR: '10.32.0.5/12'. */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** An address the router's IPAM gave the pod. */
export type PodAddress = PrefixedAddress;

/** The gateway's address on the bridge, one per family. */
export type Gateway = PrefixedAddress;

export interface AddOutcome {
  cniVersion: CniVersion;
  bridge: string;
  bridgeMac: string;
  hostName: string;
  hostMac: string;
  ifName: string;
  containerMac: string;
  netns: string;
  mtu: number;
  addresses: PodAddress[];
  gateways: Gateway[];
  /** The routes ADD installed in the pod (default routes and the config's). */
  routes: CniRoute[];
  dns?: CniDns;
}

export function defaultRouteDst(family: 4 | 6): string {
  return family === 4 ? '0.0.0.0/0' : '::/0';
}

/** Index of the container interface in ADD's result. */
export const CONTAINER_INTERFACE = 2;

/** ADD's result: bridge (0), host veth (1), container interface (2); one ip per address on it; the routes installed. */
export function buildAddResult(o: AddOutcome): CniResult {
  const withMtu = o.cniVersion !== '1.0.0';
  const gw = (f: 4 | 6): Gateway | undefined => o.gateways.find((g) => g.family === f);
  const result: CniResult = {
    cniVersion: o.cniVersion,
    interfaces: [
      { name: o.bridge, mac: o.bridgeMac },
      { name: o.hostName, mac: o.hostMac, ...(withMtu ? { mtu: o.mtu } : {}) },
      { name: o.ifName, mac: o.containerMac, ...(withMtu ? { mtu: o.mtu } : {}), sandbox: o.netns },
    ],
    ips: o.addresses.map((a) => {
      const g = gw(a.family);
      return { address: `${a.address}/${a.prefixLength}`, ...(g === undefined ? {} : { gateway: g.address }), interface: CONTAINER_INTERFACE };
    }),
    routes: o.routes.map((r) => ({ ...r })),
  };
  if (o.dns !== undefined && Object.keys(o.dns).length > 0) result.dns = o.dns;
  return result;
}

/** The container interface of a result (either shape): the one named `ifName` with a sandbox; -1 when none. */
export function containerInterfaceIndex(r: CniResult, ifName: string): number {
  return (r.interfaces ?? []).findIndex((i) => i.name === ifName && i.sandbox !== undefined && i.sandbox !== '');
}

/**
 * Reads `prevResult` (CHECK, or DEL when given): throws a code-7 CniError naming the first field
 * that is wrong.
 */
export function parsePrevResult(raw: unknown): CniResult {
  const bad = (field: string, why: string): never => {
    throw new CniError(CniCode.InvalidNetworkConfig, `prevResult${field === '' ? '' : `.${field}`} ${why}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('', 'must be an object');
  const r = raw as Record<string, unknown>;
  const out: CniResult = { cniVersion: typeof r.cniVersion === 'string' ? r.cniVersion : '' };
  if (r.interfaces !== undefined) {
    if (!Array.isArray(r.interfaces)) bad('interfaces', 'must be an array');
    out.interfaces = (r.interfaces as unknown[]).map((i, n) => {
      if (typeof i !== 'object' || i === null) return bad(`interfaces[${n}]`, 'must be an object');
      const o = i as Record<string, unknown>;
      if (typeof o.name !== 'string') bad(`interfaces[${n}].name`, 'must be a string');
      const itf: CniInterface = { name: o.name as string };
      if (typeof o.mac === 'string') itf.mac = o.mac;
      if (typeof o.sandbox === 'string') itf.sandbox = o.sandbox;
      if (typeof o.mtu === 'number') itf.mtu = o.mtu;
      return itf;
    });
  }
  if (r.ips !== undefined) {
    if (!Array.isArray(r.ips)) bad('ips', 'must be an array');
    out.ips = (r.ips as unknown[]).map((i, n) => {
      if (typeof i !== 'object' || i === null) return bad(`ips[${n}]`, 'must be an object');
      const o = i as Record<string, unknown>;
      if (typeof o.address !== 'string' || !o.address.includes('/')) bad(`ips[${n}].address`, 'must be an address with prefix length');
      if (o.interface !== undefined && (!Number.isInteger(o.interface) || (o.interface as number) < 0)) bad(`ips[${n}].interface`, 'must be an index');
      const ip: CniIpConfig = { address: o.address as string };
      if (typeof o.gateway === 'string') ip.gateway = o.gateway;
      if (typeof o.interface === 'number') ip.interface = o.interface;
      return ip;
    });
  }
  if (r.routes !== undefined) {
    if (!Array.isArray(r.routes)) bad('routes', 'must be an array');
    out.routes = (r.routes as unknown[]).map((i, n) => {
      if (typeof i !== 'object' || i === null || typeof (i as { dst?: unknown }).dst !== 'string') return bad(`routes[${n}].dst`, 'must be a string');
      const o = i as Record<string, unknown>;
      return typeof o.gw === 'string' ? { dst: o.dst as string, gw: o.gw } : { dst: o.dst as string };
    });
  }
  return out;
}
