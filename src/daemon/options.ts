/**
 * The options of `weft launch`, one row each: the flag, its value name, its default, the help text,
 * how its value is checked (kind and bounds) and what README.md says of it. The CLI's parser
 * (src/cli/launch-options.ts), the defaults and the checks (config.ts) and README's flag table
 * (flag-table.ts, `npm run docs:flags`) are all made from these rows, so they cannot disagree.
 */
import { DEFAULT_API_SOCKET, DEFAULT_STATE_DIR } from '../api/paths.js';
import { isDnsSubdomain } from '../core/dns-names.js';
import { parseHostPort, type HostPort } from '../core/host-port.js';
import { parseCidr, parseEndpoint, type Cidr, type Endpoint } from '../core/net.js';
import { MESH_PROTOCOL_MAX, MESH_PROTOCOL_MIN } from '../mesh/mesh-protocol.js';
import { apiSocketProblem } from './api-server.js';

export const DEFAULT_PORT = 6784;
/** The port of `--metrics-addr` when none is given. */
export const DEFAULT_METRICS_PORT = 6782;

/** How a value is checked; each kind names its bounds. */
export type OptionCheck =
  /** A flag without a value. */
  | { kind: 'switch' }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'enum'; values: readonly string[] }
  /** ADDR[:PORT], IPv4 or [IPv6]:PORT; the port defaults to DEFAULT_PORT. */
  | { kind: 'endpoint' }
  /** An endpoint, or HOST[:PORT] with an RFC 1123 host name (resolved at each use). */
  | { kind: 'host-port' }
  /** A file path, any form. */
  | { kind: 'file' }
  | { kind: 'absolute-path' }
  /** A path fit for a Unix socket (absolute, no NUL, short enough). */
  | { kind: 'socket-path' }
  /** A router's nickname: 1-63 of letters, digits, "_", "." or "-", starting with a letter or digit. */
  | { kind: 'nickname' }
  /** A network interface name: 1-15 of A-Z a-z 0-9 _ . - */
  | { kind: 'ifname' }
  /** A CIDR of one family with at most `maxPrefix` bits of prefix; `orNone`: "none" is a value too. */
  | { kind: 'cidr'; family: 4 | 6; maxPrefix: number; orNone?: boolean; problem: string }
  /** A peer name: 16 hex digits. */
  | { kind: 'peer-name' }
  /** A Kubernetes object name: a lowercase RFC 1123 DNS subdomain of at most `max` characters. */
  | { kind: 'dns-name'; max: number };

export interface LaunchOption {
  /** The flag as typed: `--heartbeat-ms`. A switch that turns something off is `--no-...`. */
  flag: string;
  /** The value's name in the help (`<ms>`) and, in capitals, in README (`MS`); none for a switch. */
  value?: string;
  /**
   * The default, as it would be typed (a string), `[]` for a repeatable option, a boolean for a
   * switch; undefined: no default (the option is required, optional, or worked out at start).
   */
  default?: string | readonly string[] | boolean;
  /** The help line of `weft launch --help`. */
  help: string;
  check: OptionCheck;
  /** repeat: each occurrence is one value; comma: each occurrence is a comma-separated list. */
  repeatable?: 'repeat' | 'comma';
  /** Why the option is required (the problem's text when it is missing). */
  required?: string;
  /** README's meaning column. */
  readme: string;
  /** README's default column when it is not the default itself (`required`, `detected`, ...). */
  readmeDefault?: string;
}

/** Every option of `weft launch`, by its key in RawConfig, in README's order. */
export const LAUNCH_OPTIONS = {
  config: {
    flag: '--config',
    value: 'file',
    help: 'read the options from this YAML file (keys: the flag names without "--"); flags given as well override it',
    check: { kind: 'file' },
    readme: 'a YAML file of these options (see Config file); a flag given on the command line overrides the same key of the file',
    readmeDefault: 'none',
  },
  name: {
    flag: '--name',
    value: 'name',
    help: 'nickname shown beside the peer name (required; the peer name comes from the key)',
    check: { kind: 'nickname' },
    required: 'a nickname shown beside the peer name, e.g. node-1',
    readme: "nickname shown beside the peer name; the peer name (16 hex digits) comes from the router's public key",
    readmeDefault: 'required',
  },
  listen: {
    flag: '--listen',
    value: 'addr:port',
    default: `0.0.0.0:${DEFAULT_PORT}`,
    help: 'address of the sleeve (UDP) and of the mesh (TCP, same port)',
    check: { kind: 'endpoint' },
    readme: 'UDP (sleeve) and TCP (mesh) address, IPv4 or `[IPv6]:port`',
  },
  peers: {
    flag: '--peer',
    value: 'host:port',
    default: [],
    help: 'a router to connect to, by address or host name (repeat for more); others are learned by gossip',
    check: { kind: 'host-port' },
    repeatable: 'repeat',
    readme: 'a member to connect to, `addr:port`, `[v6]:port` or `name:port` (repeatable; a name is resolved at each attempt, every address tried); others are learned by gossip',
  },
  stun: {
    flag: '--stun',
    value: 'host:port',
    default: [],
    help: 'a STUN server to ask for our public endpoint (repeatable; default none: peers tell us)',
    check: { kind: 'host-port' },
    repeatable: 'repeat',
    readme: 'a STUN server (`addr:port`, `[v6]:port` or `name:port`) asked every 5 min for this router\'s public endpoint, offered to peers as a `stun` candidate (repeatable; none is needed: peers observe it too)',
  },
  advertise: {
    flag: '--advertise',
    value: 'addr:port',
    default: [],
    help: 'endpoint announced to other routers (repeatable; default: --listen when specific)',
    check: { kind: 'endpoint' },
    repeatable: 'repeat',
    readme: 'endpoint other routers learn for us (repeatable)',
    readmeDefault: 'the listen address when specific',
  },
  secretFile: {
    flag: '--secret-file',
    value: 'file',
    help: 'file holding the cluster secret (at least 16 bytes)',
    check: { kind: 'file' },
    readme: "cluster secret (≥ 16 bytes): the mesh's Noise PSK is derived from it",
    readmeDefault: 'required unless `--plaintext`',
  },
  plaintext: {
    flag: '--plaintext',
    default: false,
    help: 'no encryption or authentication (only on a trusted network)',
    check: { kind: 'switch' },
    readme: 'frames unencrypted and unauthenticated, only on a network you trust completely. The mesh still authenticates routers when a secret file is given.',
    readmeDefault: 'off',
  },
  secretFileAccept: {
    flag: '--secret-file-accept',
    value: 'file',
    default: [],
    help: 'another cluster secret accepted from peers while the secret is rotated (repeatable, at most 4)',
    check: { kind: 'file' },
    repeatable: 'repeat',
    readme: 'a further cluster secret accepted from peers (mesh handshakes, pair keys, the IPAM state) while the secret is rotated; repeatable, at most 4. See "Revoking a node and rotating the secret"',
  },
  revocationPubkey: {
    flag: '--revocation-pubkey',
    value: 'hex|file',
    help: 'the revocation public key (64 hex digits, or a file holding them): blocklist entries signed by it are enforced',
    check: { kind: 'file' },
    readme: 'the public key of `weft revocation-key create` (64 hex digits, or a file holding them); blocklist entries signed by it are enforced, all others refused',
    readmeDefault: 'none: no entry is accepted',
  },
  stateDir: {
    flag: '--state-dir',
    value: 'dir',
    default: DEFAULT_STATE_DIR,
    help: 'where the identity key is kept',
    check: { kind: 'absolute-path' },
    readme:
      'the identity key (`identity.key`, mode 0600) and the last version of our topology record (`topology.version`; a value at or above 2^52 − 1 is ignored). Never copy it to another host: a second router with the same key is stopped',
  },
  rekeySeconds: {
    flag: '--rekey-seconds',
    value: 's',
    default: '120',
    help: 'rotate data keys this often',
    check: { kind: 'int', min: 2, max: 86_400 },
    readme: "traffic keys are replaced this often, and before a key's message counter runs high; a key pair seals and opens nothing 2 × S after it was made (its hard lifetime)",
  },
  meshProtocolMax: {
    flag: '--mesh-protocol-max',
    value: 'n',
    default: String(MESH_PROTOCOL_MAX),
    help: `highest mesh protocol version to speak (${MESH_PROTOCOL_MIN}-${MESH_PROTOCOL_MAX}; lower only to hold back during an upgrade)`,
    check: { kind: 'int', min: MESH_PROTOCOL_MIN, max: MESH_PROTOCOL_MAX },
    readme: `highest mesh protocol version offered to neighbours (this release speaks ${MESH_PROTOCOL_MIN}..${MESH_PROTOCOL_MAX}; each connection speaks the highest both ends offer). Lower it to hold a router back while a cluster upgrades (see Rolling upgrades)`,
  },
  fastpath: {
    flag: '--fastpath',
    value: 'mode',
    default: 'auto',
    help: 'kernel VXLAN fast path per peer, with fallback to the sleeve: auto or off',
    check: { kind: 'enum', values: ['auto', 'off'] },
    readme:
      'kernel VXLAN per peer where it works and is allowed; needs a specific IPv4 `--listen` address and nftables (`off` also removes what an earlier run left: the VXLAN device and its tables)',
  },
  trustedSubnets: {
    flag: '--trusted-subnets',
    value: 'cidrs',
    default: [],
    help: 'underlay subnets where the unencrypted kernel path may carry an encrypting cluster (repeatable, comma-separated)',
    check: { kind: 'cidr', family: 4, maxPrefix: 32, problem: 'is not an IPv4 CIDR like 198.18.0.0/15' },
    repeatable: 'comma',
    readme: 'underlay subnets where an encrypting cluster may use the *unencrypted* kernel path (repeatable, comma-separated)',
  },
  bridge: {
    flag: '--bridge',
    value: 'name',
    default: 'weft',
    help: 'bridge the pods are plugged into',
    check: { kind: 'ifname' },
    readme: 'the bridge the pods are plugged into (created or adopted)',
  },
  tap: {
    flag: '--tap',
    value: 'name',
    default: 'weft-tap',
    help: 'TAP device name',
    check: { kind: 'ifname' },
    readme: 'the TAP device between the bridge and the router (made at start, removed at stop)',
  },
  vnetHdr: {
    flag: '--no-vnet-hdr',
    default: true,
    help: 'per-frame mode: no virtio_net_hdr super-frames on the TAP',
    check: { kind: 'switch' },
    readme: 'per-frame mode: no virtio_net_hdr super-frames on the TAP (it still interoperates with vnet peers)',
    readmeDefault: 'vnet on',
  },
  tapUring: {
    flag: '--no-tap-uring',
    default: true,
    help: 'read the TAP with one read() per frame instead of io_uring batches',
    check: { kind: 'switch' },
    readme: 'read the TAP with one read() per frame instead of io_uring batches (used only when the kernel and the seccomp profile allow io_uring; `weft status` says which)',
    readmeDefault: 'io_uring',
  },
  udpCoalesce: {
    flag: '--no-udp-coalesce',
    default: true,
    help: 'write each small UDP frame from the sleeve to the TAP by itself (no USO super-frames)',
    check: { kind: 'switch' },
    readme: 'write every frame from the sleeve to the TAP by itself; by default the small frames of one UDP flow that one receive batch brings in a row go to the TAP as one USO super-frame (one write; the kernel cuts it back into the same datagrams); vnet mode only',
    readmeDefault: 'coalesce on',
  },
  underlayMtu: {
    flag: '--underlay-mtu',
    value: 'bytes',
    help: 'MTU of the underlay path (default: detected)',
    check: { kind: 'int', min: 1280, max: 65_535 },
    readme: 'the underlay path MTU, taken from the interface that holds the listen address or routes to the first peer',
    readmeDefault: 'detected',
  },
  mtu: {
    flag: '--mtu',
    value: 'bytes',
    help: 'overlay MTU for the TAP, bridge and pods (default: derived)',
    check: { kind: 'int', min: 576, max: 65_000 },
    readme: 'the overlay MTU of the TAP, the bridge and the pods (default: underlay − 96 for IPv4, − 116 for IPv6)',
    readmeDefault: 'derived',
  },
  apiSocket: {
    flag: '--api-socket',
    value: 'path',
    default: DEFAULT_API_SOCKET,
    help: 'local API socket',
    check: { kind: 'socket-path' },
    readme: 'local API (HTTP on a Unix socket, for root only: mode 0600, in a directory weft makes with mode 0700); `weft status --socket PATH`',
  },
  aead: {
    flag: '--aead',
    value: 'impl',
    default: 'openssl',
    help: "ChaCha20-Poly1305 implementation: openssl (Node's, via the addon) or libsodium",
    check: { kind: 'enum', values: ['openssl', 'libsodium'] },
    readme: 'which ChaCha20-Poly1305 implementation seals the sleeve (same bytes on the wire)',
  },
  cryptoThreads: {
    flag: '--crypto-threads',
    value: 'n',
    help: 'threads that seal and open each batch of sleeve messages, this one included (0: one at a time as queued; default: detected)',
    check: { kind: 'int', min: 0, max: 16 },
    readme:
      'threads that seal and open each batch of sleeve messages together, the router\'s own included (fork-join: a batch\'s order never changes); `0` seals and opens each message as it comes, `1` batches on the router\'s thread alone; with `--aead libsodium` always 0. Detected: the cores less one, at most 4, and 0 on fewer than 3 cores (see Performance)',
    readmeDefault: 'detected',
  },
  ipamRange: {
    flag: '--ipam-range',
    value: 'cidr',
    default: '10.32.0.0/12',
    help: 'IPv4 range the cluster-wide IPAM hands out to pods ("none": no IPAM)',
    check: { kind: 'cidr', family: 4, maxPrefix: 30, orNone: true, problem: 'must be an IPv4 CIDR of at least 4 addresses, like 10.32.0.0/12 (or "none")' },
    readme: 'the IPv4 range the cluster-wide IPAM hands to pods; `none` turns IPAM off',
  },
  ipamRange6: {
    flag: '--ipam-range6',
    value: 'cidr',
    help: 'IPv6 range for dual-stack pods (optional)',
    check: { kind: 'cidr', family: 6, maxPrefix: 124, problem: 'must be an IPv6 CIDR like fd00:32::/64' },
    readme: 'an IPv6 range as well (dual-stack pods)',
  },
  ipamSeed: {
    flag: '--ipam-seed',
    value: 'names',
    default: [],
    help: 'peer names that split the range at bootstrap (repeatable, comma-separated; see "weft identity")',
    check: { kind: 'peer-name' },
    repeatable: 'comma',
    readme: 'the peers (16-hex names, see `weft identity`) that split the ranges at bootstrap (repeatable, comma-separated)',
  },
  ipamInitPeers: {
    flag: '--ipam-init-peers',
    value: 'n',
    help: 'without seeds: split the range once this many peers see each other (default: join; a router without --peer forms the ring alone, one with --peer joins the ring of its peers)',
    check: { kind: 'int', min: 1, max: 10_000 },
    readme: 'without seeds: the ranges are split once exactly N routers see each other. Without this flag (join): a router without `--peer` forms the ring alone, a router with `--peer` never forms one and joins the ring of the routers it reaches, in any start order',
    readmeDefault: 'join',
  },
  ipamQuarantineSeconds: {
    flag: '--ipam-quarantine-seconds',
    value: 's',
    default: '300',
    help: 'a released address is not handed out again for this long',
    check: { kind: 'int', min: 0, max: 7 * 86_400 },
    readme: 'a released address is not handed out again for this long',
  },
  kubernetes: {
    flag: '--kubernetes',
    default: false,
    help: 'Kubernetes mode: peers from Node objects, IPAM blocks through the API (automatic in a pod with a service account)',
    check: { kind: 'switch' },
    readme:
      'Kubernetes mode: the router publishes itself on its Node and connects to the routers of the other Nodes (no `--peer` needed), a deleted Node is forgotten, and which router owns which IPAM block is decided through the API server. On by itself in a pod with a service account (`KUBERNETES_SERVICE_HOST` and its token)',
    readmeDefault: 'off (on in a pod)',
  },
  kubeconfig: {
    flag: '--kubeconfig',
    value: 'file',
    help: "kubeconfig for the API server (default: the pod's service account, else $KUBECONFIG)",
    check: { kind: 'file' },
    readme: 'the kubeconfig used to reach the API server in Kubernetes mode',
    readmeDefault: "the pod's service account, else `$KUBECONFIG`",
  },
  nodeName: {
    flag: '--node-name',
    value: 'name',
    help: 'this router\'s Node object (default: $NODE_NAME, else the host name)',
    check: { kind: 'dns-name', max: 253 },
    readme: "this router's Node object in Kubernetes mode",
    readmeDefault: '`$NODE_NAME`, else the host name',
  },
  kubeNamespace: {
    flag: '--kube-namespace',
    value: 'name',
    help: "namespace of weft's Leases (default: the pod's namespace, else kube-system)",
    check: { kind: 'dns-name', max: 63 },
    readme: 'the namespace that holds the IPAM block Leases in Kubernetes mode',
    readmeDefault: "the pod's namespace, else `kube-system`",
  },
  serviceBridge: {
    flag: '--service-bridge',
    value: 'mode',
    default: 'auto',
    help: "set up the pods' bridge for kube-proxy Services (bridge netfilter, forwarding, hairpin): on, off or auto (on in Kubernetes mode)",
    check: { kind: 'enum', values: ['auto', 'on', 'off'] },
    readme:
      "what kube-proxy's Services need from the pods' bridge: `net.bridge.bridge-nf-call-iptables` and `-ip6tables`, forwarding, hairpin mode on its veth ports (see Services); `auto` is on in Kubernetes mode; status reports them either way",
  },
  networkPolicy: {
    flag: '--network-policy',
    value: 'mode',
    default: 'auto',
    help: 'enforce Kubernetes NetworkPolicy for the pods of this node (nftables): auto (on in Kubernetes mode or with --policy-file), on or off',
    check: { kind: 'enum', values: ['auto', 'on', 'off'] },
    readme:
      'NetworkPolicy for the pods on this node, in table `inet weft-policy` (see NetworkPolicy); `auto` is on in Kubernetes mode or with `--policy-file`; on, bridge netfilter is set; `off` deletes the table an earlier run left',
  },
  policyFile: {
    flag: '--policy-file',
    value: 'file',
    help: 'standalone: NetworkPolicy, Pod and Namespace objects from this YAML file (as Kubernetes writes them)',
    check: { kind: 'file' },
    readme: 'standalone mode: the NetworkPolicies (and the Pods and Namespaces they select) as Kubernetes YAML, one document per object; re-read when it changes',
    readmeDefault: 'none',
  },
  metricsAddr: {
    flag: '--metrics-addr',
    value: 'addr:port',
    help: 'serve /metrics (Prometheus), /healthz and /readyz over HTTP here (port default 6782; default: off)',
    check: { kind: 'endpoint' },
    readme: 'HTTP address of `/metrics` (Prometheus text format), `/healthz` (the process runs) and `/readyz` (ready to allocate and forward); the port defaults to 6782',
    readmeDefault: 'off',
  },
  logLevel: {
    flag: '--log-level',
    value: 'level',
    default: 'info',
    help: 'trace, debug, info, warn, error or silent',
    check: { kind: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'silent'] },
    readme: 'logging (JSON lines on stderr)',
  },
  heartbeatMs: {
    flag: '--heartbeat-ms',
    value: 'ms',
    default: '500',
    help: 'sleeve heartbeat interval (above 500 slows fast-path fallback)',
    check: { kind: 'int', min: 100, max: 60_000 },
    readme: 'sleeve heartbeat interval (above 500 ms, a fast-path peer that restarts is told apart from a cut path more slowly)',
  },
  spinUs: {
    flag: '--spin-us',
    value: 'us',
    default: '0',
    help: 'busy-poll this long after traffic before sleeping (0 = off)',
    check: { kind: 'int', min: 0, max: 1000 },
    readme: 'busy-poll this long after traffic before sleeping (0: off)',
  },
} as const satisfies Record<string, LaunchOption>;

export type OptionKey = keyof typeof LAUNCH_OPTIONS;
type Row<K extends OptionKey> = (typeof LAUNCH_OPTIONS)[K];

/** What a row's value is on the command line: a switch is a boolean, a repeatable option a list. */
type RawValue<R> = R extends { check: { kind: 'switch' } } ? boolean : R extends { repeatable: string } ? string[] : string;

/** What the command line (or a config file) gives: strings and flags, unchecked. */
export type RawConfig = { [K in OptionKey]?: RawValue<Row<K>> } & {
  /** Options and arguments the parser did not know. */
  unknown?: string[];
};

/** The keys of the rows whose check is of `kind`. */
export type KeyOfKind<Kind extends OptionCheck['kind']> = { [K in OptionKey]: Row<K>['check']['kind'] extends Kind ? K : never }[OptionKey];

/** The keys of the rows with a default. */
type DefaultedKey = { [K in OptionKey]: Row<K> extends { default: unknown } ? K : never }[OptionKey];

/** Raw settings with every default filled in. */
export type FilledConfig = RawConfig & { [K in DefaultedKey]: RawValue<Row<K>> } & { unknown: string[] };

export function optionRow(key: OptionKey): LaunchOption {
  return LAUNCH_OPTIONS[key];
}

/** The options in table order, with their keys. */
export function launchOptions(): [OptionKey, LaunchOption][] {
  return Object.entries(LAUNCH_OPTIONS) as [OptionKey, LaunchOption][];
}

/** The keys of the rows whose default is one string. */
type TextDefaultKey = { [K in OptionKey]: Row<K> extends { default: string } ? K : never }[OptionKey];

/** The default of a row (e.g. for other commands' --socket and --state-dir, which share it). */
export function defaultOf(key: TextDefaultKey): string {
  return LAUNCH_OPTIONS[key].default;
}

/** Every row's default where the raw value is missing (undefined counts as missing). */
export function fillDefaults(raw: RawConfig): FilledConfig {
  const out: Record<string, unknown> = { unknown: [] };
  for (const [key, row] of launchOptions()) {
    if (row.default !== undefined) out[key] = Array.isArray(row.default) ? [...(row.default as readonly string[])] : row.default;
  }
  for (const [key, value] of Object.entries(raw)) if (value !== undefined) out[key] = value;
  return out as FilledConfig;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NICKNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const PEER_NAME = /^[0-9a-f]{16}$/;

/** What each kind of check makes of a valid value. */
interface KindValue {
  switch: boolean;
  int: number;
  enum: string;
  endpoint: Endpoint;
  'host-port': HostPort;
  file: string;
  'absolute-path': string;
  'socket-path': string;
  nickname: string;
  ifname: string;
  /** undefined: "none" */
  cidr: Cidr | undefined;
  'peer-name': string;
  'dns-name': string;
}

/** The value of `text` under `check`, or why it is not one (the text quoted first). */
export function checkValue<Kind extends OptionCheck['kind']>(
  check: OptionCheck & { kind: Kind },
  text: string,
  defaultPort = DEFAULT_PORT,
): { value: KindValue[Kind] } | { problem: string } {
  const c = check as OptionCheck;
  const ok = (value: KindValue[keyof KindValue]): { value: KindValue[Kind] } => ({ value: value as KindValue[Kind] });
  switch (c.kind) {
    case 'switch':
      return ok(text === 'true');
    case 'int':
      if (!/^\d+$/.test(text) || Number(text) < c.min || Number(text) > c.max) return { problem: `"${text}" must be an integer from ${c.min} to ${c.max}` };
      return ok(Number(text));
    case 'enum':
      if (!c.values.includes(text)) {
        const list = c.values.length === 2 ? `${c.values[0]} or ${c.values[1]}` : `one of ${c.values.join(', ')}`;
        return { problem: `"${text}" must be ${list}` };
      }
      return ok(text);
    case 'endpoint': {
      const e = parseEndpoint(text, defaultPort);
      return typeof e === 'string' ? { problem: e } : ok(e);
    }
    case 'host-port': {
      const h = parseHostPort(text, defaultPort);
      return typeof h === 'string' ? { problem: h } : ok(h);
    }
    case 'file':
      return ok(text);
    case 'absolute-path':
      return text === '' || !text.startsWith('/') ? { problem: `"${text}" must be an absolute path` } : ok(text);
    case 'socket-path': {
      const why = apiSocketProblem(text);
      return why === undefined ? ok(text) : { problem: why };
    }
    case 'nickname':
      return NICKNAME.test(text) ? ok(text) : { problem: `"${text}" must be 1-63 characters of letters, digits, "_", "." or "-", starting with a letter or digit` };
    case 'ifname':
      return IFNAME.test(text) ? ok(text) : { problem: `"${text}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)` };
    case 'cidr': {
      if (c.orNone === true && text === 'none') return ok(undefined);
      const r = parseCidr(text);
      return typeof r === 'string' || r.family !== c.family || r.prefix > c.maxPrefix ? { problem: `"${text}" ${c.problem}` } : ok(r);
    }
    case 'peer-name':
      return PEER_NAME.test(text) ? ok(text) : { problem: `"${text}" is not a peer name (16 hex digits, as "weft identity" prints it)` };
    case 'dns-name':
      return text.length <= c.max && isDnsSubdomain(text)
        ? ok(text)
        : { problem: `"${text}" must be at most ${c.max} characters of lowercase letters, digits, "-" and "." (a Kubernetes object name)` };
  }
}

/**
 * Checks the options of a filled raw config row by row; each problem names its flag (and for a
 * repeated option, which occurrence). Cross-option rules stay with the caller (config.ts).
 */
export class OptionChecker {
  readonly problems: string[] = [];
  private readonly raw: FilledConfig;

  constructor(raw: FilledConfig) {
    this.raw = raw;
  }

  /** The checked value of a single-valued option; undefined when absent or invalid. */
  one<K extends KeyOfKind<Exclude<OptionCheck['kind'], 'switch'>>>(key: K, defaultPort?: number): KindValue[Row<K>['check']['kind']] | undefined {
    const row = optionRow(key);
    const text = this.raw[key] as string | undefined;
    if (text === undefined || (row.required !== undefined && text === '')) {
      if (row.required !== undefined) this.problems.push(`${row.flag}: required (${row.required})`);
      return undefined;
    }
    const r = checkValue(row.check, text, defaultPort);
    if ('problem' in r) {
      this.problems.push(`${row.flag}: ${r.problem}`);
      return undefined;
    }
    return r.value as KindValue[Row<K>['check']['kind']];
  }

  /**
   * The checked values of a repeatable option, in order, with their occurrence (1-based); invalid
   * ones are left out. `extra` adds a rule of the caller's (a problem text, or undefined).
   */
  list<K extends KeyOfKind<Exclude<OptionCheck['kind'], 'switch'>> & { [P in OptionKey]: Row<P> extends { repeatable: string } ? P : never }[OptionKey]>(
    key: K,
    options: { defaultPort?: number; extra?: (value: KindValue[Row<K>['check']['kind']], text: string) => string | undefined } = {},
  ): KindValue[Row<K>['check']['kind']][] {
    const row = optionRow(key);
    const given = (this.raw[key] as string[] | undefined) ?? [];
    const texts = row.repeatable === 'comma' ? given.flatMap((t) => t.split(',')).map((t) => t.trim()).filter((t) => t !== '') : given;
    const out: KindValue[Row<K>['check']['kind']][] = [];
    texts.forEach((text, i) => {
      const label = row.repeatable === 'comma' ? row.flag : `${row.flag} #${i + 1}`;
      const r = checkValue(row.check, text, options.defaultPort);
      const problem = 'problem' in r ? r.problem : options.extra?.(r.value as KindValue[Row<K>['check']['kind']], text);
      if (problem !== undefined) this.problems.push(`${label}: ${problem}`);
      else out.push((r as { value: KindValue[Row<K>['check']['kind']] }).value);
    });
    return out;
  }
}
