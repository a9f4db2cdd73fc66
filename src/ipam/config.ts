/**
 * IPAM settings: `ipamDefaults` fills defaults, `ipamProblems` gathers every problem (each naming
 * its field), and request checks for the local API.
 */
import { isPeerName } from '../core/ids.js';
import type { PeerName } from '../mesh/contracts.js';
import { IpamBadRequestError } from './errors.js';
import { parseSpace, type AddressSpace } from './space.js';
import { MAX_INIT_PEERS } from './wire.js';

/**
 * How the ring is first formed: `seeds`, these peers split the range; `initPeers`, the first N
 * peers that see each other do (bootstrap.ts); `join`, never here: the ring comes from a member
 * that has it (the default of a router started with --peer; one started without forms it).
 */
export type IpamBootstrap = { seeds: PeerName[] } | { initPeers: number } | { join: true };

export interface IpamInit {
  self: PeerName;
  /** One IPv4 and/or one IPv6 CIDR. */
  ranges: string[];
  init: IpamBootstrap;
  clusterId: string;
  /** How long a released address rests before reuse. Default 5 min. */
  quarantineMs?: number;
  /** How long reclaimed space rests before the heir allocates from it. Default: quarantineMs. */
  reclaimHoldMs?: number;
  /**
   * How long a forgotten peer must have been unreachable from its heir before the heir takes its
   * space over (a peer that is back sooner cancels the tombstone). Default 10 s.
   */
  reclaimAfterMs?: number;
  /** How long an allocation waits for a donation before failing. Default 3 s. */
  askTimeoutMs?: number;
  /** Ask for space in the background when fewer free addresses than this remain. Default 8. */
  lowWater?: number;
  /** Period of the one housekeeping timer (holds, ask timeouts, deadlines). Default 500 ms. */
  tickMs?: number;
}

export type IpamSettings = Required<IpamInit>;

export const IPAM_DEFAULTS = Object.freeze({ quarantineMs: 5 * 60_000, reclaimAfterMs: 10_000, askTimeoutMs: 3000, lowWater: 8, tickMs: 500 });

export function ipamDefaults(init: IpamInit): IpamSettings {
  const quarantineMs = init.quarantineMs ?? IPAM_DEFAULTS.quarantineMs;
  return {
    ...init,
    quarantineMs,
    reclaimHoldMs: init.reclaimHoldMs ?? quarantineMs,
    reclaimAfterMs: init.reclaimAfterMs ?? IPAM_DEFAULTS.reclaimAfterMs,
    askTimeoutMs: init.askTimeoutMs ?? IPAM_DEFAULTS.askTimeoutMs,
    lowWater: init.lowWater ?? IPAM_DEFAULTS.lowWater,
    tickMs: init.tickMs ?? IPAM_DEFAULTS.tickMs,
  };
}

/** Every problem with the settings, each naming its field; the parsed spaces when there is none. */
export function ipamProblems(s: IpamSettings): { problems: string[]; spaces: AddressSpace[] } {
  const problems: string[] = [];
  if (!isPeerName(s.self)) problems.push(`self ${JSON.stringify(s.self)} is not a peer name`);
  if (typeof s.clusterId !== 'string' || s.clusterId.length > 64) problems.push('clusterId must be a string of at most 64 characters');
  const spaces: AddressSpace[] = [];
  if (!Array.isArray(s.ranges) || s.ranges.length < 1 || s.ranges.length > 2) problems.push('ranges must hold one IPv4 and/or one IPv6 CIDR');
  else
    for (const r of s.ranges) {
      const sp = parseSpace(r);
      if (typeof sp === 'string') problems.push(`ranges: ${sp}`);
      else if (spaces.some((o) => o.family === sp.family)) problems.push(`ranges: more than one IPv${sp.family} range (${r})`);
      else spaces.push(sp);
    }
  if ('seeds' in s.init) {
    const seeds = s.init.seeds;
    if (!Array.isArray(seeds) || seeds.length === 0) problems.push('init.seeds must list at least one peer');
    else {
      for (const p of seeds) if (!isPeerName(p)) problems.push(`init.seeds: ${JSON.stringify(p)} is not a peer name`);
      if (new Set(seeds).size !== seeds.length) problems.push('init.seeds lists a peer twice');
    }
  } else if ('join' in s.init) {
    if (s.init.join !== true) problems.push('init.join must be true');
  } else if (!('initPeers' in s.init) || !Number.isInteger(s.init.initPeers) || s.init.initPeers < 1 || s.init.initPeers > MAX_INIT_PEERS) {
    problems.push(`init.initPeers must be an integer in 1..${MAX_INIT_PEERS} (or give init.seeds)`);
  }
  for (const k of ['quarantineMs', 'reclaimHoldMs', 'reclaimAfterMs', 'askTimeoutMs', 'tickMs'] as const) {
    if (!Number.isFinite(s[k]) || s[k] < 0) problems.push(`${k} must be a non-negative number of milliseconds`);
  }
  if (!(s.tickMs > 0)) problems.push('tickMs must be positive');
  if (!Number.isInteger(s.lowWater) || s.lowWater < 0) problems.push('lowWater must be a non-negative integer');
  return { problems, spaces };
}

const CONTAINER_ID = /^[A-Za-z0-9_.:-]{1,255}$/;

export function checkContainerId(v: unknown): string {
  if (typeof v !== 'string' || !CONTAINER_ID.test(v)) throw new IpamBadRequestError('containerId', 'must be 1-255 characters of A-Z a-z 0-9 _ . : -');
  return v;
}

export function checkIfName(v: unknown): string {
  if (typeof v !== 'string' || v.length < 1 || v.length > 15 || /[\s/]/.test(v)) throw new IpamBadRequestError('ifName', 'must be 1-15 characters without "/" or whitespace');
  return v;
}

export function allocationKey(containerId: string, ifName: string): string {
  return `${containerId}\0${ifName}`;
}
