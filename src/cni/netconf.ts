/**
 * The network configuration the runtime hands the plugin on stdin (one plugin's entry of the
 * conflist, with `cniVersion` and `name` copied in, plus runtime keys). `parseNetConf` checks the
 * version first (code 1), refuses `ipam` (code 2), then gathers every other problem into one
 * code-7 error naming each field: keys weft does not know or cannot honour are refused, never
 * silently ignored (KNOWN_KEYS lists what is accepted).
 */
import { isIP, SocketAddress } from 'node:net';
import { isAbsolute } from 'node:path';
import { CniCode, CniError } from './errors.js';
import type { CniDns, CniRoute } from './result.js';
import { isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from './versions.js';
import { ipBytes } from '../platform/linux/rtnl.js';
import { DEFAULT_API_SOCKET, DEFAULT_STATE_DIR, releaseJournalDir } from '../api/paths.js';

export const DEFAULT_SOCKET = DEFAULT_API_SOCKET;
export const DEFAULT_JOURNAL_DIR = releaseJournalDir(DEFAULT_STATE_DIR);

/**
 * The top-level keys weft accepts (besides `cni.dev/...`, which runtimes add). Runtime keys
 * (cniVersions, args, runtimeConfig, capabilities, prevResult) are accepted and not used; the
 * bridge plugin's `ipMasq`, `isGateway` and `isDefaultGateway` only as `true` (what weft always
 * does). Anything else is refused with code 7 naming it.
 */
export const KNOWN_KEYS: readonly string[] = [
  'cniVersion',
  'cniVersions',
  'name',
  'type',
  'args',
  'runtimeConfig',
  'capabilities',
  'prevResult',
  'dns',
  'mtu',
  'socket',
  'journalDir',
  'routes',
  'defaultRoute',
  'ipMasq',
  'isGateway',
  'isDefaultGateway',
];

/** Keys of the reference bridge plugin that weft cannot honour, and why (for the error message). */
const BRIDGE_KEYS: Readonly<Record<string, string>> = {
  bridge: "the router owns the pods' bridge (its name comes from the router)",
  hairpinMode: 'hairpin is always on for pod ports',
  promiscMode: "the router configures its bridge itself",
  vlan: 'pods are untagged on the overlay',
  vlanTrunk: 'pods are untagged on the overlay',
  preserveDefaultVlan: 'pods are untagged on the overlay',
  forceAddress: "the bridge's addresses are the router's gateways",
  macspoofchk: 'MAC spoofing is always prevented by the router (nftables bridge weft-pods)',
  enabledad: 'IPv6 addresses are added without duplicate address detection (IPAM hands each out once)',
  ipMasqBackend: 'the router masquerades with nftables',
  disableContainerInterface: 'the container interface is always brought up',
  portIsolation: 'pods on a node reach each other through the bridge',
};

/** Network names and container ids: the spec's pattern. */
export const SPEC_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface GcAttachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** The daemon's API socket. */
  socket: string;
  /** Where DEL records releases the router could not take (the daemon replays them). */
  journalDir: string;
  /** Overrides the MTU the router reports. */
  mtu?: number;
  dns?: CniDns;
  /** Present when the runtime sent one (CHECK, DEL, chained ADD); parsed by the command that needs it. */
  prevResult?: unknown;
  /** Extra routes for the pod (`[{dst, gw?}]`, dst a network prefix); without gw, via the family's gateway. */
  routes?: CniRoute[];
  /**
   * The default route per family via the node's gateway: true always, false never, absent
   * (undefined) only when the pod's netns has no default route of that family yet (a second
   * attachment, as Multus adds, gets none).
   */
  defaultRoute?: boolean;
  /** GC: the attachments the runtime still has (`cni.dev/valid-attachments`; missing or null: none). */
  validAttachments: GcAttachment[];
}

/** JSON.parse with the spec's code 6 on empty or malformed input. */
export function decodeJson(stdin: string, what: string): unknown {
  if (stdin.trim() === '') throw new CniError(CniCode.DecodeFailure, `no ${what} on stdin`);
  try {
    return JSON.parse(stdin) as unknown;
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, `${what} on stdin is not valid JSON: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, field: string, problems: string[], check?: (s: string) => string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    problems.push(`${field} must be an array of strings`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((s, i) => {
    if (typeof s !== 'string' || s === '') problems.push(`${field}[${i}] must be a non-empty string`);
    else {
      const why = check?.(s);
      if (why !== undefined) problems.push(`${field}[${i}] ${why}`);
      else out.push(s);
    }
  });
  return out;
}

function parseDns(v: unknown, problems: string[]): CniDns | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) {
    problems.push('dns must be an object with nameservers, domain, search, options');
    return undefined;
  }
  const dns: CniDns = {};
  const ns = stringList(v.nameservers, 'dns.nameservers', problems, (s) => (isIP(s) === 0 ? `("${s}") is not an IP address` : undefined));
  if (ns !== undefined && ns.length > 0) dns.nameservers = ns;
  if (v.domain !== undefined) {
    if (typeof v.domain !== 'string') problems.push('dns.domain must be a string');
    else if (v.domain !== '') dns.domain = v.domain;
  }
  const search = stringList(v.search, 'dns.search', problems);
  if (search !== undefined && search.length > 0) dns.search = search;
  const options = stringList(v.options, 'dns.options', problems);
  if (options !== undefined && options.length > 0) dns.options = options;
  return dns;
}

function parseAttachments(raw: Record<string, unknown>, problems: string[]): GcAttachment[] {
  // Spec 1.1.0 names the key cni.dev/valid-attachments; libcni also sends the older cni.dev/attachments.
  // Missing or null: the runtime keeps no attachment (an empty list).
  const key = raw['cni.dev/valid-attachments'] !== undefined && raw['cni.dev/valid-attachments'] !== null ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const v = raw[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push(`${key} must be an array of {containerID, ifname}`);
    return [];
  }
  const out: GcAttachment[] = [];
  v.forEach((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') problems.push(`${key}[${i}] must be {"containerID": string, "ifname": string}`);
    else out.push({ containerID: a.containerID, ifname: a.ifname });
  });
  return out;
}

/** The canonical text of an address (IPv6 compressed, lower case), as the kernel and `ip` print it. */
export function canonicalAddress(address: string, family: 4 | 6): string {
  return new SocketAddress({ address, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

/** Why `dst` is not a network prefix, or the prefix in canonical form with its family. */
export function parseRouteDst(dst: string): { dst: string; family: 4 | 6 } | string {
  const i = dst.lastIndexOf('/');
  const address = i < 0 ? '' : dst.slice(0, i);
  const family = isIP(address);
  const lenText = dst.slice(i + 1);
  if (family === 0 || !/^\d{1,3}$/.test(lenText)) return `"${dst}" is not a CIDR prefix (ADDRESS/LENGTH)`;
  const len = Number(lenText);
  const max = family === 4 ? 32 : 128;
  if (len > max) return `"${dst}" has a prefix length above ${max}`;
  const canonical = canonicalAddress(address, family as 4 | 6);
  const bytes = ipBytes(canonical);
  for (let bit = len; bit < max; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return `"${dst}" has host bits set (the network is not ${address}/${len})`;
  }
  return { dst: `${canonical}/${len}`, family: family as 4 | 6 };
}

function parseRoutes(v: unknown, problems: string[]): CniRoute[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    problems.push('routes must be an array of {"dst": CIDR, "gw"?: address}');
    return undefined;
  }
  const out: CniRoute[] = [];
  v.forEach((r, n) => {
    if (!isObject(r)) {
      problems.push(`routes[${n}] must be an object {"dst": CIDR, "gw"?: address}`);
      return;
    }
    const extra = Object.keys(r).filter((k) => k !== 'dst' && k !== 'gw');
    if (extra.length > 0) problems.push(`routes[${n}] has ${extra.map((k) => `"${k}"`).join(', ')}, which weft does not support (only dst and gw)`);
    if (typeof r.dst !== 'string') {
      problems.push(`routes[${n}].dst must be a CIDR prefix string`);
      return;
    }
    const dst = parseRouteDst(r.dst);
    if (typeof dst === 'string') {
      problems.push(`routes[${n}].dst ${dst}`);
      return;
    }
    if (r.gw === undefined) {
      out.push({ dst: dst.dst });
      return;
    }
    if (typeof r.gw !== 'string' || isIP(r.gw) !== dst.family) {
      problems.push(`routes[${n}].gw ${JSON.stringify(r.gw)} must be an IPv${dst.family} address (the family of ${dst.dst})`);
      return;
    }
    out.push({ dst: dst.dst, gw: canonicalAddress(r.gw, dst.family) });
  });
  return out;
}

/** Every key weft refuses, each with why; `true`-only keys checked for their value. */
function refusedKeys(raw: Record<string, unknown>, problems: string[]): void {
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('cni.dev/') || k === 'ipam') continue;
    const bridge = BRIDGE_KEYS[k];
    if (bridge !== undefined) problems.push(`${k} (a bridge-plugin key) cannot be honoured: ${bridge}`);
    else if (!KNOWN_KEYS.includes(k)) unknown.push(k);
    else if (k === 'ipMasq' && v !== true) {
      problems.push(`ipMasq ${JSON.stringify(v)} cannot be honoured: the router always masquerades pod traffic leaving the cluster's ranges (pod-to-pod traffic never); use true or leave it out`);
    } else if ((k === 'isGateway' || k === 'isDefaultGateway') && v !== true) {
      problems.push(
        `${k} ${JSON.stringify(v)} cannot be honoured: the router's bridge always holds the pods' gateway; use true or leave it out${k === 'isDefaultGateway' ? ' (for no default route, set "defaultRoute": false)' : ''}`,
      );
    }
  }
  if (unknown.length > 0) {
    problems.push(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (weft accepts ${KNOWN_KEYS.join(', ')}, and keys starting with cni.dev/)`);
  }
}

/**
 * The conventions for asking a plugin for given addresses or a MAC (`args.cni.ips`/`mac`,
 * `runtimeConfig.ips`/`mac`): weft cannot honour them, so they are refused rather than ignored.
 */
function requestedIdentity(raw: Record<string, unknown>, problems: string[]): void {
  const args = isObject(raw.args) && isObject(raw.args.cni) ? raw.args.cni : undefined;
  const rc = isObject(raw.runtimeConfig) ? raw.runtimeConfig : undefined;
  for (const [where, o] of [['args.cni', args], ['runtimeConfig', rc]] as const) {
    if (o === undefined) continue;
    if (o.ips !== undefined) problems.push(`${where}.ips cannot be honoured: weft assigns pod addresses from its cluster IPAM`);
    if (o.mac !== undefined) problems.push(`${where}.mac cannot be honoured: weft gives each pod interface a random MAC`);
  }
}

/** Validates `raw` (already JSON-decoded); throws a CniError with code 1, 2 or 7. */
export function parseNetConf(raw: unknown): NetConf {
  if (!isObject(raw)) throw new CniError(CniCode.DecodeFailure, 'the network configuration on stdin must be a JSON object');
  const v = raw.cniVersion;
  if (v === undefined) {
    throw new CniError(CniCode.IncompatibleVersion, `cniVersion is missing from the network configuration (weft supports ${SUPPORTED_VERSIONS.join(', ')})`, {
      details: `supportedVersions: ${SUPPORTED_VERSIONS.join(',')}`,
    });
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI versions: the config has cniVersion ${JSON.stringify(v)}, weft supports ${SUPPORTED_VERSIONS.join(', ')}`, {
      details: `supportedVersions: ${SUPPORTED_VERSIONS.join(',')}`,
    });
  }
  if (raw.ipam !== undefined) {
    throw new CniError(CniCode.UnsupportedField, 'ipam is not supported: weft allocates pod addresses from its own IPAM; remove the ipam field');
  }
  const problems: string[] = [];
  refusedKeys(raw, problems);
  requestedIdentity(raw, problems);
  if (typeof raw.name !== 'string' || raw.name === '') problems.push('name is missing (a non-empty string)');
  else if (!SPEC_NAME.test(raw.name)) problems.push(`name "${raw.name}" must start with a letter or digit and hold only letters, digits, '_', '.' and '-'`);
  if (typeof raw.type !== 'string' || raw.type === '') problems.push('type is missing (a non-empty string, "weft")');
  const path = (key: 'socket' | 'journalDir', dflt: string): string => {
    const p = raw[key];
    if (p === undefined) return dflt;
    if (typeof p !== 'string' || !isAbsolute(p)) problems.push(`${key} must be an absolute path, not ${JSON.stringify(p)}`);
    return typeof p === 'string' ? p : dflt;
  };
  const socket = path('socket', DEFAULT_SOCKET);
  const journalDir = path('journalDir', DEFAULT_JOURNAL_DIR);
  let mtu: number | undefined;
  if (raw.mtu !== undefined) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < 576 || raw.mtu > 65535) problems.push(`mtu must be an integer in 576-65535, not ${JSON.stringify(raw.mtu)}`);
    else mtu = raw.mtu;
  }
  const dns = parseDns(raw.dns, problems);
  const routes = parseRoutes(raw.routes, problems);
  if (raw.defaultRoute !== undefined && typeof raw.defaultRoute !== 'boolean') {
    problems.push(`defaultRoute must be true (always add the default route), false (never) or absent (only when the pod has none of that family yet), not ${JSON.stringify(raw.defaultRoute)}`);
  }
  const validAttachments = parseAttachments(raw, problems);
  if (problems.length > 0) {
    throw new CniError(CniCode.InvalidNetworkConfig, `invalid network configuration: ${problems.join('; ')}`);
  }
  const conf: NetConf = { cniVersion: v, name: raw.name as string, type: raw.type as string, socket, journalDir, validAttachments };
  if (mtu !== undefined) conf.mtu = mtu;
  if (dns !== undefined && Object.keys(dns).length > 0) conf.dns = dns;
  if (raw.prevResult !== undefined) conf.prevResult = raw.prevResult;
  if (routes !== undefined && routes.length > 0) conf.routes = routes;
  if (typeof raw.defaultRoute === 'boolean') conf.defaultRoute = raw.defaultRoute;
  return conf;
}
