/**
 * The network configuration the runtime hands the plugin on stdin (one plugin's entry of the
 * conflist, with `cniVersion` and `name` copied in, plus runtime keys). `parseNetConf` checks the
 * version first (code 1), refuses fields weft cannot honour (code 2), then gathers every other
 * problem into one code-7 error naming each field.
 */
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { CniCode, CniError } from './errors.js';
import type { CniDns } from './result.js';
import { isSupportedVersion, SUPPORTED_VERSIONS, type CniVersion } from './versions.js';
import { DEFAULT_API_SOCKET, DEFAULT_STATE_DIR, releaseJournalDir } from '../api/paths.js';

export const DEFAULT_SOCKET = DEFAULT_API_SOCKET;
export const DEFAULT_JOURNAL_DIR = releaseJournalDir(DEFAULT_STATE_DIR);

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
  /** GC: the attachments the runtime still has (`cni.dev/valid-attachments`). */
  validAttachments?: GcAttachment[];
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

function parseAttachments(raw: Record<string, unknown>, problems: string[]): GcAttachment[] | undefined {
  // Spec 1.1.0 names the key cni.dev/valid-attachments; libcni also sends the older cni.dev/attachments.
  const key = raw['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const v = raw[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    problems.push(`${key} must be an array of {containerID, ifname}`);
    return undefined;
  }
  const out: GcAttachment[] = [];
  v.forEach((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') problems.push(`${key}[${i}] must be {"containerID": string, "ifname": string}`);
    else out.push({ containerID: a.containerID, ifname: a.ifname });
  });
  return out;
}

/** Validates `raw` (already JSON-decoded); throws a CniError with code 1, 2 or 7. */
export function parseNetConf(raw: unknown): NetConf {
  if (!isObject(raw)) throw new CniError(CniCode.DecodeFailure, 'the network configuration on stdin must be a JSON object');
  const v = raw.cniVersion;
  if (v === undefined) throw new CniError(CniCode.InvalidNetworkConfig, 'cniVersion is missing from the network configuration');
  if (!isSupportedVersion(v)) {
    throw new CniError(CniCode.IncompatibleVersion, `incompatible CNI versions: the config has cniVersion ${JSON.stringify(v)}, weft supports ${SUPPORTED_VERSIONS.join(', ')}`, {
      details: `supportedVersions: ${SUPPORTED_VERSIONS.join(',')}`,
    });
  }
  if (raw.ipam !== undefined) {
    throw new CniError(CniCode.UnsupportedField, 'ipam is not supported: weft allocates pod addresses from its own IPAM; remove the ipam field');
  }
  const problems: string[] = [];
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
  const validAttachments = parseAttachments(raw, problems);
  if (problems.length > 0) {
    throw new CniError(CniCode.InvalidNetworkConfig, `invalid network configuration: ${problems.join('; ')}`);
  }
  const conf: NetConf = { cniVersion: v, name: raw.name as string, type: raw.type as string, socket, journalDir };
  if (mtu !== undefined) conf.mtu = mtu;
  if (dns !== undefined && Object.keys(dns).length > 0) conf.dns = dns;
  if (raw.prevResult !== undefined) conf.prevResult = raw.prevResult;
  if (validAttachments !== undefined) conf.validAttachments = validAttachments;
  return conf;
}
