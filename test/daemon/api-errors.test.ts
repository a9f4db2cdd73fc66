/**
 * Every refusal of the local API carries a code, and every "not ready yet" is 503 with its own
 * code, whichever part raises it; the client sees the status, and the CNI plugin turns exactly
 * those (and an unreachable router) into code 11, "try again later".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../../src/api/client.js';
import { API_ERRORS, ApiError, ApiRefusal, isTransient } from '../../src/api/errors.js';
import { routerError } from '../../src/cni/commands/shared.js';
import { CniCode } from '../../src/cni/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { ApiServer } from '../../src/daemon/api-server.js';
import { validateConfig } from '../../src/daemon/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { ipamOffRoutes } from '../../src/daemon/ipam-service.js';
import { PodGuard, PodGuardError } from '../../src/daemon/pod-guard.js';
import { IpamExhaustedError, IpamNotReadyError } from '../../src/ipam/errors.js';
import type { Netlink } from '../../src/platform/netlink.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeNft } from '../fakes/fake-nft.js';

/** What the tests reach of a daemon that was never started. */
interface Unstarted {
  status(): unknown;
  forget(body: unknown): unknown;
  guardCall(fn: () => Promise<unknown>): Promise<unknown>;
}

let dir: string;
let socket: string;
let api: ApiServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-api-errors-'));
  socket = join(dir, 'run', 'weft.sock');
  api = new ApiServer({ logger: silentLogger }, { socketPath: socket });
  const daemon = new Daemon({ logger: silentLogger, clock: new FakeClock(), netlink: {} as Netlink }, validateConfig({ name: 'n1', plaintext: true })) as unknown as Unstarted;
  // A pod guard whose table cannot be written (no nft).
  const nft = new FakeNft();
  nft.broken = 'nft: not installed';
  const guard = new PodGuard(
    { nft, netlink: { bridgePorts: () => Promise.resolve([]) }, clock: new FakeClock(), logger: silentLogger, allocations: () => [{ containerId: 'c1', ifName: 'eth0', addresses: ['10.32.0.5'] }] },
    { bridge: 'weft', vxlanPort: 6785 },
  );
  api.route('GET', '/v1/status', () => daemon.status());
  api.route('POST', '/v1/forget', (body) => daemon.forget(body));
  api.route('POST', '/v1/cni/detach', () => daemon.guardCall(() => Promise.resolve({})));
  api.route('POST', '/v1/cni/attach', () => guard.attach('c1', 'eth0', '02:00:00:00:00:01'));
  ipamOffRoutes(api);
  api.route('POST', '/test/ipam-starting', () => Promise.reject(new IpamNotReadyError('waiting for 2 initial peers')));
  api.route('POST', '/test/ipam-exhausted', () => Promise.reject(new IpamExhaustedError('10.32.0.0/12', 'no peer donated')));
  api.route('POST', '/test/not-allocated', () => Promise.reject(new PodGuardError('ERR_POD_NOT_ALLOCATED', 'attach: IPAM holds no allocation for c9/eth0')));
  api.route('POST', '/test/bug', () => Promise.reject(new TypeError('x is undefined')));
  await api.start();
});

afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The refusal the client gets for `method path`. */
async function refusal(method: string, path: string, body?: unknown): Promise<ApiRefusal> {
  const err = await callApi(socket, method, path, body).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiRefusal);
  return err as ApiRefusal;
}

describe('the API: not ready is 503 everywhere, with its code', () => {
  it.each([
    ['the router still starting: status', 'GET', '/v1/status', 'ERR_NOT_READY'],
    ['the router still starting: forget', 'POST', '/v1/forget', 'ERR_NOT_READY'],
    ['IPAM not ready yet (bootstrap)', 'POST', '/test/ipam-starting', 'ERR_IPAM_NOT_READY'],
    ['IPAM off: allocate', 'POST', '/v1/ipam/allocate', 'ERR_IPAM_NOT_READY'],
    ['IPAM off: release', 'POST', '/v1/ipam/release', 'ERR_IPAM_NOT_READY'],
    ['IPAM off: allocations', 'GET', '/v1/ipam/allocations', 'ERR_IPAM_NOT_READY'],
    ['IPAM off: status', 'GET', '/v1/ipam/status', 'ERR_IPAM_NOT_READY'],
    ['pods off: attach and detach', 'POST', '/v1/cni/detach', 'ERR_IPAM_NOT_READY'],
    ["the pods' table cannot be programmed", 'POST', '/v1/cni/attach', 'ERR_POD_GUARD'],
  ])('%s (%s %s) → 503 %s', async (_, method, path, code) => {
    const e = await refusal(method, path, method === 'POST' ? {} : undefined);
    expect(e.status).toBe(503);
    expect(e.code).toBe(code);
    expect(e.message).not.toBe('');
    expect(isTransient(e)).toBe(true);
    expect(routerError(e, 'allocating').cniCode).toBe(CniCode.TryAgainLater);
  });

  it.each([
    ['no such route', 'GET', '/v1/nothing', 404, 'ERR_NOT_FOUND', CniCode.RouterRefused],
    ['attach before allocate', 'POST', '/test/not-allocated', 409, 'ERR_POD_NOT_ALLOCATED', CniCode.RouterRefused],
    ['no address left', 'POST', '/test/ipam-exhausted', 507, 'ERR_IPAM_EXHAUSTED', CniCode.AddressesExhausted],
    ['a bug (an error without a code)', 'POST', '/test/bug', 500, 'ERR_INTERNAL', CniCode.RouterRefused],
  ])('%s (%s %s) → %i %s, not transient', async (_, method, path, status, code, cniCode) => {
    const e = await refusal(method, path, method === 'POST' ? {} : undefined);
    expect([e.status, e.code]).toEqual([status, code]);
    expect(isTransient(e)).toBe(false);
    expect(routerError(e, 'allocating').cniCode).toBe(cniCode);
  });

  it('a body that is not JSON → 400 ERR_BAD_JSON, as { error: { code, message } }', async () => {
    const answer = await new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      const req = request({ socketPath: socket, method: 'POST', path: '/v1/forget', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
      });
      req.on('error', reject);
      req.end('{not json');
    });
    expect(answer).toEqual({ status: 400, body: { error: { code: 'ERR_BAD_JSON', message: 'request body is not valid JSON' } } });
  });

  it('the 503 codes are exactly the not-ready ones', () => {
    expect(Object.entries(API_ERRORS).filter(([, s]) => s === 503).map(([c]) => c).sort()).toEqual(['ERR_IPAM_NOT_READY', 'ERR_NOT_READY', 'ERR_POD_GUARD']);
    expect(new ApiError('ERR_NOT_READY', 'starting').status).toBe(503);
  });

  it('an unreachable router is transient too; inside the router a not-ready error is transient by its code', async () => {
    const e = await callApi(join(dir, 'none.sock'), 'GET', '/v1/status').catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'ERR_API_UNREACHABLE' });
    expect(isTransient(e)).toBe(true);
    expect(isTransient(new IpamNotReadyError('starting'))).toBe(true);
    expect(isTransient(new IpamExhaustedError('10.32.0.0/12', 'full'))).toBe(false);
    // A 500 answered by an older router with a not-ready code stays a refusal: the status decides.
    expect(isTransient(new ApiRefusal(500, 'ERR_POD_GUARD', 'cannot write'))).toBe(false);
  });
});
