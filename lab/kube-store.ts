/**
 * The fake API server's storage: Nodes and Namespaces (core/v1, cluster-scoped), Pods (core/v1),
 * Leases (coordination.k8s.io/v1) and NetworkPolicies (networking.k8s.io/v1, namespaced) in one store with one resourceVersion counter (as etcd), an event history that can
 * be compacted, label and field selectors, merge and JSON patches, and the `Status` bodies a
 * kube-apiserver answers with. No HTTP here (kube-api.ts).
 *
 * Facts taken from the Kubernetes sources (apimachinery `errors`, apiserver `registry/generic`,
 * `storage/cacher/watch_cache.go`):
 * - NotFound: `nodes "n1" not found`, `leases.coordination.k8s.io "x" not found`; details {name,
 *   group (omitted when empty), kind: the resource}. AlreadyExists: `... already exists`.
 * - Conflict: `Operation cannot be fulfilled on nodes "n1": the object has been modified; please
 *   apply your changes to the latest version and try again`.
 * - A watch from a resourceVersion older than the history: an ERROR event carrying a 410 Status,
 *   reason Expired, message `too old resource version: RV (OLDEST)`.
 * - DELETE of a Node or a Lease answers a Success Status with details {name, group, kind, uid}
 *   (their stores do not set ReturnDeletedObject).
 * - An update or patch that changes nothing writes nothing: same resourceVersion, no event.
 * - Updates of a Node through the main resource keep the stored status (the status strategy).
 */
import { randomUUID } from 'node:crypto';
import { compareText } from '../src/core/compare.js';

export type KubeKind = 'nodes' | 'leases' | 'pods' | 'namespaces' | 'networkpolicies';

export interface KubeResource {
  kind: KubeKind;
  /** "Node", "Lease". */
  objectKind: string;
  listKind: string;
  apiVersion: string;
  /** "" for the core group. */
  group: string;
  namespaced: boolean;
}

export const RESOURCES: Record<KubeKind, KubeResource> = {
  nodes: { kind: 'nodes', objectKind: 'Node', listKind: 'NodeList', apiVersion: 'v1', group: '', namespaced: false },
  leases: { kind: 'leases', objectKind: 'Lease', listKind: 'LeaseList', apiVersion: 'coordination.k8s.io/v1', group: 'coordination.k8s.io', namespaced: true },
  pods: { kind: 'pods', objectKind: 'Pod', listKind: 'PodList', apiVersion: 'v1', group: '', namespaced: true },
  namespaces: { kind: 'namespaces', objectKind: 'Namespace', listKind: 'NamespaceList', apiVersion: 'v1', group: '', namespaced: false },
  networkpolicies: { kind: 'networkpolicies', objectKind: 'NetworkPolicy', listKind: 'NetworkPolicyList', apiVersion: 'networking.k8s.io/v1', group: 'networking.k8s.io', namespaced: true },
};

/** The label the API server puts on every Namespace (its name), overriding what a client sends. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Namespaces carry their name as a label, as the API server's namespace strategy sets it. */
function defaultLabels(r: KubeResource, obj: KubeObject): void {
  if (r.kind !== 'namespaces') return;
  const labels = typeof obj.metadata['labels'] === 'object' && obj.metadata['labels'] !== null ? (obj.metadata['labels'] as Record<string, string>) : {};
  labels[NAMESPACE_NAME_LABEL] = nameOf(obj);
  obj.metadata['labels'] = labels;
}

export type KubeObject = Record<string, unknown> & { metadata: Record<string, unknown> };

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: Record<string, unknown>;
  code: number;
}

/** A refusal with the Status the API server answers and its HTTP code. */
export class KubeStatusError extends Error {
  readonly status: StatusBody;

  constructor(code: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'KubeStatusError';
    const body: StatusBody = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
    if (details !== undefined) body.details = details;
    this.status = body;
  }
}

function qualified(r: KubeResource): string {
  return r.group === '' ? r.kind : `${r.kind}.${r.group}`;
}

function details(r: KubeResource, name: string): Record<string, unknown> {
  return r.group === '' ? { name, kind: r.kind } : { name, group: r.group, kind: r.kind };
}

export const statusErrors = {
  notFound: (r: KubeResource, name: string) => new KubeStatusError(404, 'NotFound', `${qualified(r)} "${name}" not found`, details(r, name)),
  alreadyExists: (r: KubeResource, name: string) => new KubeStatusError(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, details(r, name)),
  conflict: (r: KubeResource, name: string) =>
    new KubeStatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, details(r, name)),
  expired: (rv: number, oldest: number) => new KubeStatusError(410, 'Expired', `too old resource version: ${rv} (${oldest})`),
  badRequest: (message: string) => new KubeStatusError(400, 'BadRequest', message),
  invalid: (r: KubeResource, name: string, causes: string) =>
    new KubeStatusError(422, 'Invalid', `${r.objectKind} "${name}" is invalid: ${causes}`, { ...details(r, name), causes: [{ message: causes }] }),
  notFoundPath: () => new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource', {}),
};

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  kind: KubeKind;
  namespace: string;
  rv: number;
  object: KubeObject;
  /** The object before a MODIFIED (a watch with a selector turns a change of match into ADDED or DELETED). */
  prev?: KubeObject;
}

export interface Selector {
  labels: ((l: Record<string, string>) => boolean)[];
  name?: string;
  namespace?: string;
}

function key(kind: KubeKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** JSON with sorted keys, to tell whether a write changes anything. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export class KubeStore {
  private rv = 1;
  private readonly objects = new Map<string, KubeObject>();
  private history: WatchEvent[] = [];
  /** The oldest resourceVersion a watch can start from (events after it are all kept). */
  private floor = 1;
  private readonly historyLimit: number;
  private readonly listeners = new Set<(e: WatchEvent) => void>();
  private readonly now: () => Date;

  constructor(init: { historyLimit?: number; now?: () => Date } = {}) {
    this.historyLimit = init.historyLimit ?? 1000;
    this.now = init.now ?? (() => new Date());
  }

  get resourceVersion(): number {
    return this.rv;
  }

  subscribe(fn: (e: WatchEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get(kind: KubeKind, namespace: string, name: string): KubeObject | undefined {
    const o = this.objects.get(key(kind, namespace, name));
    return o === undefined ? undefined : clone(o);
  }

  list(kind: KubeKind, namespace: string | undefined, sel: Selector = { labels: [] }): KubeObject[] {
    const out: KubeObject[] = [];
    for (const o of this.objects.values()) {
      if (objectKindOf(o) !== kind) continue;
      if (matches(o, namespace, sel)) out.push(clone(o));
    }
    // In etcd's key order: namespace, then name.
    const nsOf = (o: KubeObject): string => (typeof o.metadata['namespace'] === 'string' ? o.metadata['namespace'] : '');
    return out.sort((a, b) => compareText(nsOf(a), nsOf(b)) || compareText(nameOf(a), nameOf(b)));
  }

  create(r: KubeResource, namespace: string, body: KubeObject): KubeObject {
    const name = nameOf(body);
    if (name === '') throw statusErrors.invalid(r, '', 'metadata.name: Required value: name or generateName is required');
    const k = key(r.kind, namespace, name);
    if (this.objects.has(k)) throw statusErrors.alreadyExists(r, name);
    const obj = clone(body);
    obj['kind'] = r.objectKind;
    obj['apiVersion'] = r.apiVersion;
    const meta = obj.metadata;
    delete meta['resourceVersion'];
    meta['uid'] = randomUUID();
    meta['creationTimestamp'] = this.now().toISOString().replace(/\.\d+Z$/, 'Z');
    if (r.namespaced) meta['namespace'] = namespace;
    else delete meta['namespace'];
    defaultLabels(r, obj);
    return this.write(r.kind, namespace, k, obj, 'ADDED');
  }

  /** PUT: a stale metadata.resourceVersion is a Conflict; none means unconditional (as for Nodes and Leases). */
  update(r: KubeResource, namespace: string, name: string, body: KubeObject): KubeObject {
    const k = key(r.kind, namespace, name);
    const old = this.objects.get(k);
    if (old === undefined) throw statusErrors.notFound(r, name);
    const want = body.metadata['resourceVersion'];
    if (want !== undefined && want !== '' && want !== old.metadata['resourceVersion']) throw statusErrors.conflict(r, name);
    const obj = clone(body);
    obj['kind'] = r.objectKind;
    obj['apiVersion'] = r.apiVersion;
    obj.metadata['uid'] = old.metadata['uid'];
    obj.metadata['creationTimestamp'] = old.metadata['creationTimestamp'];
    if (r.namespaced) obj.metadata['namespace'] = namespace;
    if (r.kind === 'nodes') {
      if (old['status'] === undefined) delete obj['status'];
      else obj['status'] = clone(old['status']);
    }
    defaultLabels(r, obj);
    return this.writeIfChanged(r.kind, namespace, k, old, obj);
  }

  /** Node status as the kubelet writes it (the fake's own control, not an API call). */
  setStatus(r: KubeResource, namespace: string, name: string, status: unknown): KubeObject {
    const k = key(r.kind, namespace, name);
    const old = this.objects.get(k);
    if (old === undefined) throw statusErrors.notFound(r, name);
    const obj = clone(old);
    obj['status'] = clone(status);
    return this.writeIfChanged(r.kind, namespace, k, old, obj);
  }

  patch(r: KubeResource, namespace: string, name: string, contentType: string, patch: unknown): KubeObject {
    const k = key(r.kind, namespace, name);
    const old = this.objects.get(k);
    if (old === undefined) throw statusErrors.notFound(r, name);
    let next: unknown;
    if (contentType === 'application/json-patch+json') {
      next = applyJsonPatch(clone(old), patch);
    } else {
      if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw statusErrors.badRequest('error decoding patch: a merge patch must be a JSON object');
      const want = (patch as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion;
      if (typeof want === 'string' && want !== '' && want !== old.metadata['resourceVersion']) throw statusErrors.conflict(r, name);
      next = mergePatch(clone(old), patch);
    }
    if (typeof next !== 'object' || next === null || typeof (next as KubeObject).metadata !== 'object') throw statusErrors.badRequest('the patch removes the object metadata');
    const obj = next as KubeObject;
    if (nameOf(obj) !== name) throw statusErrors.badRequest(`the name of the object (${nameOf(obj)}) does not match the name on the URL (${name})`);
    obj['kind'] = r.objectKind;
    obj['apiVersion'] = r.apiVersion;
    obj.metadata['uid'] = old.metadata['uid'];
    obj.metadata['creationTimestamp'] = old.metadata['creationTimestamp'];
    obj.metadata['resourceVersion'] = old.metadata['resourceVersion'];
    if (r.kind === 'nodes') {
      if (old['status'] === undefined) delete obj['status'];
      else obj['status'] = clone(old['status']);
    }
    defaultLabels(r, obj);
    return this.writeIfChanged(r.kind, namespace, k, old, obj);
  }

  delete(r: KubeResource, namespace: string, name: string, preconditions?: { resourceVersion?: unknown; uid?: unknown }): KubeObject {
    const k = key(r.kind, namespace, name);
    const old = this.objects.get(k);
    if (old === undefined) throw statusErrors.notFound(r, name);
    const rv = preconditions?.resourceVersion;
    if (typeof rv === 'string' && rv !== old.metadata['resourceVersion']) {
      throw new KubeStatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": Precondition failed: ResourceVersion in precondition: ${rv}, ResourceVersion in object meta: ${String(old.metadata['resourceVersion'])}`, details(r, name));
    }
    const uid = preconditions?.uid;
    if (typeof uid === 'string' && uid !== old.metadata['uid']) {
      throw new KubeStatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${String(old.metadata['uid'])}`, details(r, name));
    }
    this.objects.delete(k);
    const obj = clone(old);
    // A DELETED event carries the object at the deletion's resourceVersion.
    this.rv++;
    obj.metadata['resourceVersion'] = String(this.rv);
    this.record({ type: 'DELETED', kind: r.kind, namespace, rv: this.rv, object: obj });
    return clone(obj);
  }

  /**
   * The events a watch from `rv` must see (those after it), or 410 when the history no longer
   * holds them all (the watch cache's `resourceVersion < oldest-1`).
   */
  since(rv: number): WatchEvent[] {
    if (rv < this.floor) throw statusErrors.expired(rv, this.floor);
    return this.history.filter((e) => e.rv > rv);
  }

  /** Forgets the history: a watch from before now is answered 410. */
  compact(): void {
    this.history = [];
    this.floor = this.rv;
  }

  private writeIfChanged(kind: KubeKind, namespace: string, k: string, old: KubeObject, obj: KubeObject): KubeObject {
    const strip = (o: KubeObject) => ({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
    if (canonical(strip(old)) === canonical(strip(obj))) return clone(old);
    return this.write(kind, namespace, k, obj, 'MODIFIED', old);
  }

  private write(kind: KubeKind, namespace: string, k: string, obj: KubeObject, type: 'ADDED' | 'MODIFIED', prev?: KubeObject): KubeObject {
    this.rv++;
    obj.metadata['resourceVersion'] = String(this.rv);
    this.objects.set(k, obj);
    const e: WatchEvent = { type, kind, namespace, rv: this.rv, object: clone(obj) };
    if (prev !== undefined) e.prev = prev;
    this.record(e);
    return clone(obj);
  }

  private record(e: WatchEvent): void {
    this.history.push(e);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.shift()!;
      this.floor = dropped.rv;
    }
    for (const fn of this.listeners) fn(e);
  }
}

export function nameOf(o: KubeObject): string {
  const n = o.metadata['name'];
  return typeof n === 'string' ? n : '';
}

function objectKindOf(o: KubeObject): KubeKind | undefined {
  for (const r of Object.values(RESOURCES)) if (o['kind'] === r.objectKind) return r.kind;
  return undefined;
}

export function matches(o: KubeObject, namespace: string | undefined, sel: Selector): boolean {
  const ns = typeof o.metadata['namespace'] === 'string' ? o.metadata['namespace'] : '';
  if (namespace !== undefined && namespace !== '' && ns !== namespace) return false;
  if (sel.namespace !== undefined && ns !== sel.namespace) return false;
  if (sel.name !== undefined && nameOf(o) !== sel.name) return false;
  const labels = (o.metadata['labels'] ?? {}) as Record<string, string>;
  return sel.labels.every((f) => f(labels));
}

/** `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma-separated. */
export function parseLabelSelector(text: string): Selector['labels'] {
  const out: Selector['labels'] = [];
  const parts = text.trim() === '' ? [] : splitTop(text);
  for (const raw of parts) {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(p)) !== null) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      out.push(op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v);
    } else if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p)) !== null) {
      const [, k, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(list.split(',').map((s) => s.trim()));
      out.push(op === 'in' ? (l) => l[k] !== undefined && values.has(l[k]) : (l) => l[k] === undefined || !values.has(l[k]));
    } else if ((m = /^(!?)([\w./-]+)$/.exec(p)) !== null) {
      const [, not, k] = m as unknown as [string, string, string];
      out.push(not === '!' ? (l) => l[k] === undefined : (l) => l[k] !== undefined);
    } else {
      throw statusErrors.badRequest(`unable to parse requirement: found '${p}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }
  return out;
}

function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** `metadata.name=x`, `metadata.namespace=y` (the fields every resource supports). */
export function parseFieldSelector(text: string, sel: Selector): void {
  if (text.trim() === '') return;
  for (const raw of text.split(',')) {
    const m = /^\s*([\w.]+)\s*(==|=)\s*(.*?)\s*$/.exec(raw);
    if (m === null) throw statusErrors.badRequest(`invalid selector: '${text}'; can't understand '${raw}'`);
    const [, field, , value] = m as unknown as [string, string, string, string];
    if (field === 'metadata.name') sel.name = value;
    else if (field === 'metadata.namespace') sel.namespace = value;
    else throw statusErrors.badRequest(`field label not supported: ${field}`);
  }
}

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return clone(patch);
  const base = typeof target === 'object' && target !== null && !Array.isArray(target) ? (target as Record<string, unknown>) : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete base[k];
    else base[k] = mergePatch(base[k], v);
  }
  return base;
}

/** RFC 6902 (add, remove, replace, test, move, copy); a failed operation is 422 as the API server answers. */
export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw statusErrors.badRequest('error decoding patch: a JSON patch must be an array of operations');
  let root = doc;
  const fail = (why: string) => new KubeStatusError(422, 'Invalid', `the server rejected our request due to an error in our request: ${why}`);
  const parse = (path: unknown): string[] => {
    if (typeof path !== 'string' || (path !== '' && !path.startsWith('/'))) throw fail(`invalid path ${JSON.stringify(path)}`);
    return path === '' ? [] : path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  };
  const parent = (tokens: string[]): [Record<string, unknown> | unknown[], string] => {
    let cur: unknown = root;
    for (const t of tokens.slice(0, -1)) {
      if (typeof cur !== 'object' || cur === null) throw fail(`missing path element ${t}`);
      cur = (cur as Record<string, unknown>)[t];
    }
    if (typeof cur !== 'object' || cur === null) throw fail(`missing parent of /${tokens.join('/')}`);
    return [cur as Record<string, unknown>, tokens[tokens.length - 1]!];
  };
  const get = (tokens: string[]): unknown => {
    let cur: unknown = root;
    for (const t of tokens) {
      if (typeof cur !== 'object' || cur === null || !(t in (cur as object))) throw fail(`missing value at /${tokens.join('/')}`);
      cur = (cur as Record<string, unknown>)[t];
    }
    return cur;
  };
  const remove = (tokens: string[]): unknown => {
    const [p, last] = parent(tokens);
    if (Array.isArray(p)) return p.splice(Number(last), 1)[0];
    if (!(last in p)) throw fail(`missing value at /${tokens.join('/')}`);
    const v = p[last];
    delete p[last];
    return v;
  };
  const add = (tokens: string[], value: unknown): void => {
    if (tokens.length === 0) {
      root = value;
      return;
    }
    const [p, last] = parent(tokens);
    if (Array.isArray(p)) p.splice(last === '-' ? p.length : Number(last), 0, value);
    else p[last] = value;
  };
  for (const raw of ops) {
    const op = raw as { op?: unknown; path?: unknown; from?: unknown; value?: unknown };
    const path = parse(op.path);
    switch (op.op) {
      case 'add':
        add(path, clone(op.value));
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace':
        get(path);
        remove(path);
        add(path, clone(op.value));
        break;
      case 'test':
        if (canonical(get(path)) !== canonical(op.value)) throw fail(`testing value /${path.join('/')} failed`);
        break;
      case 'move':
        add(path, remove(parse(op.from)));
        break;
      case 'copy':
        add(path, clone(get(parse(op.from))));
        break;
      default:
        throw fail(`unexpected operation ${JSON.stringify(op.op)}`);
    }
  }
  return root;
}
