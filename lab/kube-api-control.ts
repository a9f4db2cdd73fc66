/**
 * The control side of a fake API server run as a process (kube-api-main.ts): an HTTP API on a
 * Unix socket, no auth, offering FakeKubeApi's operations, and `KubeApiControl`, its client with
 * the same method names (async). `POST /call {method, args}` → 200 `{result}` or 400/500 `{error}`.
 */
import { createServer, request, type Server } from 'node:http';
import { existsSync, unlinkSync } from 'node:fs';
import { LabError } from './errors.js';
import type { FakeKubeApi, RequestRecord, V1NodeLike } from './kube-api.js';
import { KubeStatusError, type KubeKind } from './kube-store.js';

const METHODS = ['createNode', 'patchNode', 'deleteNode', 'createObject', 'updateObject', 'patchObject', 'deleteObject', 'getObject', 'listObjects', 'compact', 'dropWatches', 'stop', 'restart', 'writeKubeconfig', 'requests', 'info'] as const;
type Method = (typeof METHODS)[number];

export interface KubeApiInfo {
  url: string;
  token: string;
  resourceVersion: string;
}

/** Serves `api`'s control operations on `socketPath` (a stale socket file is replaced). */
export async function serveKubeApiControl(api: FakeKubeApi, socketPath: string): Promise<Server> {
  const call = async (method: Method, args: unknown[]): Promise<unknown> => {
    switch (method) {
      case 'createNode':
        return api.createNode(args[0] as Parameters<FakeKubeApi['createNode']>[0]);
      case 'patchNode':
        return api.patchNode(args[0] as string, args[1] as Record<string, unknown>);
      case 'deleteNode':
        return api.deleteNode(args[0] as string);
      case 'createObject':
        return api.createObject(args[0] as KubeKind, args[1] as Record<string, unknown>);
      case 'updateObject':
        return api.updateObject(args[0] as KubeKind, args[1] as Record<string, unknown>);
      case 'patchObject':
        return api.patchObject(args[0] as KubeKind, args[1] as string, args[2] as Record<string, unknown>, (args[3] as string | undefined) ?? undefined);
      case 'deleteObject':
        return api.deleteObject(args[0] as KubeKind, args[1] as string, (args[2] as string | undefined) ?? undefined);
      case 'getObject':
        return api.getObject(args[0] as KubeKind, args[1] as string, args[2] as string | undefined) ?? null;
      case 'listObjects':
        return api.listObjects(args[0] as KubeKind, args[1] as string | undefined);
      case 'compact':
        return api.compact();
      case 'dropWatches':
        return api.dropWatches(args[0] === true);
      case 'stop':
        return api.stop();
      case 'restart':
        return api.restart();
      case 'writeKubeconfig':
        return api.writeKubeconfig(args[0] as string);
      case 'requests':
        return api.requests;
      case 'info':
        return { url: api.url, token: api.token, resourceVersion: api.resourceVersion } satisfies KubeApiInfo;
    }
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (code: number, body: unknown) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      let parsed: { method?: unknown; args?: unknown };
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof parsed;
      } catch {
        reply(400, { error: { message: 'the body is not JSON' } });
        return;
      }
      const method = parsed.method as Method;
      if (req.url !== '/call' || !METHODS.includes(method)) {
        reply(404, { error: { message: `no such control call: ${String(parsed.method)}` } });
        return;
      }
      call(method, Array.isArray(parsed.args) ? parsed.args : []).then(
        (result) => reply(200, { result: result ?? null }),
        (err: unknown) => reply(err instanceof KubeStatusError ? 400 : 500, { error: { message: String((err as Error).message ?? err), status: err instanceof KubeStatusError ? err.status : undefined } }),
      );
    });
  });
  if (existsSync(socketPath)) unlinkSync(socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}

/** A client of a fake API server's control socket. */
export class KubeApiControl {
  readonly socketPath: string;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  info(): Promise<KubeApiInfo> {
    return this.call('info') as Promise<KubeApiInfo>;
  }

  createNode(n: { name: string; internalIP?: string; annotations?: Record<string, string>; labels?: Record<string, string> }): Promise<V1NodeLike> {
    return this.call('createNode', n) as Promise<V1NodeLike>;
  }

  patchNode(name: string, patch: Record<string, unknown>): Promise<V1NodeLike> {
    return this.call('patchNode', name, patch) as Promise<V1NodeLike>;
  }

  async deleteNode(name: string): Promise<void> {
    await this.call('deleteNode', name);
  }

  /** Any kind of object (Pod, Namespace, NetworkPolicy...); a namespaced one in metadata.namespace (default "default"). */
  createObject(kind: KubeKind, obj: Record<string, unknown>): Promise<object> {
    return this.call('createObject', kind, obj) as Promise<object>;
  }

  /** A PUT of the whole object (status included: how a test sets a Pod's addresses). */
  updateObject(kind: KubeKind, obj: Record<string, unknown>): Promise<object> {
    return this.call('updateObject', kind, obj) as Promise<object>;
  }

  /** A merge patch. */
  patchObject(kind: KubeKind, name: string, patch: Record<string, unknown>, namespace?: string): Promise<object> {
    return this.call('patchObject', kind, name, patch, namespace) as Promise<object>;
  }

  async deleteObject(kind: KubeKind, name: string, namespace?: string): Promise<void> {
    await this.call('deleteObject', kind, name, namespace);
  }

  async getObject(kind: KubeKind, name: string, namespace?: string): Promise<object | undefined> {
    return ((await this.call('getObject', kind, name, namespace)) as object | null) ?? undefined;
  }

  listObjects(kind: KubeKind, namespace?: string): Promise<object[]> {
    return this.call('listObjects', kind, namespace) as Promise<object[]>;
  }

  async compact(): Promise<void> {
    await this.call('compact');
  }

  async dropWatches(abrupt = false): Promise<void> {
    await this.call('dropWatches', abrupt);
  }

  async stop(): Promise<void> {
    await this.call('stop');
  }

  async restart(): Promise<void> {
    await this.call('restart');
  }

  /** Written by the server's process (same filesystem). */
  async writeKubeconfig(path: string): Promise<void> {
    await this.call('writeKubeconfig', path);
  }

  requests(): Promise<RequestRecord[]> {
    return this.call('requests') as Promise<RequestRecord[]>;
  }

  private call(method: Method, ...args: unknown[]): Promise<unknown> {
    const body = JSON.stringify({ method, args });
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path: '/call', method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const reply = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { result?: unknown; error?: { message: string } };
            if (reply.error !== undefined) reject(new LabError(`fake API server ${method}: ${reply.error.message}`));
            else resolve(reply.result);
          } catch (err) {
            reject(new LabError(`fake API server ${method}: unreadable answer`, { cause: err }));
          }
        });
      });
      req.on('error', (err) => reject(new LabError(`fake API server control socket ${this.socketPath}: ${err.message}`, { cause: err })));
      req.end(body);
    });
  }
}
