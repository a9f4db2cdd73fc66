/**
 * The CNI result (spec 1.0.0 / 1.1.0): what ADD prints and what the next plugin in the chain
 * (portmap) and the runtime read back as `prevResult`. `ips[].interface` indexes `interfaces`;
 * the container interface carries `sandbox` (the netns path). 1.1.0 adds `mtu` on interfaces.
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
  hostName: string;
  hostMac: string;
  ifName: string;
  containerMac: string;
  netns: string;
  mtu: number;
  addresses: PodAddress[];
  gateways: Gateway[];
  dns?: CniDns;
}

export function defaultRouteDst(family: 4 | 6): string {
  return family === 4 ? '0.0.0.0/0' : '::/0';
}

/** ADD's result: host veth (index 0), container interface (index 1), one ip and default route per family. */
export function buildAddResult(o: AddOutcome): CniResult {
  const withMtu = o.cniVersion !== '1.0.0';
  const gw = (f: 4 | 6): Gateway | undefined => o.gateways.find((g) => g.family === f);
  const families = [...new Set(o.addresses.map((a) => a.family))].sort();
  const result: CniResult = {
    cniVersion: o.cniVersion,
    interfaces: [
      { name: o.hostName, mac: o.hostMac, ...(withMtu ? { mtu: o.mtu } : {}) },
      { name: o.ifName, mac: o.containerMac, ...(withMtu ? { mtu: o.mtu } : {}), sandbox: o.netns },
    ],
    ips: o.addresses.map((a) => {
      const g = gw(a.family);
      return { address: `${a.address}/${a.prefixLength}`, ...(g === undefined ? {} : { gateway: g.address }), interface: 1 };
    }),
    routes: families.flatMap((f) => {
      const g = gw(f);
      return g === undefined ? [] : [{ dst: defaultRouteDst(f), gw: g.address }];
    }),
  };
  if (o.dns !== undefined && Object.keys(o.dns).length > 0) result.dns = o.dns;
  return result;
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
