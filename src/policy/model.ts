/**
 * NetworkPolicy in weft: the model every part shares. Kubernetes NetworkPolicy, Pod and Namespace
 * objects (from the API, src/k8s/policy-source.ts, or from a YAML file in standalone mode,
 * file-source.ts) are validated into these types (objects.ts); the compiler (compile.ts) turns the
 * model into one nftables table of the router's own; the engine (src/daemon/policy.ts) applies it
 * as one transaction per change and reports counters.
 *
 * Enforcement point: table `inet weft-policy`, hook forward. Bridged frames between the pods'
 * veths, the TAP and the VXLAN device cross the inet hooks because bridge netfilter is on
 * (`net.bridge.bridge-nf-call-iptables`/`-ip6tables` = 1: the kernel here has no bridge-family
 * conntrack, so the bridge family cannot tell replies from new connections). Selection is by IP
 * address: a local pod's addresses are anti-spoofed by the pod guard (bridge weft-pods), so a
 * source address can be trusted on this node.
 *
 * What always passes, before any policy: replies of allowed connections (ct established,related),
 * IPv6 neighbour discovery, a pod's traffic to itself (through a Service: source = destination),
 * and everything to or from the node itself (it never crosses forward). A policy change applies to
 * new connections; established ones keep flowing (as Calico and Cilium).
 */

export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP';

export const POLICY_TABLE = 'weft-policy';
export const POLICY_FAMILY = 'inet';
/** The table as nft names it (`inet weft-policy`), for logs. */
export const POLICY_TABLE_REF = `${POLICY_FAMILY} ${POLICY_TABLE}`;

export interface SelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** Empty for Exists and DoesNotExist. */
  values: string[];
}

/** A Kubernetes label selector; both parts empty selects everything. */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: SelectorRequirement[];
}

/** One entry of a rule's `ports`. */
export interface PolicyPort {
  /** Default TCP. */
  protocol: PolicyProtocol;
  /** A number (1-65535), a port name (IANA_SVC_NAME, resolved on the destination pod), or undefined: every port of the protocol. */
  port: number | string | undefined;
  /** With a numeric port: the range port..endPort. */
  endPort: number | undefined;
}

export interface IpBlock {
  /** Normalized CIDR ("10.0.0.0/8"). */
  cidr: string;
  /** Normalized CIDRs inside `cidr`. */
  except: string[];
}

/**
 * One entry of `from` / `to`. Either ipBlock alone, or pods: podSelector (in the policy's
 * namespace unless namespaceSelector is given) and/or namespaceSelector (every pod of the
 * namespaces it selects).
 */
export interface PolicyPeer {
  podSelector: LabelSelector | undefined;
  namespaceSelector: LabelSelector | undefined;
  ipBlock: IpBlock | undefined;
}

export interface PolicyRule {
  /** Empty: any source (ingress) or destination (egress), pods or not. */
  peers: PolicyPeer[];
  /** Empty: every port and protocol (ICMP too). */
  ports: PolicyPort[];
}

export interface NetworkPolicy {
  namespace: string;
  name: string;
  /** Pods of `namespace` this policy applies to; empty selects all of them. */
  podSelector: LabelSelector;
  /** policyTypes, resolved as Kubernetes does: Ingress unless only Egress is listed; Egress when listed or when `egress` rules exist. */
  ingress: boolean;
  egress: boolean;
  ingressRules: PolicyRule[];
  egressRules: PolicyRule[];
}

export interface NamedPort {
  name: string;
  protocol: PolicyProtocol;
  port: number;
}

export interface PolicyPod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Its addresses (IPv4 and IPv6, no prefix length); a pod without any is selected by nothing. */
  ips: string[];
  /** Its containers' named ports. */
  namedPorts: NamedPort[];
  /** The Node it runs on (spec.nodeName), when known. */
  node: string | undefined;
  /** spec.hostNetwork: such a pod has the node's address and is never selected (as Calico). */
  hostNetwork: boolean;
}

export interface PolicyNamespace {
  name: string;
  /** Includes `kubernetes.io/metadata.name` = name (added when missing, as the API server does). */
  labels: Record<string, string>;
}

/** What the compiler takes: `local` names the pods on this node (the only ones it isolates). */
export interface PolicyModel {
  policies: readonly NetworkPolicy[];
  pods: readonly PolicyPod[];
  namespaces: readonly PolicyNamespace[];
  /** Keys (`namespace/name`) of the pods on this node. */
  local: ReadonlySet<string>;
}

export function podKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

/** A named set of the table with its elements, in nft syntax (`10.0.0.1`, `tcp . 80-90`). */
export interface CompiledSet {
  name: string;
  /** The declaration inside `set NAME { ... }`, e.g. `type ipv4_addr; flags interval;`. */
  declaration: string;
  elements: string[];
}

export interface CompiledPolicyInfo {
  namespace: string;
  name: string;
  /** The short id in the table's names (`p` + 10 hex of sha256 of namespace/name): stable across restarts and orders. */
  id: string;
  ingress: boolean;
  egress: boolean;
  /** Keys of the local pods it selects. */
  selected: string[];
  /** Its named counters: packets of new connections it allowed, and packets dropped at pods it isolates. */
  allowedCounter: string;
  droppedCounter: string;
}

/**
 * The table, split so that pods coming and going change set elements only:
 * - `rules` is the text inside `table inet weft-policy { ... }` that declares every chain, set
 *   (without elements) and counter, with the chains' rules. It depends on the policies only
 *   (never on pods or namespaces): equal text means no rule rewrite is needed.
 * - `sets` holds every set with its elements (the ones that follow pods and namespaces, and the
 *   ones fixed by a policy: ports, ipBlocks).
 */
export interface CompiledPolicy {
  rules: string;
  sets: CompiledSet[];
  counters: string[];
  policies: CompiledPolicyInfo[];
}

/** The pods and namespaces and policies as a source last read them. */
export interface PolicySnapshot {
  policies: NetworkPolicy[];
  pods: PolicyPod[];
  namespaces: PolicyNamespace[];
}

/** A problem with one object from a source, kept for status (the object is skipped, the rest used). */
export interface PolicyObjectProblem {
  /** "NetworkPolicy default/deny-all", or "policies.yaml document 3". */
  where: string;
  /** What is wrong, naming the field ("spec.ingress[0].ports[1].port: 70000 is not a port"). */
  problem: string;
}

/** Where the engine gets policies, pods and namespaces from (the API, or a file). */
export interface PolicySource {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The objects as last read; undefined until the first full read (the engine keeps the kernel's rules until then). */
  snapshot(): PolicySnapshot | undefined;
  /** Called after every change of the snapshot (may be called often: the engine batches). */
  onChange(listener: () => void): void;
  /** For status: what the source is, whether it is synced, objects it skipped and why. */
  describe(): { kind: 'kubernetes' | 'file'; where: string; synced: boolean; problems: PolicyObjectProblem[]; error: string | undefined };
}
