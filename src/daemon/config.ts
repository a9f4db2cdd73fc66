/**
 * Daemon settings. `fillDefaults` supplies every default; `validateConfig` checks the raw values
 * and gathers every problem into one ConfigError (the daemon refuses to start and prints them).
 * The options themselves (flags, defaults, bounds) are the rows of options.ts.
 */
import { ConfigError } from '../core/errors.js';
import type { LogLevel } from '../core/logger.js';
import type { Endpoint } from '../core/net.js';
import { DEFAULT_PORT, fillDefaults, OptionChecker, optionRow, type FilledConfig, type OptionKey, type RawConfig } from './options.js';

/** Cluster-wide IPAM (gossip/ipam): the address ranges and how the first ownership is agreed. */
export interface IpamConfig {
  /** One IPv4 CIDR and optionally one IPv6 CIDR, in that order. */
  ranges: string[];
  /** Seeds: these peers split the space among themselves. initPeers: wait until this many peers see each other. */
  init: { seeds: string[] } | { initPeers: number };
  quarantineMs: number;
}

export interface DaemonConfig {
  /** Nickname shown beside the peer name (the peer name itself comes from the key pair). */
  name: string;
  /** Where the identity key lives. */
  stateDir: string;
  /** UDP/TCP endpoints announced to other peers (default: the listen address when it is specific). */
  advertise: Endpoint[];
  rekeyMs: number;
  /** Kernel VXLAN fast path per peer with fallback to the sleeve. */
  fastpath: 'auto' | 'off';
  /** Peers in these subnets may use the unencrypted kernel path when the cluster encrypts. */
  trustedSubnets: { address: string; prefix: number }[];
  listen: Endpoint;
  peers: Endpoint[];
  secretFile: string | undefined;
  plaintext: boolean;
  bridge: string;
  tap: string;
  vnetHdr: boolean;
  /** undefined: taken from the interface that holds the listen address or routes to the first peer */
  underlayMtu: number | undefined;
  /** undefined: derived from the underlay MTU */
  overlayMtu: number | undefined;
  apiSocket: string;
  logLevel: LogLevel;
  heartbeatMs: number;
  spinUs: number;
  /** Which ChaCha20-Poly1305 implementation seals the sleeve (same algorithm and wire format). */
  aead: 'openssl' | 'libsodium';
  /** undefined: IPAM off (--ipam-range none). */
  ipam: IpamConfig | undefined;
}

/** Checks every option (rows of options.ts, then the rules between options) and gathers every problem. */
export function validateConfig(input: RawConfig): DaemonConfig {
  const raw = fillDefaults(input);
  const check = new OptionChecker(raw);
  const problems = check.problems;
  for (const u of raw.unknown) problems.push(`unknown option or argument "${u}"`);
  const name = check.one('name');
  const listen = check.one('listen');
  const peers = check.list('peers', {
    extra: (e, text) => (listen !== undefined && listen.family === 4 && e.family === 6 ? `"${text}" is IPv6 but ${optionRow('listen').flag} is IPv4` : undefined),
  });
  if (!raw.plaintext && (raw.secretFile === undefined || raw.secretFile === '')) {
    problems.push(`${optionRow('secretFile').flag}: required unless ${optionRow('plaintext').flag} is given (routers authenticate each other with it)`);
  }
  const advertise = check.list('advertise', {
    defaultPort: listen?.port ?? DEFAULT_PORT,
    extra: (e, text) => (e.address === '0.0.0.0' || e.address === '::' ? `"${text}" must be a specific address` : undefined),
  });
  const stateDir = check.one('stateDir');
  const rekeySeconds = check.one('rekeySeconds');
  const fastpath = check.one('fastpath') as DaemonConfig['fastpath'] | undefined;
  const trustedSubnets = check.list('trustedSubnets').map((c) => ({ address: c!.address, prefix: c!.prefix }));
  const bridge = check.one('bridge');
  const tap = check.one('tap');
  if (raw.bridge === raw.tap) problems.push(`${optionRow('bridge').flag} and ${optionRow('tap').flag} must differ`);
  const underlayMtu = check.one('underlayMtu');
  const overlayMtu = check.one('mtu');
  const logLevel = check.one('logLevel') as LogLevel | undefined;
  const heartbeatMs = check.one('heartbeatMs');
  const spinUs = check.one('spinUs');
  const aead = check.one('aead') as DaemonConfig['aead'] | undefined;
  const ipam = validateIpam(check, raw);
  const apiSocket = check.one('apiSocket');
  if (problems.length > 0) throw new ConfigError(problems, 'weft launch options');
  // With no problem, every option with a default has its value.
  const listening = listen!;
  if (advertise.length === 0 && listening.address !== '0.0.0.0' && listening.address !== '::') advertise.push(listening);
  return {
    name: name!,
    stateDir: stateDir!,
    advertise,
    rekeyMs: rekeySeconds! * 1000,
    fastpath: fastpath!,
    trustedSubnets,
    listen: listening,
    peers,
    secretFile: raw.secretFile,
    plaintext: raw.plaintext,
    bridge: bridge!,
    tap: tap!,
    vnetHdr: raw.vnetHdr,
    underlayMtu,
    overlayMtu,
    apiSocket: apiSocket!,
    logLevel: logLevel!,
    heartbeatMs: heartbeatMs!,
    spinUs: spinUs!,
    aead: aead!,
    ipam,
  };
}

function validateIpam(check: OptionChecker, raw: FilledConfig): IpamConfig | undefined {
  const problems = check.problems;
  const flag = (key: OptionKey): string => optionRow(key).flag;
  if (raw.ipamRange === 'none') {
    if (raw.ipamRange6 !== undefined) problems.push(`${flag('ipamRange6')}: needs ${flag('ipamRange')} (IPv6-only IPAM is not supported)`);
    return undefined;
  }
  const ranges: string[] = [];
  for (const range of [check.one('ipamRange'), check.one('ipamRange6')]) if (range !== undefined) ranges.push(`${range.address}/${range.prefix}`);
  const seeds = [...new Set(check.list('ipamSeed'))];
  const initPeers = check.one('ipamInitPeers');
  if (seeds.length > 0 && raw.ipamInitPeers !== undefined) problems.push(`${flag('ipamSeed')} and ${flag('ipamInitPeers')}: give one or the other`);
  const quarantine = check.one('ipamQuarantineSeconds');
  const init = seeds.length > 0 ? { seeds } : { initPeers: initPeers ?? raw.peers.length + 1 };
  return { ranges, init, quarantineMs: (quarantine ?? 0) * 1000 };
}
