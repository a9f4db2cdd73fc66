/**
 * A fake Kubernetes API server for tests and the lab: Nodes, Leases, Namespaces, Pods and
 * NetworkPolicies over HTTP with a bearer
 * token, list and watch with resourceVersions, bookmarks, 410 Gone after `compact()`, 409 on a
 * stale update or a second create, and the means to hurt a client (drop its watches, stop and
 * restart the server). Plain `node:http`, no dependencies; the store is kube-store.ts.
 *
 * What it answers (as a kube-apiserver with its watch cache does):
 * - list: `{kind: NodeList, apiVersion, metadata: {resourceVersion}, items}` (items without kind
 *   and apiVersion). A list with an old resourceVersion is served from the current state ("not
 *   older than" semantics); only `resourceVersionMatch=Exact` of a compacted version is 410.
 *   `limit` is ignored (all items, no `continue`), which the API allows a server to do.
 * - watch: HTTP 200, then JSON lines `{type, object}`. Without a resourceVersion (or "0"), the
 *   current objects first as ADDED; from "N", the events after N, or one ERROR event with a 410
 *   Status (reason Expired) and the end of the stream when N is older than the history kept.
 *   BOOKMARK events (`allowWatchBookmarks=true`) every `bookmarkMs` carry `{kind, apiVersion,
 *   metadata: {resourceVersion}}`. The stream ends after `timeoutSeconds` (default 1800).
 *   With a selector, an object that starts or stops matching is seen as ADDED or DELETED.
 * - errors: a `Status` body with the right code (401 Unauthorized, 400 BadRequest, 404 NotFound,
 *   405 MethodNotAllowed, 409 AlreadyExists/Conflict, 415, 422 Invalid). A path outside /api and
 *   /apis answers `404 page not found` in plain text, as the real server's mux does.
 * - Leases, Pods, NetworkPolicies: every namespace exists (a real server answers 404 for an
 *   object in a missing namespace, and deletes a Namespace's objects with it; here they stay).
 *   Namespaces get their `kubernetes.io/metadata.name` label as a real server sets it.
 * - Pods: no status subresource; a PUT or patch writes the status with the rest (the control's
 *   updateObject is how a test gives a Pod its addresses). No validation of the objects' specs.
 *
 * Known differences, none of which weft's calls depend on: a real BOOKMARK carries an empty object
 * of the kind (zero-valued fields of a Node besides metadata.resourceVersion); a list from a
 * resourceVersion newer than the server's waits and may answer 504 (here: the current state);
 * no limit/continue paging, no managedFields, no generateName, no server-side apply (415), no
 * status subresource; merge and strategic merge patches are both RFC 7386 merges (the same for
 * the metadata maps weft patches). The fake could not be checked against a real kube-apiserver
 * here: current Kubernetes needs a newer Go than Debian's 1.19 and none is installed; the
 * answers follow the Kubernetes sources (apimachinery errors, the generic registry store, the
 * watch cache).
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  KubeStatusError,
  KubeStore,
  RESOURCES,
  matches,
  nameOf,
  parseFieldSelector,
  parseLabelSelector,
  statusErrors,
  type KubeKind,
  type KubeObject,
  type KubeResource,
  type Selector,
  type WatchEvent,
} from './kube-store.js';

export interface FakeKubeApiInit {
  host?: string;
  /** 0 (default): any free port, kept across restart(). */
  port?: number;
  /** Default: 32 random hex digits. */
  token?: string;
  /** Interval of BOOKMARK events on watches that allow them (default 1000 ms). */
  bookmarkMs?: number;
  /** Events kept for watches that resume (default 1000). */
  historyLimit?: number;
}

export interface V1NodeLike {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: { name: string; uid: string; resourceVersion: string; creationTimestamp: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
  status: { addresses: { type: string; address: string }[] };
}

export interface RequestRecord {
  method: string;
  /** Path and query string. */
  path: string;
  status: number;
}

interface OpenWatch {
  res: ServerResponse;
  close: () => void;
}

const PATCH_TYPES = new Set(['application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/json-patch+json']);

export class FakeKubeApi {
  readonly token: string;
  readonly requests: RequestRecord[] = [];
  private readonly store: KubeStore;
  private readonly host: string;
  private port: number;
  private readonly bookmarkMs: number;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<OpenWatch>();

  private constructor(init: FakeKubeApiInit) {
    this.host = init.host ?? '127.0.0.1';
    this.port = init.port ?? 0;
    this.token = init.token ?? randomBytes(16).toString('hex');
    this.bookmarkMs = init.bookmarkMs ?? 1000;
    this.store = new KubeStore({ historyLimit: init.historyLimit ?? 1000 });
  }

  static async start(init: FakeKubeApiInit = {}): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(init);
    await api.listen();
    return api;
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}`;
  }

  /** The store's current resourceVersion (the last write's). */
  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  /**
   * A kubeconfig (JSON, which is YAML) naming this server and its token; mode 0600. The server
   * speaks plain HTTP, which client-node only accepts with `insecure-skip-tls-verify: true`.
   */
  writeKubeconfig(path: string): void {
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'weft-fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'weft', user: { token: this.token } }],
      contexts: [{ name: 'weft-fake', context: { cluster: 'weft-fake', user: 'weft' } }],
      'current-context': 'weft-fake',
    };
    writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  }

  /** A Node as a kubelet registers it: InternalIP and Hostname addresses. Throws (409 Status) when it exists. */
  createNode(n: { name: string; internalIP?: string; annotations?: Record<string, string>; labels?: Record<string, string> }): V1NodeLike {
    const addresses = [...(n.internalIP === undefined ? [] : [{ type: 'InternalIP', address: n.internalIP }]), { type: 'Hostname', address: n.name }];
    const metadata: Record<string, unknown> = { name: n.name, labels: { 'kubernetes.io/hostname': n.name, ...n.labels } };
    if (n.annotations !== undefined) metadata['annotations'] = { ...n.annotations };
    return this.store.create(RESOURCES.nodes, '', { metadata, spec: {}, status: { addresses } }) as unknown as V1NodeLike;
  }

  /** A merge patch on a Node (as an operator's `kubectl annotate` does). */
  patchNode(name: string, patch: Record<string, unknown>): V1NodeLike {
    return this.store.patch(RESOURCES.nodes, '', name, 'application/merge-patch+json', patch) as unknown as V1NodeLike;
  }

  deleteNode(name: string): void {
    this.store.delete(RESOURCES.nodes, '', name);
  }

  /**
   * Creates any kind of object (a Pod, a Namespace, a NetworkPolicy...) as a client's POST does;
   * a namespaced one goes in metadata.namespace (default "default"). Throws a 409 Status when it exists.
   */
  createObject(kind: KubeKind, obj: Record<string, unknown>): KubeObject {
    const r = RESOURCES[kind];
    const body = objectWithMetadata(obj);
    return this.store.create(r, namespaceOf(r, body), body);
  }

  /**
   * Replaces an object as a PUT does (a stale metadata.resourceVersion is a 409; none is
   * unconditional). The status is replaced with the rest (the fake has no status subresource:
   * this is also how a test sets a Pod's addresses or phase), except a Node's, which is kept.
   */
  updateObject(kind: KubeKind, obj: Record<string, unknown>): KubeObject {
    const r = RESOURCES[kind];
    const body = objectWithMetadata(obj);
    return this.store.update(r, namespaceOf(r, body), nameOf(body), body);
  }

  /** A merge patch (RFC 7386) on any object. */
  patchObject(kind: KubeKind, name: string, patch: Record<string, unknown>, namespace = 'default'): KubeObject {
    const r = RESOURCES[kind];
    return this.store.patch(r, r.namespaced ? namespace : '', name, 'application/merge-patch+json', patch);
  }

  deleteObject(kind: KubeKind, name: string, namespace = 'default'): void {
    const r = RESOURCES[kind];
    this.store.delete(r, r.namespaced ? namespace : '', name);
  }

  getObject(kind: KubeKind, name: string, namespace = ''): object | undefined {
    return this.store.get(kind, RESOURCES[kind].namespaced ? namespace : '', name);
  }

  listObjects(kind: KubeKind, namespace?: string): object[] {
    return this.store.list(kind, namespace);
  }

  compact(): void {
    this.store.compact();
  }

  /** Ends every open watch stream cleanly (as an API server's timeout or restart does); `abrupt` resets their connections instead. */
  dropWatches(abrupt = false): void {
    for (const w of [...this.watches]) {
      w.close();
      if (abrupt) w.res.socket?.destroy();
      else w.res.end();
    }
  }

  /** The server goes away: connections refused and open ones reset; the state is kept. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const w of [...this.watches]) w.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Back on the same address and port with the same state. */
  async restart(): Promise<void> {
    if (this.server !== undefined) return;
    await this.listen();
  }

  private async listen(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr !== null && typeof addr === 'object') this.port = addr.port;
    this.server = server;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        this.route(req, res, Buffer.concat(chunks));
      } catch (err) {
        const status = err instanceof KubeStatusError ? err.status : new KubeStatusError(500, 'InternalError', `Internal error occurred: ${String(err)}`).status;
        this.send(req, res, status.code, status);
      }
    });
  }

  private send(req: IncomingMessage, res: ServerResponse, code: number, body: unknown): void {
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', status: code });
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private route(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      this.send(req, res, 401, new KubeStatusError(401, 'Unauthorized', 'Unauthorized').status);
      return;
    }
    const path = url.pathname.replace(/\/+$/, '');
    if (!path.startsWith('/api/') && !path.startsWith('/apis/') && path !== '/api' && path !== '/apis') {
      this.requests.push({ method, path: req.url ?? '', status: 404 });
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
      return;
    }
    const target = parsePath(path);
    if (target === undefined) throw statusErrors.notFoundPath();
    const { resource: r, namespace, name } = target;
    const q = url.searchParams;
    if (name === undefined) {
      if (method === 'GET' && q.get('watch') === 'true') return this.watch(req, res, r, namespace, q);
      if (method === 'GET') return this.send(req, res, 200, this.list(r, namespace, q));
      if (method === 'POST' && namespace !== undefined) return this.send(req, res, 201, this.store.create(r, namespace, this.objectBody(r, body, namespace)));
    } else {
      const ns = namespace ?? '';
      if (method === 'GET') {
        const o = this.store.get(r.kind, ns, name);
        if (o === undefined) throw statusErrors.notFound(r, name);
        return this.send(req, res, 200, o);
      }
      if (method === 'PUT') {
        const o = this.objectBody(r, body, ns);
        if (nameOf(o) !== name) throw statusErrors.badRequest(`the name of the object (${nameOf(o)}) does not match the name on the URL (${name})`);
        return this.send(req, res, 200, this.store.update(r, ns, name, o));
      }
      if (method === 'PATCH') {
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        if (!PATCH_TYPES.has(type)) {
          throw new KubeStatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${[...PATCH_TYPES].join(', ')}`);
        }
        return this.send(req, res, 200, this.store.patch(r, ns, name, type, parseJson(body, 'error decoding patch')));
      }
      if (method === 'DELETE') {
        const opts = body.length === 0 ? {} : (parseJson(body, "couldn't decode DeleteOptions") as { preconditions?: { resourceVersion?: unknown; uid?: unknown } });
        const gone = this.store.delete(r, ns, name, opts?.preconditions);
        const details: Record<string, unknown> = r.group === '' ? { name, kind: r.kind, uid: gone.metadata['uid'] } : { name, group: r.group, kind: r.kind, uid: gone.metadata['uid'] };
        return this.send(req, res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details });
      }
    }
    throw new KubeStatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }

  private objectBody(r: KubeResource, body: Buffer, namespace: string): KubeObject {
    const o = parseJson(body, `the object provided is unrecognized (must be of type ${r.objectKind})`);
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw statusErrors.badRequest(`the object provided is unrecognized (must be of type ${r.objectKind})`);
    const obj = o as KubeObject;
    if (typeof obj.metadata !== 'object' || obj.metadata === null) obj.metadata = {};
    const kind = obj['kind'];
    if (kind !== undefined && kind !== r.objectKind) throw statusErrors.badRequest(`the object provided is unrecognized (must be of type ${r.objectKind}): kind ${String(kind)}`);
    const ns = obj.metadata['namespace'];
    if (r.namespaced && typeof ns === 'string' && ns !== '' && ns !== namespace) {
      throw statusErrors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    return obj;
  }

  private selector(q: URLSearchParams): Selector {
    const sel: Selector = { labels: parseLabelSelector(q.get('labelSelector') ?? '') };
    parseFieldSelector(q.get('fieldSelector') ?? '', sel);
    return sel;
  }

  private list(r: KubeResource, namespace: string | undefined, q: URLSearchParams): object {
    const sel = this.selector(q);
    const rv = q.get('resourceVersion') ?? '';
    if (q.get('resourceVersionMatch') === 'Exact' && rv !== String(this.store.resourceVersion)) {
      throw new KubeStatusError(410, 'Expired', `The resourceVersion for the provided list is too old.`);
    }
    const items = this.store.list(r.kind, namespace, sel).map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
    return { kind: r.listKind, apiVersion: r.apiVersion, metadata: { resourceVersion: String(this.store.resourceVersion) }, items };
  }

  private watch(req: IncomingMessage, res: ServerResponse, r: KubeResource, namespace: string | undefined, q: URLSearchParams): void {
    const sel = this.selector(q);
    const rvText = q.get('resourceVersion') ?? '';
    if (rvText !== '' && !/^\d+$/.test(rvText)) throw statusErrors.badRequest(`invalid resource version: ${rvText}`);
    const timeout = Number(q.get('timeoutSeconds') ?? '1800');
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const line = (o: unknown) => res.write(`${JSON.stringify(o)}\n`);
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', status: 200 });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();

    const rv = rvText === '' ? 0 : Number(rvText);
    let backlog: WatchEvent[] | undefined;
    if (rv !== 0) {
      try {
        backlog = this.store.since(rv);
      } catch (err) {
        if (!(err instanceof KubeStatusError)) throw err;
        line({ type: 'ERROR', object: err.status });
        res.end();
        return;
      }
    }
    const emit = (e: WatchEvent): void => {
      if (e.kind !== r.kind) return;
      const now = matches(e.object, namespace, sel);
      const before = e.prev === undefined ? now : matches(e.prev, namespace, sel);
      if (!now && !before) return;
      const type = e.type === 'MODIFIED' && now !== before ? (now ? 'ADDED' : 'DELETED') : e.type;
      line({ type, object: e.object });
    };
    if (backlog === undefined) {
      for (const o of this.store.list(r.kind, namespace, sel)) line({ type: 'ADDED', object: o });
    } else {
      for (const e of backlog) emit(e);
    }
    const unsubscribe = this.store.subscribe(emit);
    const bookmark = bookmarks
      ? setInterval(() => line({ type: 'BOOKMARK', object: { kind: r.objectKind, apiVersion: r.apiVersion, metadata: { resourceVersion: String(this.store.resourceVersion) } } }), this.bookmarkMs)
      : undefined;
    const timer = setTimeout(() => {
      w.close();
      res.end();
    }, Math.max(1, timeout) * 1000);
    const w: OpenWatch = {
      res,
      close: () => {
        unsubscribe();
        if (bookmark !== undefined) clearInterval(bookmark);
        clearTimeout(timer);
        this.watches.delete(w);
      },
    };
    this.watches.add(w);
    res.on('close', () => w.close());
  }
}

function objectWithMetadata(obj: Record<string, unknown>): KubeObject {
  const o = structuredClone(obj);
  if (typeof o['metadata'] !== 'object' || o['metadata'] === null) o['metadata'] = {};
  return o as KubeObject;
}

function namespaceOf(r: KubeResource, o: KubeObject): string {
  if (!r.namespaced) return '';
  const ns = o.metadata['namespace'];
  return typeof ns === 'string' && ns !== '' ? ns : 'default';
}

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw statusErrors.badRequest(`${what}: json parse error: ${(err as Error).message}`);
  }
}

/** The resource, namespace and name a path addresses, or undefined (404). */
function parsePath(path: string): { resource: KubeResource; namespace: string | undefined; name: string | undefined } | undefined {
  const p = path.split('/').slice(1).map(decodeURIComponent);
  // /api/v1/nodes[/name]
  if (p[0] === 'api' && p[1] === 'v1' && p[2] === 'nodes' && p.length <= 4) return { resource: RESOURCES.nodes, namespace: '', name: p[3] };
  if (p[0] === 'api' && p[1] === 'v1') {
    // /api/v1/namespaces[/name]
    if (p[2] === 'namespaces' && p.length <= 4) return { resource: RESOURCES.namespaces, namespace: '', name: p[3] };
    // /api/v1/pods (every namespace, list and watch only)
    if (p[2] === 'pods' && p.length === 3) return { resource: RESOURCES.pods, namespace: undefined, name: undefined };
    // /api/v1/namespaces/NS/pods[/name]
    if (p[2] === 'namespaces' && p[3] !== undefined && p[4] === 'pods' && p.length <= 6) return { resource: RESOURCES.pods, namespace: p[3], name: p[5] };
  }
  if (p[0] === 'apis' && p[1] === 'networking.k8s.io' && p[2] === 'v1') {
    // /apis/networking.k8s.io/v1/networkpolicies (every namespace, list and watch only)
    if (p[3] === 'networkpolicies' && p.length === 4) return { resource: RESOURCES.networkpolicies, namespace: undefined, name: undefined };
    // /apis/networking.k8s.io/v1/namespaces/NS/networkpolicies[/name]
    if (p[3] === 'namespaces' && p[4] !== undefined && p[5] === 'networkpolicies' && p.length <= 7) return { resource: RESOURCES.networkpolicies, namespace: p[4], name: p[6] };
  }
  if (p[0] === 'apis' && p[1] === 'coordination.k8s.io' && p[2] === 'v1') {
    // /apis/coordination.k8s.io/v1/leases (every namespace, list and watch only)
    if (p[3] === 'leases' && p.length === 4) return { resource: RESOURCES.leases, namespace: undefined, name: undefined };
    // /apis/coordination.k8s.io/v1/namespaces/NS/leases[/name]
    if (p[3] === 'namespaces' && p[4] !== undefined && p[5] === 'leases' && p.length <= 7) return { resource: RESOURCES.leases, namespace: p[4], name: p[6] };
  }
  return undefined;
}
