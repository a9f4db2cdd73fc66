/**
 * The daemon's local API: HTTP with JSON bodies on a Unix socket. Routes are registered by the
 * daemon; errors come back as { error: { code, message } } (ApiErrorBody) with the HTTP status of
 * their code (src/api/errors.ts; "not ready yet" is 503); an error without a code is ERR_INTERNAL.
 *
 * Only root (the router's own user) reaches it: the socket is a file (never an abstract socket,
 * which any process in the network namespace could reach) of mode 0600, created so from the start
 * (umask at bind), in a directory the router makes with mode 0700, or one that already exists,
 * belongs to root or the router's user and nobody else may write (or could replace the socket).
 * Nothing else listens for the API.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { ApiError, apiStatusOf } from '../api/errors.js';
import type { ApiErrorBody } from '../api/types.js';
import { WeftError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';

export type ApiHandler = (body: unknown, req: IncomingMessage) => Promise<unknown> | unknown;

/** A route that takes the body as bytes and answers with text and headers of its own (not JSON). */
export type RawApiHandler = (body: Buffer, req: IncomingMessage) => Promise<{ headers: Record<string, string>; body: string }>;

const MAX_BODY = 1 << 20;
/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Why `path` cannot be the API socket (undefined when it can): a file path, not abstract, not too long. */
export function apiSocketProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return `"${path}" must be an absolute path`;
  if (path.includes('\0')) return `"${path.replace(/\0/g, '\\0')}" contains a NUL byte (an abstract socket would be open to every process in the network namespace)`;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) return `"${path}" is longer than ${MAX_SOCKET_PATH} bytes`;
  if (path.endsWith('/')) return `"${path}" names a directory`;
  return undefined;
}

/**
 * Makes the socket's directory (mode 0700) or checks the one that exists: a directory owned by
 * root or `uid` that neither group nor others may write. Throws ERR_API_SOCKET_DIR otherwise.
 */
export function prepareSocketDir(dir: string, uid: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  if (!st.isDirectory()) throw new WeftError('ERR_API_SOCKET_DIR', `the API socket's directory ${dir} is not a directory (a symbolic link?)`);
  if (st.uid !== 0 && st.uid !== uid) throw new WeftError('ERR_API_SOCKET_DIR', `the API socket's directory ${dir} belongs to uid ${st.uid}, not root: its owner could replace the socket`);
  if ((st.mode & 0o022) !== 0) throw new WeftError('ERR_API_SOCKET_DIR', `the API socket's directory ${dir} is writable by group or others (mode ${mode}): they could replace the socket; use a directory only root can write (weft makes its own with mode 0700)`);
}

export class ApiServer implements Startable {
  private readonly log: Logger;
  private readonly socketPath: string;
  private readonly routes = new Map<string, ApiHandler>();
  private readonly rawRoutes = new Map<string, RawApiHandler>();
  private server: Server | undefined = undefined;

  constructor(components: { logger: Logger }, init: { socketPath: string }) {
    this.log = components.logger;
    this.socketPath = init.socketPath;
  }

  route(method: 'GET' | 'POST' | 'DELETE', path: string, handler: ApiHandler): void {
    this.routes.set(`${method} ${path}`, handler);
  }

  routeRaw(method: 'POST', path: string, handler: RawApiHandler): void {
    this.rawRoutes.set(`${method} ${path}`, handler);
  }

  async start(): Promise<void> {
    const why = apiSocketProblem(this.socketPath);
    if (why !== undefined) throw new WeftError('ERR_API_SOCKET', `--api-socket: ${why}`);
    prepareSocketDir(dirname(this.socketPath), process.geteuid?.() ?? 0);
    await this.removeStaleSocket();
    const server = createServer((req, res) => {
      // No Date header (a local socket's clients have no use for it): formatting it is V8's first
      // use of its date cache, which loads ICU's time-zone data (0.6 MB resident; core/clock.ts isoTime).
      res.sendDate = false;
      void this.handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new WeftError('ERR_API_LISTEN', `cannot listen on API socket ${this.socketPath}: ${describeError(err)}`, { cause: err })),
      );
      // The socket file is made by bind() inside listen(): with this umask it is 0600 from the start.
      const umask = setUmask(0o177);
      try {
        server.listen(this.socketPath, () => resolve());
      } finally {
        if (umask !== undefined) setUmask(umask);
      }
    });
    chmodSync(this.socketPath, 0o600);
    const st = lstatSync(this.socketPath);
    if (!st.isSocket() || (st.mode & 0o077) !== 0) {
      server.close();
      throw new WeftError('ERR_API_SOCKET', `the API socket ${this.socketPath} is not a socket of mode 0600 after listening (mode ${(st.mode & 0o7777).toString(8)})`);
    }
    server.on('error', (err) => this.log.error('API server error', { err: describeError(err) }));
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s === undefined) return;
    await closeHttpServer(s);
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }

  /** A socket file left by a dead daemon is removed; a live one means another daemon runs. */
  private async removeStaleSocket(): Promise<void> {
    const alive = await new Promise<boolean>((resolve) => {
      const c = connect(this.socketPath);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (alive) {
      throw new WeftError('ERR_API_IN_USE', `another weft daemon is already serving ${this.socketPath} (use --api-socket for a second one)`);
    }
    try {
      unlinkSync(this.socketPath);
    } catch {
      // nothing to remove
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const raw = this.rawRoutes.get(`${req.method ?? 'GET'} ${path}`);
    if (raw !== undefined) {
      try {
        const r = await raw(await readBytes(req), req);
        res.writeHead(200, { ...r.headers, 'content-type': 'text/plain', 'content-length': Buffer.byteLength(r.body) });
        res.end(r.body);
      } catch (err) {
        this.refuse(res, path, err);
      }
      return;
    }
    const handler = this.routes.get(`${req.method ?? 'GET'} ${path}`);
    try {
      if (handler === undefined) throw new ApiError('ERR_NOT_FOUND', `no API route ${req.method} ${path}`);
      const body = await readBody(req);
      const result = await handler(body, req);
      send(res, 200, result ?? {});
    } catch (err) {
      this.refuse(res, path, err);
    }
  }

  /** Answers `err` as { error: { code, message } } with its code's status; 5xx are logged. */
  private refuse(res: ServerResponse, path: string | undefined, err: unknown): void {
    const code = err instanceof WeftError ? err.code : 'ERR_INTERNAL';
    const status = apiStatusOf(code);
    if (status >= 500) this.log.error('API request failed', { path, err: describeError(err) });
    const body: ApiErrorBody = { error: { code, message: err instanceof Error ? err.message : String(err) } };
    send(res, status, body);
  }
}

/** Sets the process umask, returning the previous one; undefined where it cannot be set (a worker thread). */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBytes(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError('ERR_BODY_TOO_LARGE', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const bytes = await readBytes(req);
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    throw new ApiError('ERR_BAD_JSON', 'request body is not valid JSON');
  }
}

/** Closes an HTTP server now: its open connections (keep-alive ones too) first, then the listener. */
export async function closeHttpServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
