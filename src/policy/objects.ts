/**
 * NetworkPolicy, Pod and Namespace objects, untrusted plain objects from the API server or from a
 * YAML file, validated into the model (model.ts). The rules follow the Kubernetes API's own
 * validation (pkg/apis/networking/validation, apimachinery's label and name checks), so an object
 * the API server accepts is accepted here, and a hand-written file gets the same answers:
 * - names: a NetworkPolicy's and a Pod's a DNS subdomain (≤ 253), a namespace a DNS label (≤ 63);
 * - label keys: an optional DNS-subdomain prefix and `/`, then a name (≤ 63, alphanumeric at both
 *   ends, `-_.` inside); label values ≤ 63, empty or of the same characters;
 * - selectors: In/NotIn need values, Exists/DoesNotExist have none;
 * - ports: 1-65535, or a name (IANA_SVC_NAME: ≤ 15, lowercase alphanumeric and `-`, at least one
 *   letter, no `--`, not at either end); endPort only with a numeric port, and ≥ it; protocol TCP,
 *   UDP or SCTP (default TCP);
 * - ipBlock: `cidr` a CIDR (normalized: host bits cleared), each `except` a strict subset of it
 *   and so of its family; a peer with an ipBlock has no selector, and a peer names something;
 * - policyTypes: Ingress and/or Egress; when absent, Ingress, plus Egress when `egress` rules exist.
 * Unknown fields are ignored. Sizes are bounded (LIMITS). Only own properties are read (a
 * `__proto__` or `constructor` key is data), and label maps have no prototype.
 *
 * Every problem names the field path (`spec.ingress[0].from[1].ipBlock.except[0]`); an object
 * with any problem is refused whole (the caller skips it and lists the problems).
 */
import { isIP } from 'node:net';
import { addressToBigint, bigintToAddress, parseCidr } from '../core/net.js';
import {
  LIMITS,
  Problems,
  dnsLabelProblem,
  dnsSubdomainProblem,
  field,
  isObj,
  isPortNumber,
  labelKeyProblem,
  labelValueProblem,
  labels,
  list,
  object,
  optionalString,
  portNameProblem,
  show,
  type Obj,
} from './object-fields.js';
import type {
  IpBlock,
  LabelSelector,
  NamedPort,
  NetworkPolicy,
  PolicyNamespace,
  PolicyObjectProblem,
  PolicyPeer,
  PolicyPod,
  PolicyPort,
  PolicyProtocol,
  PolicyRule,
  SelectorRequirement,
} from './model.js';

/** A validated object, or every problem found (at most LIMITS.problems, then a count). */
export type ParseResult<T> = { ok: T } | { problems: PolicyObjectProblem[] };

export { LIMITS } from './object-fields.js';

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

const PROTOCOLS: readonly PolicyProtocol[] = ['TCP', 'UDP', 'SCTP'];
const OPERATORS: readonly SelectorRequirement['operator'][] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

function selector(v: unknown, path: string, p: Problems): LabelSelector {
  const out: LabelSelector = { matchLabels: Object.create(null) as Record<string, string>, matchExpressions: [] };
  if (v === undefined || v === null) return out;
  if (!isObj(v)) {
    p.add(path, `must be a label selector (an object), not ${show(v)}`);
    return out;
  }
  out.matchLabels = labels(field(v, 'matchLabels'), `${path}.matchLabels`, p);
  list(v, 'matchExpressions', `${path}.matchExpressions`, p, LIMITS.labels).forEach((e, i) => {
    const at = `${path}.matchExpressions[${i}]`;
    if (!isObj(e)) {
      p.add(at, `must be an object, not ${show(e)}`);
      return;
    }
    const key = field(e, 'key');
    if (typeof key !== 'string') p.add(`${at}.key`, key === undefined || key === null ? 'is required' : `must be a string, not ${show(key)}`);
    else {
      const bad = labelKeyProblem(key);
      if (bad !== undefined) p.add(`${at}.key`, bad);
    }
    const op = field(e, 'operator');
    if (!OPERATORS.includes(op as SelectorRequirement['operator'])) {
      p.add(`${at}.operator`, `${show(op)} is not one of In, NotIn, Exists, DoesNotExist`);
      return;
    }
    const operator = op as SelectorRequirement['operator'];
    const values: string[] = [];
    list(e, 'values', `${at}.values`, p, LIMITS.labels).forEach((value, j) => {
      if (typeof value !== 'string') p.add(`${at}.values[${j}]`, `must be a string, not ${show(value)}`);
      else {
        const bad = labelValueProblem(value);
        if (bad !== undefined) p.add(`${at}.values[${j}]`, bad);
        values.push(value);
      }
    });
    if ((operator === 'In' || operator === 'NotIn') && values.length === 0) p.add(`${at}.values`, `must have at least one value for ${operator}`);
    if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) p.add(`${at}.values`, `must be empty for ${operator}`);
    if (typeof key === 'string') out.matchExpressions.push({ key, operator, values });
  });
  return out;
}

/** A CIDR with its host bits cleared ("10.1.2.3/8" → "10.0.0.0/8"), or a problem. */
function normalizeCidr(text: string): { cidr: string; family: 4 | 6; base: bigint; prefix: number } | string {
  if (text.length > 64) return `${show(text)} is not a CIDR`;
  const c = parseCidr(text);
  if (typeof c === 'string') return c;
  const bits = c.family === 4 ? 32 : 128;
  const mask = c.prefix === 0 ? 0n : ((1n << BigInt(c.prefix)) - 1n) << BigInt(bits - c.prefix);
  const base = addressToBigint(c.address, c.family) & mask;
  return { cidr: `${bigintToAddress(base, c.family)}/${c.prefix}`, family: c.family, base, prefix: c.prefix };
}

function ipBlock(v: Obj, path: string, p: Problems): IpBlock | undefined {
  const cidrText = field(v, 'cidr');
  if (typeof cidrText !== 'string' || cidrText === '') {
    p.add(`${path}.cidr`, cidrText === undefined || cidrText === null || cidrText === '' ? 'is required' : `must be a string, not ${show(cidrText)}`);
    return undefined;
  }
  const cidr = normalizeCidr(cidrText);
  if (typeof cidr === 'string') {
    p.add(`${path}.cidr`, cidr);
    return undefined;
  }
  const except: string[] = [];
  list(v, 'except', `${path}.except`, p).forEach((e, i) => {
    const at = `${path}.except[${i}]`;
    if (typeof e !== 'string') {
      p.add(at, `must be a string, not ${show(e)}`);
      return;
    }
    const x = normalizeCidr(e);
    if (typeof x === 'string') {
      p.add(at, x);
      return;
    }
    const bits = cidr.family === 4 ? 32 : 128;
    const inside = x.family === cidr.family && x.prefix > cidr.prefix && x.base >> BigInt(bits - cidr.prefix) === cidr.base >> BigInt(bits - cidr.prefix);
    if (!inside) p.add(at, `${show(e)} is not a strict subset of the cidr ${cidr.cidr}`);
    else except.push(x.cidr);
  });
  return { cidr: cidr.cidr, except };
}

function peer(v: unknown, path: string, p: Problems): PolicyPeer | undefined {
  if (!isObj(v)) {
    p.add(path, `must be an object, not ${show(v)}`);
    return undefined;
  }
  const before = p.count;
  const rawPod = field(v, 'podSelector');
  const rawNs = field(v, 'namespaceSelector');
  const rawBlock = object(v, 'ipBlock', `${path}.ipBlock`, p);
  const hasPod = rawPod !== undefined && rawPod !== null;
  const hasNs = rawNs !== undefined && rawNs !== null;
  if (rawBlock !== undefined && (hasPod || hasNs)) {
    p.add(path, 'may not have both an ipBlock and a podSelector or namespaceSelector');
    return undefined;
  }
  if (rawBlock === undefined && !hasPod && !hasNs) {
    if (p.count === before) p.add(path, 'must name a peer: podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  const out: PolicyPeer = {
    podSelector: hasPod ? selector(rawPod, `${path}.podSelector`, p) : undefined,
    namespaceSelector: hasNs ? selector(rawNs, `${path}.namespaceSelector`, p) : undefined,
    ipBlock: rawBlock === undefined ? undefined : ipBlock(rawBlock, `${path}.ipBlock`, p),
  };
  return out;
}

function port(v: unknown, path: string, p: Problems): PolicyPort | undefined {
  if (!isObj(v)) {
    p.add(path, `must be an object, not ${show(v)}`);
    return undefined;
  }
  const rawProtocol = field(v, 'protocol');
  let protocol: PolicyProtocol = 'TCP';
  if (rawProtocol !== undefined && rawProtocol !== null) {
    if (!PROTOCOLS.includes(rawProtocol as PolicyProtocol)) p.add(`${path}.protocol`, `${show(rawProtocol)} is not one of TCP, UDP, SCTP`);
    else protocol = rawProtocol as PolicyProtocol;
  }
  const rawPort = field(v, 'port');
  let portValue: number | string | undefined;
  if (rawPort === undefined || rawPort === null) portValue = undefined;
  else if (typeof rawPort === 'number') {
    if (!isPortNumber(rawPort)) p.add(`${path}.port`, `${show(rawPort)} is not a port (1-65535)`);
    else portValue = rawPort;
  } else if (typeof rawPort === 'string') {
    const bad = portNameProblem(rawPort);
    if (bad !== undefined) p.add(`${path}.port`, bad);
    else portValue = rawPort;
  } else p.add(`${path}.port`, `must be a number or a port name, not ${show(rawPort)}`);
  const rawEnd = field(v, 'endPort');
  let endPort: number | undefined;
  if (rawEnd !== undefined && rawEnd !== null) {
    if (!isPortNumber(rawEnd)) p.add(`${path}.endPort`, `${show(rawEnd)} is not a port (1-65535)`);
    else if (rawPort === undefined || rawPort === null) p.add(`${path}.endPort`, 'needs a port');
    else if (typeof rawPort === 'string') p.add(`${path}.endPort`, 'may not be given with a named port');
    else if (typeof rawPort === 'number' && rawEnd < rawPort) p.add(`${path}.endPort`, `${rawEnd} is less than the port ${rawPort}`);
    else endPort = rawEnd;
  }
  return { protocol, port: portValue, endPort };
}

function rules(spec: Obj, name: 'ingress' | 'egress', peersField: 'from' | 'to', p: Problems): PolicyRule[] {
  const out: PolicyRule[] = [];
  list(spec, name, `spec.${name}`, p).forEach((r, i) => {
    const at = `spec.${name}[${i}]`;
    if (!isObj(r)) {
      p.add(at, `must be an object, not ${show(r)}`);
      return;
    }
    const peers: PolicyPeer[] = [];
    list(r, peersField, `${at}.${peersField}`, p).forEach((x, j) => {
      const got = peer(x, `${at}.${peersField}[${j}]`, p);
      if (got !== undefined) peers.push(got);
    });
    const ports: PolicyPort[] = [];
    list(r, 'ports', `${at}.ports`, p).forEach((x, j) => {
      const got = port(x, `${at}.ports[${j}]`, p);
      if (got !== undefined) ports.push(got);
    });
    out.push({ peers, ports });
  });
  return out;
}

/** "Kind ns/name" for a problem's `where`, from whatever the metadata holds. */
function describeObject(kind: string, o: unknown, namespaced: boolean): string {
  const meta = isObj(o) ? field(o, 'metadata') : undefined;
  const name = isObj(meta) ? field(meta, 'name') : undefined;
  const ns = isObj(meta) ? field(meta, 'namespace') : undefined;
  const n = typeof name === 'string' && name !== '' ? name.slice(0, 253) : '(no name)';
  if (!namespaced) return `${kind} ${n}`;
  return `${kind} ${typeof ns === 'string' && ns !== '' ? ns.slice(0, 63) : 'default'}/${n}`;
}

function whereOf(kind: string, o: unknown, namespaced: boolean, where: string | undefined): string {
  const what = describeObject(kind, o, namespaced);
  return where === undefined ? what : `${where} (${what})`;
}

/** metadata.name and metadata.namespace (absent: "default", as kubectl does) checked. */
function metadata(o: Obj, namespaced: boolean, nameCheck: (s: string) => string | undefined, p: Problems): { name: string; namespace: string; meta: Obj } {
  const meta = object(o, 'metadata', 'metadata', p) ?? {};
  const name = field(meta, 'name');
  let okName = '';
  if (typeof name !== 'string' || name === '') p.add('metadata.name', name === undefined || name === null || name === '' ? 'is required' : `must be a string, not ${show(name)}`);
  else {
    const bad = nameCheck(name);
    if (bad !== undefined) p.add('metadata.name', bad);
    okName = name;
  }
  let namespace = '';
  if (namespaced) {
    const ns = field(meta, 'namespace');
    if (ns === undefined || ns === null || ns === '') namespace = 'default';
    else if (typeof ns !== 'string') p.add('metadata.namespace', `must be a string, not ${show(ns)}`);
    else {
      const bad = dnsLabelProblem(ns);
      if (bad !== undefined) p.add('metadata.namespace', bad);
      namespace = ns;
    }
  }
  return { name: okName, namespace, meta };
}

/**
 * A networking.k8s.io/v1 NetworkPolicy. `where` says where it came from for the problems
 * ("policies.yaml document 3"); each problem's `where` adds "NetworkPolicy ns/name".
 */
export function parseNetworkPolicy(obj: unknown, where?: string): ParseResult<NetworkPolicy> {
  const at = whereOf('NetworkPolicy', obj, true, where);
  const p = new Problems();
  if (!isObj(obj)) {
    p.add('', `a NetworkPolicy must be an object, not ${show(obj)}`);
    return { problems: p.result(at) };
  }
  const { name, namespace } = metadata(obj, true, dnsSubdomainProblem, p);
  const spec = field(obj, 'spec');
  if (!isObj(spec)) {
    p.add('spec', spec === undefined || spec === null ? 'is required' : `must be an object, not ${show(spec)}`);
    return { problems: p.result(at) };
  }
  const podSelector = selector(field(spec, 'podSelector'), 'spec.podSelector', p);
  const ingressRules = rules(spec, 'ingress', 'from', p);
  const egressRules = rules(spec, 'egress', 'to', p);
  const types = list(spec, 'policyTypes', 'spec.policyTypes', p);
  if (types.length > 2) p.add('spec.policyTypes', `has ${types.length} entries, at most 2 (Ingress, Egress)`);
  types.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') p.add(`spec.policyTypes[${i}]`, `${show(t)} is not Ingress or Egress`);
  });
  if (p.count > 0) return { problems: p.result(at) };
  const listed = types.length > 0;
  return {
    ok: {
      namespace,
      name,
      podSelector,
      ingress: listed ? types.includes('Ingress') : true,
      egress: listed ? types.includes('Egress') : egressRules.length > 0,
      ingressRules,
      egressRules,
    },
  };
}

function normalizeIp(text: string): string | undefined {
  const family = text.length <= 45 ? isIP(text) : 0;
  if (family === 0) return undefined;
  return bigintToAddress(addressToBigint(text, family as 4 | 6), family as 4 | 6);
}

function containerPorts(spec: Obj, p: Problems): NamedPort[] {
  const out: NamedPort[] = [];
  const containers: [string, unknown][] = list(spec, 'containers', 'spec.containers', p, LIMITS.containers).map((c, i) => [`spec.containers[${i}]`, c]);
  // Sidecars (init containers that keep running) serve their ports too.
  list(spec, 'initContainers', 'spec.initContainers', p, LIMITS.containers).forEach((c, i) => {
    if (isObj(c) && field(c, 'restartPolicy') === 'Always') containers.push([`spec.initContainers[${i}]`, c]);
  });
  for (const [at, c] of containers) {
    if (!isObj(c)) {
      p.add(at, `must be an object, not ${show(c)}`);
      continue;
    }
    list(c, 'ports', `${at}.ports`, p, LIMITS.containers).forEach((x, j) => {
      const pat = `${at}.ports[${j}]`;
      if (!isObj(x)) {
        p.add(pat, `must be an object, not ${show(x)}`);
        return;
      }
      const number = field(x, 'containerPort');
      if (!isPortNumber(number)) p.add(`${pat}.containerPort`, `${show(number)} is not a port (1-65535)`);
      const rawProtocol = field(x, 'protocol');
      const protocol = rawProtocol === undefined || rawProtocol === null ? 'TCP' : rawProtocol;
      if (!PROTOCOLS.includes(protocol as PolicyProtocol)) p.add(`${pat}.protocol`, `${show(rawProtocol)} is not one of TCP, UDP, SCTP`);
      const name = optionalString(x, 'name', `${pat}.name`, p);
      if (name === undefined || name === '') return;
      const bad = portNameProblem(name);
      if (bad !== undefined) p.add(`${pat}.name`, bad);
      else if (isPortNumber(number) && PROTOCOLS.includes(protocol as PolicyProtocol)) out.push({ name, protocol: protocol as PolicyProtocol, port: number });
    });
  }
  return out;
}

/**
 * A v1 Pod: labels, addresses (status.podIPs, else status.podIP; none once the pod has Succeeded
 * or Failed, as its addresses may be reused), spec.nodeName, spec.hostNetwork, the named ports of
 * its containers (and sidecar init containers).
 */
export function parsePod(obj: unknown, where?: string): ParseResult<PolicyPod> {
  const at = whereOf('Pod', obj, true, where);
  const p = new Problems();
  if (!isObj(obj)) {
    p.add('', `a Pod must be an object, not ${show(obj)}`);
    return { problems: p.result(at) };
  }
  const { name, namespace, meta } = metadata(obj, true, dnsSubdomainProblem, p);
  const podLabels = labels(field(meta, 'labels'), 'metadata.labels', p);
  const spec = object(obj, 'spec', 'spec', p) ?? {};
  const node = optionalString(spec, 'nodeName', 'spec.nodeName', p);
  if (node !== undefined && node.length > 253) p.add('spec.nodeName', `${show(node)} is longer than 253 characters`);
  const rawHost = field(spec, 'hostNetwork');
  if (rawHost !== undefined && rawHost !== null && typeof rawHost !== 'boolean') p.add('spec.hostNetwork', `must be true or false, not ${show(rawHost)}`);
  const namedPorts = containerPorts(spec, p);
  const status = object(obj, 'status', 'status', p) ?? {};
  const phase = field(status, 'phase');
  const ips: string[] = [];
  const addIp = (v: unknown, path: string): void => {
    if (typeof v !== 'string') {
      p.add(path, `must be an IP address, not ${show(v)}`);
      return;
    }
    const ip = normalizeIp(v);
    if (ip === undefined) p.add(path, `${show(v)} is not an IP address`);
    else if (!ips.includes(ip)) ips.push(ip);
  };
  const podIPs = list(status, 'podIPs', 'status.podIPs', p, 2);
  podIPs.forEach((x, i) => {
    if (!isObj(x)) p.add(`status.podIPs[${i}]`, `must be an object, not ${show(x)}`);
    else addIp(field(x, 'ip'), `status.podIPs[${i}].ip`);
  });
  const podIP = field(status, 'podIP');
  if (podIPs.length === 0 && podIP !== undefined && podIP !== null && podIP !== '') addIp(podIP, 'status.podIP');
  if (ips.length === 2 && isIP(ips[0]!) === isIP(ips[1]!)) p.add('status.podIPs', 'has two addresses of one family');
  if (p.count > 0) return { problems: p.result(at) };
  const done = phase === 'Succeeded' || phase === 'Failed';
  return { ok: { namespace, name, labels: podLabels, ips: done ? [] : ips, namedPorts, node: node === '' ? undefined : node, hostNetwork: rawHost === true } };
}

/** A v1 Namespace: its name and labels, with `kubernetes.io/metadata.name` = its name (as the API server sets it). */
export function parseNamespace(obj: unknown, where?: string): ParseResult<PolicyNamespace> {
  const at = whereOf('Namespace', obj, false, where);
  const p = new Problems();
  if (!isObj(obj)) {
    p.add('', `a Namespace must be an object, not ${show(obj)}`);
    return { problems: p.result(at) };
  }
  const { name, meta } = metadata(obj, false, dnsLabelProblem, p);
  const nsLabels = labels(field(meta, 'labels'), 'metadata.labels', p);
  if (p.count > 0) return { problems: p.result(at) };
  nsLabels[NAMESPACE_NAME_LABEL] = name;
  return { ok: { name, labels: nsLabels } };
}

/** A namespace known only by name (named by a pod or a policy, not described). */
export function implicitNamespace(name: string): PolicyNamespace {
  const l = Object.create(null) as Record<string, string>;
  l[NAMESPACE_NAME_LABEL] = name;
  return { name, labels: l };
}
