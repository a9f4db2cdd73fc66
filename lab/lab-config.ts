/** Checks of lab and pod settings (every problem at once), and the choice of a free prefix. */
import { randomBytes } from 'node:crypto';
import { parseMac } from '../src/core/mac.js';
import { parseCidr } from '../src/core/net.js';
import { LabError } from './errors.js';
import { listNamespaces, reservePrefix } from './registry.js';

export interface LabInit {
  /** Default: 'wt' and 4 random hex digits; at most 6 characters of a-z and 0-9. */
  prefix?: string;
  /** 1 to 20. */
  nodes: number;
  /** Default 1500. */
  underlayMtu?: number;
  /**
   * The nodes' underlay addresses on eth0: 'v4' (default) 198.18.0.<i>/24; 'v6' 2001:2::<i>/64
   * only (an IPv6-only underlay); 'dual' both.
   */
  underlay?: UnderlayFamily;
  /** The pod bridge in each node namespace; default 'weft'. */
  bridgeName?: string;
  /** net.bridge.bridge-nf-call-ip(6)tables in the node namespaces; default false (set either way). */
  brNetfilter?: boolean;
  log?: (line: string) => void;
}

export type UnderlayFamily = 'v4' | 'v6' | 'dual';

export interface PodInit {
  /** With prefix length, e.g. '10.40.1.2/16'. */
  ipv4?: string;
  /** With prefix length, e.g. 'fd00:40::1:2/64'. */
  ipv6?: string;
  /** Both veth ends; default 1500. */
  mtu?: number;
  mac?: string;
  /** Default '<node name>p<j>', e.g. 'n1p2'. */
  name?: string;
}

const PREFIX = /^[a-z0-9]{1,6}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
export const MAX_NODES = 20;

export function validMtu(mtu: number): boolean {
  return Number.isInteger(mtu) && mtu >= 68 && mtu <= 65535;
}

export function validateInit(init: LabInit): string[] {
  const problems: string[] = [];
  if (init.prefix !== undefined && !PREFIX.test(init.prefix)) problems.push(`prefix "${init.prefix}" must be 1-6 characters of a-z and 0-9`);
  if (!Number.isInteger(init.nodes) || init.nodes < 1 || init.nodes > MAX_NODES) problems.push(`nodes must be an integer in 1-${MAX_NODES}, not ${init.nodes}`);
  if (init.underlayMtu !== undefined && !validMtu(init.underlayMtu)) problems.push(`underlayMtu must be an integer in 68-65535, not ${init.underlayMtu}`);
  if (init.underlay !== undefined && !['v4', 'v6', 'dual'].includes(init.underlay)) problems.push(`underlay must be v4, v6 or dual, not "${String(init.underlay)}"`);
  const br = init.bridgeName;
  if (br !== undefined && (!IFNAME.test(br) || ['eth0', 'lo'].includes(br) || /^vp\d+$/.test(br))) {
    problems.push(`bridgeName "${br}" must be 1-15 characters of A-Z, a-z, 0-9, _ . - and not clash with eth0, lo or vp<j>`);
  }
  return problems;
}

export function podInitProblems(init: PodInit): string[] {
  const problems: string[] = [];
  const v4 = init.ipv4 === undefined ? undefined : parseCidr(init.ipv4);
  const v6 = init.ipv6 === undefined ? undefined : parseCidr(init.ipv6);
  if (typeof v4 === 'string') problems.push(`ipv4: ${v4}`);
  else if (v4 !== undefined && v4.family !== 4) problems.push(`ipv4 "${init.ipv4}" is not IPv4`);
  if (typeof v6 === 'string') problems.push(`ipv6: ${v6}`);
  else if (v6 !== undefined && v6.family !== 6) problems.push(`ipv6 "${init.ipv6}" is not IPv6`);
  if (init.mtu !== undefined && !validMtu(init.mtu)) problems.push(`mtu must be an integer in 68-65535, not ${init.mtu}`);
  if (init.mac !== undefined) {
    const mac = parseMac(init.mac);
    if (mac === undefined) problems.push(`mac "${init.mac}" is not a MAC address`);
    else if (Math.floor(mac / 2 ** 40) % 2 === 1) problems.push(`mac "${init.mac}" is a group address`);
  }
  return problems;
}

/** Reserves the requested prefix, or a fresh random one; refuses a prefix whose namespaces already exist. */
export async function claimPrefix(requested: string | undefined): Promise<string> {
  const existing = await listNamespaces();
  const inUse = (p: string): string[] => existing.filter((ns) => ns.startsWith(`${p}-`));
  for (let attempt = 0; attempt < 20; attempt++) {
    const prefix = requested ?? `wt${randomBytes(2).toString('hex')}`;
    const leftovers = inUse(prefix);
    if (leftovers.length === 0 && reservePrefix(prefix)) return prefix;
    if (requested !== undefined) {
      const why = leftovers.length > 0 ? `namespaces ${leftovers.join(', ')} exist` : 'another live process holds it';
      throw new LabError(`lab prefix "${prefix}" is in use: ${why} (Lab.cleanupStale(/^${prefix}-/) removes a dead lab's namespaces)`);
    }
  }
  throw new LabError('could not find a free random lab prefix after 20 attempts');
}
