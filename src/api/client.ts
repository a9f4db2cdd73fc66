/**
 * A small JSON client for the daemon's local API (HTTP on a Unix socket). In core so that the CLI,
 * the lab and the CNI plugin share it without importing the daemon.
 */
import { request } from 'node:http';
import { WeftError } from '../core/errors.js';
import { ApiRefusal } from './errors.js';
import type { ApiErrorBody, MeshView } from './types.js';

/**
 * Calls the daemon's local API; rejects with an ApiRefusal (the API's error code, message and
 * HTTP status), or a WeftError: ERR_API_UNREACHABLE (no answer), ERR_API_RESPONSE (not JSON).
 */
export function callApi(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath, method, path, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json' } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            reject(new WeftError('ERR_API_RESPONSE', `daemon at ${socketPath} answered ${path} with invalid JSON`));
            return;
          }
          const status = res.statusCode ?? 500;
          if (status >= 400) {
            const e = (parsed as Partial<ApiErrorBody> | null)?.error;
            reject(new ApiRefusal(status, e?.code ?? 'ERR_API', e?.message ?? `HTTP ${status}`));
          } else resolve(parsed);
        });
      },
    );
    req.on('timeout', () => req.destroy(new WeftError('ERR_API_TIMEOUT', `no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? `no weft daemon is listening on ${socketPath} (is it running? use --socket to pick another)`
          : err.code === 'EACCES'
            ? `permission denied on ${socketPath} (the API is for root only: run as root)`
            : `cannot reach the daemon on ${socketPath}: ${err.message}`;
      reject(new WeftError('ERR_API_UNREACHABLE', why, { cause: err }));
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** GET /v1/mesh: every router of the mesh with its connections, release and IPAM share (`weft status peers`). */
export async function getMesh(socketPath: string, timeoutMs = 5000): Promise<MeshView> {
  const v = (await callApi(socketPath, 'GET', '/v1/mesh', undefined, timeoutMs)) as Partial<MeshView> | null;
  if (v === null || typeof v !== 'object' || typeof v.self !== 'string' || !Array.isArray(v.routers)) {
    throw new WeftError('ERR_API_RESPONSE', `daemon at ${socketPath} answered /v1/mesh with something that is not a mesh view`);
  }
  return v as MeshView;
}
