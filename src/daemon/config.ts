/**
 * Daemon settings. `fillDefaults` supplies every default; `validateConfig` checks the raw values
 * and gathers every problem into one ConfigError (the daemon refuses to start and prints them).
 * The options themselves (flags, defaults, bounds) are the rows of options.ts.
 */
import { ConfigError } from '../core/errors.js';
import type { LogLevel } from '../core/logger.js';
import type { HostPort } from '../core/host-port.js';
import type { Endpoint } from '../core/net.js';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { checkValue, DEFAULT_METRICS_PORT, DEFAULT_PORT, fillDefaults, OptionChecker, optionRow, type FilledConfig, type OptionKey, type RawConfig } from './options.js';
import { launchFlags, unknownOptionProblems } from './unknown-options.js';

/** Cluster-wide IPAM (gossip/ipam): the address ranges and how the first ownership is agreed. */
export interface IpamConfig {
  /** One IPv4 CIDR and optionally one IPv6 CIDR, in that order. */
  ranges: string[];
  /**
   * Seeds: these peers split the space among themselves. initPeers: wait until this many peers see
   * each other. join: take the ring from a member (default with --peer; without, initPeers 1).
   */
  init: { seeds: string[] } | { initPeers: number } | { join: true };
  quarantineMs: number;
  /**
   * Who decides which router owns which part of the ranges: the gossiped ring (standalone), or
   * the Kubernetes API server (one Lease per block, optimistic concurrency; Kubernetes mode).
   */
  ownership: 'ring' | 'kubernetes';
}

/** Kubernetes mode (--kubernetes, or a pod with a service account). */
export interface KubernetesConfig {
  /** undefined: the pod's service account, else $KUBECONFIG (src/k8s decides). */
  kubeconfig: string | undefined;
  /** This router's Node object. */
  nodeName: string;
  /** The namespace of weft's Leases. */
  namespace: string;
  /** Whether the mode was turned on by finding a service account rather than by --kubernetes. */
  detected: boolean;
}

/** What the configuration reads of the process's surroundings (tests give their own). */
export interface ConfigEnvironment {
  env: Readonly<Record<string, string | undefined>>;
  /** The contents of a file, or undefined when it cannot be read. */
  readFile(path: string): string | undefined;
  hostname(): string;
}

/** Where a pod's service account is mounted. */
/** --secret-file-accept at most this often (each further secret is one more try per inbound handshake). */
export const MAX_ACCEPTED_SECRETS = 4;
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface DaemonConfig {
  /** Nickname shown beside the peer name (the peer name itself comes from the key pair). */
  name: string;
  /** Where the identity key lives. */
  stateDir: string;
  /** UDP/TCP endpoints announced to other peers (default: the listen address when it is specific). */
  advertise: Endpoint[];
  rekeyMs: number;
  /** --mesh-protocol-max: the highest mesh protocol version offered. */
  meshProtocolMax: number;
  /** Kernel VXLAN fast path per peer with fallback to the sleeve. */
  fastpath: 'auto' | 'off';
  /** Peers in these subnets may use the unencrypted kernel path when the cluster encrypts. */
  trustedSubnets: { address: string; prefix: number }[];
  listen: Endpoint;
  /** --peer: addresses and host names (family 0), names resolved by the mesh at each attempt. */
  peers: HostPort[];
  /** --stun: STUN servers, addresses or host names (resolved by the STUN client). */
  stun: HostPort[];
  secretFile: string | undefined;
  /** --secret-file-accept: further secrets accepted while the cluster secret is rotated. */
  secretFileAccept: string[];
  /** --revocation-pubkey: 64 hex digits or a file holding them; undefined: no blocklist entry is accepted. */
  revocationPubkey: string | undefined;
  plaintext: boolean;
  bridge: string;
  tap: string;
  vnetHdr: boolean;
  tapUring: boolean;
  /** --no-udp-coalesce turns it off: small UDP frames to the TAP as USO super-frames (vnet mode). */
  udpCoalesce: boolean;
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
  /** Threads for the sleeve's seal and open batches (--crypto-threads); undefined: detected at start. */
  cryptoThreads: number | undefined;
  /** undefined: IPAM off (--ipam-range none). */
  ipam: IpamConfig | undefined;
  /** undefined: standalone (peers from --peer and gossip, IPAM through the ring). */
  kubernetes: KubernetesConfig | undefined;
  /** undefined: no metrics or health endpoint. */
  metrics: Endpoint | undefined;
  /** The router sets up the bridge for Services (--service-bridge on, or auto in Kubernetes mode). */
  serviceBridge: boolean;
  /** NetworkPolicy enforcement; undefined: off (the table of an earlier run is deleted at start). */
  networkPolicy: NetworkPolicyConfig | undefined;
}

/** Where NetworkPolicy objects come from: the API server (Kubernetes mode) or a YAML file (standalone). */
export type NetworkPolicyConfig = { source: 'kubernetes' } | { source: 'file'; file: string };

function processEnvironment(): ConfigEnvironment {
  return {
    env: process.env,
    readFile: (path) => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    },
    hostname: () => hostname(),
  };
}

/** Checks every option (rows of options.ts, then the rules between options) and gathers every problem. */
export function validateConfig(input: RawConfig, surroundings: ConfigEnvironment = processEnvironment()): DaemonConfig {
  const raw = fillDefaults(input);
  const check = new OptionChecker(raw);
  const problems = check.problems;
  const kubernetes = validateKubernetes(check, raw, surroundings);
  problems.push(...unknownOptionProblems(raw.unknown, launchFlags()));
  const name = check.one('name');
  const listen = check.one('listen');
  const peers = check.list('peers', {
    extra: (e, text) => (listen !== undefined && listen.family === 4 && e.family === 6 ? `"${text}" is IPv6 but ${optionRow('listen').flag} is IPv4` : undefined),
  });
  if (!raw.plaintext && (raw.secretFile === undefined || raw.secretFile === '')) {
    problems.push(`${optionRow('secretFile').flag}: required unless ${optionRow('plaintext').flag} is given (routers authenticate each other with it)`);
  }
  const secretFileAccept = check.list('secretFileAccept');
  if (secretFileAccept.length > MAX_ACCEPTED_SECRETS) problems.push(`${optionRow('secretFileAccept').flag}: at most ${MAX_ACCEPTED_SECRETS} (each is tried on every inbound handshake)`);
  if (secretFileAccept.length > 0 && (raw.secretFile === undefined || raw.secretFile === '')) problems.push(`${optionRow('secretFileAccept').flag}: needs ${optionRow('secretFile').flag} (the secret this router dials with)`);
  const revocationPubkey = raw.revocationPubkey === undefined ? undefined : check.one('revocationPubkey');
  const stun = check.list('stun', {
    extra: (e, text) => (listen !== undefined && listen.family === 4 && e.family === 6 ? `"${text}" is IPv6 but ${optionRow('listen').flag} is IPv4` : undefined),
  });
  const advertise = check.list('advertise', {
    defaultPort: listen?.port ?? DEFAULT_PORT,
    extra: (e, text) => (e.address === '0.0.0.0' || e.address === '::' ? `"${text}" must be a specific address` : undefined),
  });
  const stateDir = check.one('stateDir');
  const rekeySeconds = check.one('rekeySeconds');
  const meshProtocolMax = check.one('meshProtocolMax');
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
  const cryptoThreads = check.one('cryptoThreads');
  const ipam = validateIpam(check, raw, kubernetes !== undefined);
  const metrics = check.one('metricsAddr', DEFAULT_METRICS_PORT);
  const serviceBridge = check.one('serviceBridge');
  const networkPolicy = validateNetworkPolicy(check, raw, kubernetes !== undefined);
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
    meshProtocolMax: meshProtocolMax!,
    fastpath: fastpath!,
    trustedSubnets,
    listen: listening,
    peers,
    stun,
    secretFile: raw.secretFile,
    secretFileAccept,
    revocationPubkey,
    plaintext: raw.plaintext,
    bridge: bridge!,
    tap: tap!,
    vnetHdr: raw.vnetHdr,
    tapUring: raw.tapUring,
    udpCoalesce: raw.udpCoalesce,
    underlayMtu,
    overlayMtu,
    apiSocket: apiSocket!,
    logLevel: logLevel!,
    heartbeatMs: heartbeatMs!,
    spinUs: spinUs!,
    aead: aead!,
    cryptoThreads,
    ipam,
    kubernetes,
    metrics,
    serviceBridge: serviceBridge === 'on' || (serviceBridge === 'auto' && kubernetes !== undefined),
    networkPolicy,
  };
}

/** --network-policy and --policy-file: auto is on in Kubernetes mode or with a file; on needs one of them. */
function validateNetworkPolicy(check: OptionChecker, raw: FilledConfig, kubernetes: boolean): NetworkPolicyConfig | undefined {
  const flag = (key: OptionKey): string => optionRow(key).flag;
  const mode = check.one('networkPolicy');
  const file = raw.policyFile;
  if (file === '') check.problems.push(`${flag('policyFile')}: must not be empty`);
  const given = file !== undefined && file !== '';
  if (mode === 'off') {
    if (given) check.problems.push(`${flag('policyFile')}: not used with ${flag('networkPolicy')} off`);
    return undefined;
  }
  if (kubernetes && given) {
    check.problems.push(`${flag('policyFile')}: standalone only (in Kubernetes mode the policies come from the API server)`);
    return undefined;
  }
  if (kubernetes) return { source: 'kubernetes' };
  if (given) return { source: 'file', file };
  if (mode === 'on') check.problems.push(`${flag('networkPolicy')}: on needs a source of policies: ${flag('policyFile')} (standalone) or Kubernetes mode`);
  return undefined;
}

/**
 * Kubernetes mode: --kubernetes, or a pod with a service account (KUBERNETES_SERVICE_HOST set and
 * its token readable). Its options without it are a mistake, said as such.
 */
function validateKubernetes(check: OptionChecker, raw: FilledConfig, s: ConfigEnvironment): KubernetesConfig | undefined {
  const flag = (key: OptionKey): string => optionRow(key).flag;
  const inPod = (s.env['KUBERNETES_SERVICE_HOST'] ?? '') !== '' && s.readFile(`${SERVICE_ACCOUNT_DIR}/token`) !== undefined;
  if (!raw.kubernetes && !inPod) {
    for (const key of ['kubeconfig', 'nodeName', 'kubeNamespace'] as const) {
      if (raw[key] !== undefined) check.problems.push(`${flag(key)}: only in Kubernetes mode (give ${flag('kubernetes')})`);
    }
    return undefined;
  }
  const given = check.one('nodeName');
  const fromEnv = s.env['NODE_NAME'];
  const nodeName = raw.nodeName !== undefined ? given : fromEnv !== undefined && fromEnv !== '' ? fromEnv : s.hostname().toLowerCase();
  if (raw.nodeName === undefined && nodeName !== undefined && 'problem' in checkValue(optionRow('nodeName').check, nodeName)) {
    check.problems.push(`${flag('nodeName')}: "${nodeName}" (from ${fromEnv !== undefined && fromEnv !== '' ? '$NODE_NAME' : 'the host name'}) is not a Kubernetes node name; give ${flag('nodeName')}`);
  }
  const namespace = raw.kubeNamespace !== undefined ? check.one('kubeNamespace') : (s.readFile(`${SERVICE_ACCOUNT_DIR}/namespace`)?.trim() || 'kube-system');
  if (raw.kubeconfig === '') check.problems.push(`${flag('kubeconfig')}: must not be empty`);
  if (nodeName === undefined || namespace === undefined) return undefined;
  return { kubeconfig: raw.kubeconfig === '' ? undefined : raw.kubeconfig, nodeName, namespace, detected: !raw.kubernetes };
}

function validateIpam(check: OptionChecker, raw: FilledConfig, kubernetes: boolean): IpamConfig | undefined {
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
  if (kubernetes && (seeds.length > 0 || raw.ipamInitPeers !== undefined)) {
    problems.push(`${seeds.length > 0 ? flag('ipamSeed') : flag('ipamInitPeers')}: not used in Kubernetes mode (the API server decides who owns which block)`);
  }
  const init = ipamBootstrap(seeds, initPeers, raw.peers.length);
  return { ranges, init, quarantineMs: (quarantine ?? 0) * 1000, ownership: kubernetes ? 'kubernetes' : 'ring' };
}

/**
 * How the IPAM ring is first formed. Seeds or --ipam-init-peers when given; otherwise "join",
 * the same on every node whatever the start order: a router with no --peer is the first member
 * and forms the ring alone at once (a quorum of 1), a router with --peer never forms one and
 * takes the ring from the members it reaches, however many routers there are.
 */
export function ipamBootstrap(seeds: string[], initPeers: number | undefined, peerCount: number): IpamConfig['init'] {
  if (seeds.length > 0) return { seeds };
  if (initPeers !== undefined) return { initPeers };
  return peerCount === 0 ? { initPeers: 1 } : { join: true };
}
