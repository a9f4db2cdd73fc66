/**
 * POST /v1/cni/attach with a pod identity: a hostile `pod` is refused (400, the field named) before
 * the guard or NetworkPolicy sees anything; a good one goes on to the guard.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../../src/api/client.js';
import { ApiRefusal } from '../../src/api/errors.js';
import { readPodIdentity } from '../../src/api/pod-identity.js';
import { silentLogger } from '../../src/core/logger.js';
import { ApiServer } from '../../src/daemon/api-server.js';
import { validateConfig } from '../../src/daemon/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import type { Netlink } from '../../src/platform/netlink.js';
import { FakeClock } from '../fakes/fake-clock.js';

let dir: string;
let socket: string;
let api: ApiServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-policy-api-'));
  socket = join(dir, 'run', 'weft.sock');
  api = new ApiServer({ logger: silentLogger }, { socketPath: socket });
  // A daemon never started: no pod guard, so a request that passes the checks is "not ready".
  const daemon = new Daemon({ logger: silentLogger, clock: new FakeClock(), netlink: {} as Netlink }, validateConfig({ name: 'n1', plaintext: true })) as unknown as { attachPod(body: unknown): Promise<unknown> };
  api.route('POST', '/v1/cni/attach', (body) => daemon.attachPod(body));
  await api.start();
});

afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function refusal(body: unknown): Promise<ApiRefusal> {
  const err = await callApi(socket, 'POST', '/v1/cni/attach', body).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiRefusal);
  return err as ApiRefusal;
}

const base = { containerId: 'c1', ifName: 'eth0', mac: '02:00:00:00:00:01' };

describe('POST /v1/cni/attach: the pod field', () => {
  it.each([
    ['a string', 'default/web', 'pod: must be an object'],
    ['a list', ['default', 'web'], 'pod: must be an object'],
    ['no namespace', { name: 'web' }, 'pod.namespace: must be a string'],
    ['a number for a name', { namespace: 'default', name: 7 }, 'pod.name: must be a string'],
    ['a path in the namespace', { namespace: '../../etc', name: 'web' }, 'pod.namespace: "../../etc" is not a namespace name'],
    ['an nft injection in the name', { namespace: 'default', name: 'web }; flush ruleset; {' }, 'pod.name: "web }; flush ruleset; {" is not a pod name'],
    ['a huge name', { namespace: 'default', name: 'a'.repeat(300) }, 'pod.name: "aaaa'],
    ['an unknown field', { namespace: 'default', name: 'web', labels: { app: 'x' } }, 'pod: unknown field "labels"'],
  ])('%s → 400 naming the field', async (_what, pod, message) => {
    const r = await refusal({ ...base, pod });
    expect(r.status).toBe(400);
    expect(r.code).toBe('ERR_POD_BAD_REQUEST');
    expect(r.message).toContain(`attach: ${message}`);
  });

  it.each([
    ['a good pod', { namespace: 'kube-system', name: 'coredns-5d78c9869d-abcde' }],
    ['no pod (not a Kubernetes pod)', undefined],
  ])('%s passes the checks (then: no pod guard on this router)', async (_what, pod) => {
    const r = await refusal(pod === undefined ? base : { ...base, pod });
    expect(r.code).toBe('ERR_IPAM_NOT_READY');
  });
});

describe('readPodIdentity', () => {
  it.each([
    [null, { pod: undefined }],
    [{ namespace: 'a', name: 'b.c-1' }, { pod: { namespace: 'a', name: 'b.c-1' } }],
    [{ namespace: 'a-', name: 'b' }, { problem: expect.stringContaining('pod.namespace') }],
    [{ namespace: 'a', name: '.b' }, { problem: expect.stringContaining('pod.name') }],
  ])('%j → %j', (v, want) => {
    expect(readPodIdentity(v)).toEqual(want);
  });
});
