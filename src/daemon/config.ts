/**
 * Daemon settings. `fillDefaults` supplies every default; `validateConfig` checks the raw values
 * and gathers every problem into one ConfigError (the daemon refuses to start and prints them).
 */
import { ConfigError } from '../core/errors.js';
import { isLogLevel, type LogLevel } from '../core/logger.js';
import { parseCidr, parseEndpoint, type Endpoint } from '../core/net.js';
import { apiSocketProblem } from './api-server.js';

export const DEFAULT_PORT = 6784;

/** What the command line (or a config file) gives: strings and flags, unchecked. */
export interface RawConfig {
  name?: string;
  listen?: string;
  peers?: string[];
  secretFile?: string;
  plaintext?: boolean;
  bridge?: string;
  tap?: string;
  vnetHdr?: boolean;
  underlayMtu?: string;
  mtu?: string;
  apiSocket?: string;
  logLevel?: string;
  heartbeatMs?: string;
  spinUs?: string;
  aead?: string;
  stateDir?: string;
  advertise?: string[];
  rekeySeconds?: string;
  fastpath?: string;
  trustedSubnets?: string[];
  ipamRange?: string;
  ipamRange6?: string;
  ipamSeed?: string[];
  ipamInitPeers?: string;
  ipamQuarantineSeconds?: string;
  unknown?: string[];
}

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

export function fillDefaults(raw: RawConfig): Required<Omit<RawConfig, 'secretFile' | 'underlayMtu' | 'mtu' | 'name' | 'ipamRange6' | 'ipamInitPeers'>> & RawConfig {
  return {
    listen: `0.0.0.0:${DEFAULT_PORT}`,
    peers: [],
    plaintext: false,
    bridge: 'weft',
    tap: 'weft-tap',
    vnetHdr: true,
    apiSocket: '/run/weft/weft.sock',
    logLevel: 'info',
    heartbeatMs: '500',
    spinUs: '0',
    aead: 'openssl',
    stateDir: '/var/lib/weft',
    advertise: [],
    rekeySeconds: '120',
    fastpath: 'auto',
    trustedSubnets: [],
    ipamRange: '10.32.0.0/12',
    ipamSeed: [],
    ipamQuarantineSeconds: '300',
    unknown: [],
    ...stripUndefined(raw),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function intIn(problems: string[], field: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    problems.push(`${field}: "${text}" must be an integer from ${min} to ${max}`);
    return undefined;
  }
  return Number(text);
}

export function validateConfig(input: RawConfig): DaemonConfig {
  const raw = fillDefaults(input);
  const problems: string[] = [];
  for (const u of raw.unknown) problems.push(`unknown option or argument "${u}"`);
  if (raw.name === undefined || raw.name === '') problems.push('--name: required (a nickname shown beside the peer name, e.g. node-1)');
  else if (!PEER_NAME.test(raw.name)) problems.push(`--name: "${raw.name}" must be 1-63 characters of letters, digits, "_", "." or "-", starting with a letter or digit`);
  const listen = parseEndpoint(raw.listen, DEFAULT_PORT);
  if (typeof listen === 'string') problems.push(`--listen: ${listen}`);
  const peers: Endpoint[] = [];
  raw.peers.forEach((p, i) => {
    const e = parseEndpoint(p, DEFAULT_PORT);
    if (typeof e === 'string') problems.push(`--peer #${i + 1}: ${e}`);
    else if (typeof listen !== 'string' && listen.family === 4 && e.family === 6) problems.push(`--peer #${i + 1}: "${p}" is IPv6 but --listen is IPv4`);
    else peers.push(e);
  });
  if (!raw.plaintext && (raw.secretFile === undefined || raw.secretFile === '')) {
    problems.push('--secret-file: required unless --plaintext is given (routers authenticate each other with it)');
  }
  const advertise: Endpoint[] = [];
  raw.advertise.forEach((a, i) => {
    const e = parseEndpoint(a, typeof listen === 'string' ? DEFAULT_PORT : listen.port);
    if (typeof e === 'string') problems.push(`--advertise #${i + 1}: ${e}`);
    else if (e.address === '0.0.0.0' || e.address === '::') problems.push(`--advertise #${i + 1}: "${a}" must be a specific address`);
    else advertise.push(e);
  });
  if (raw.stateDir === '' || !raw.stateDir.startsWith('/')) problems.push(`--state-dir: "${raw.stateDir}" must be an absolute path`);
  const rekeySeconds = intIn(problems, '--rekey-seconds', raw.rekeySeconds, 2, 86_400);
  if (raw.fastpath !== 'auto' && raw.fastpath !== 'off') problems.push(`--fastpath: "${raw.fastpath}" must be auto or off`);
  const trustedSubnets: { address: string; prefix: number }[] = [];
  raw.trustedSubnets.flatMap((t) => t.split(',')).filter((t) => t !== '').forEach((t) => {
    const c = parseCidr(t.trim());
    if (typeof c === 'string' || c.family !== 4) problems.push(`--trusted-subnets: "${t}" is not an IPv4 CIDR like 198.18.0.0/15`);
    else trustedSubnets.push({ address: c.address, prefix: c.prefix });
  });
  if (!IFNAME.test(raw.bridge)) problems.push(`--bridge: "${raw.bridge}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  if (!IFNAME.test(raw.tap)) problems.push(`--tap: "${raw.tap}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  if (raw.bridge === raw.tap) problems.push('--bridge and --tap must differ');
  const underlayMtu = intIn(problems, '--underlay-mtu', raw.underlayMtu, 1280, 65535);
  const overlayMtu = intIn(problems, '--mtu', raw.mtu, 576, 65000);
  if (!isLogLevel(raw.logLevel)) problems.push(`--log-level: "${raw.logLevel}" must be one of trace, debug, info, warn, error, silent`);
  const heartbeatMs = intIn(problems, '--heartbeat-ms', raw.heartbeatMs, 100, 60_000);
  const spinUs = intIn(problems, '--spin-us', raw.spinUs, 0, 1000);
  if (raw.aead !== 'openssl' && raw.aead !== 'libsodium') problems.push(`--aead: "${raw.aead}" must be openssl or libsodium`);
  const ipam = validateIpam(problems, raw);
  const socketProblem = apiSocketProblem(raw.apiSocket);
  if (socketProblem !== undefined) problems.push(`--api-socket: ${socketProblem}`);
  if (problems.length > 0 || typeof listen === 'string') throw new ConfigError(problems, 'weft launch options');
  if (advertise.length === 0 && typeof listen !== 'string' && listen.address !== '0.0.0.0' && listen.address !== '::') advertise.push(listen);
  return {
    name: raw.name!,
    stateDir: raw.stateDir,
    advertise,
    rekeyMs: rekeySeconds! * 1000,
    fastpath: raw.fastpath as 'auto' | 'off',
    trustedSubnets,
    listen,
    peers,
    secretFile: raw.secretFile,
    plaintext: raw.plaintext,
    bridge: raw.bridge,
    tap: raw.tap,
    vnetHdr: raw.vnetHdr,
    underlayMtu,
    overlayMtu,
    apiSocket: raw.apiSocket,
    logLevel: raw.logLevel as LogLevel,
    heartbeatMs: heartbeatMs!,
    spinUs: spinUs!,
    aead: raw.aead as 'openssl' | 'libsodium',
    ipam,
  };
}

const PEER_ID = /^[0-9a-f]{16}$/;

function validateIpam(problems: string[], raw: ReturnType<typeof fillDefaults>): IpamConfig | undefined {
  if (raw.ipamRange === 'none') {
    if (raw.ipamRange6 !== undefined) problems.push('--ipam-range6: needs --ipam-range (IPv6-only IPAM is not supported)');
    return undefined;
  }
  const ranges: string[] = [];
  const v4 = parseCidr(raw.ipamRange);
  if (typeof v4 === 'string' || v4.family !== 4 || v4.prefix > 30) problems.push(`--ipam-range: "${raw.ipamRange}" must be an IPv4 CIDR of at least 4 addresses, like 10.32.0.0/12 (or "none")`);
  else ranges.push(`${v4.address}/${v4.prefix}`);
  if (raw.ipamRange6 !== undefined) {
    const v6 = parseCidr(raw.ipamRange6);
    if (typeof v6 === 'string' || v6.family !== 6 || v6.prefix > 124) problems.push(`--ipam-range6: "${raw.ipamRange6}" must be an IPv6 CIDR like fd00:32::/64`);
    else ranges.push(`${v6.address}/${v6.prefix}`);
  }
  const seeds = [...new Set(raw.ipamSeed.flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== ''))];
  for (const s of seeds) if (!PEER_ID.test(s)) problems.push(`--ipam-seed: "${s}" is not a peer name (16 hex digits, as "weft identity" prints it)`);
  const initPeers = intIn(problems, '--ipam-init-peers', raw.ipamInitPeers, 1, 10_000);
  if (seeds.length > 0 && raw.ipamInitPeers !== undefined) problems.push('--ipam-seed and --ipam-init-peers: give one or the other');
  const quarantine = intIn(problems, '--ipam-quarantine-seconds', raw.ipamQuarantineSeconds, 0, 7 * 86_400);
  const init = seeds.length > 0 ? { seeds } : { initPeers: initPeers ?? raw.peers.length + 1 };
  return { ranges, init, quarantineMs: (quarantine ?? 0) * 1000 };
}
