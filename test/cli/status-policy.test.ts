/** `weft status policy` (and its line in `weft status`): the formatting, and the built CLI against a router's API. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPolicyStatus, policySummary } from '../../src/cli/format-status.js';
import { silentLogger } from '../../src/core/logger.js';
import { ApiServer } from '../../src/daemon/api-server.js';
import type { StatusReport } from '../../src/api/types.js';
import { statusReport } from '../daemon/status-fixture.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const policy = statusReport().policy!;

describe('formatting', () => {
  it('lists each policy with what it selects and its counters', () => {
    const text = formatPolicyStatus({ ...policy, policies: [...policy.policies, { namespace: 'shop', name: 'egress-lock', ingress: false, egress: true, selected: [], allowed: 0, dropped: 0 }] });
    expect(text.split('\n')).toEqual([
      'NetworkPolicy: table inet weft-policy; source kubernetes (the API server), synced',
      '  applied: 2 full, 9 element updates; last elements at 2023-11-14T22:13:20.000Z (4 ms); failures 1',
      '  shop/db-ingress  [ingress]  allowed 12  dropped 3',
      '    selects: shop/db-0',
      '  shop/egress-lock  [egress]  allowed 0  dropped 0',
      '    selects: no pod on this node',
    ]);
  });

  it.each<[string, StatusReport['policy'], string]>([
    ['off', undefined, '  NetworkPolicy: off'],
    ['in force', policy, '  NetworkPolicy: 1 policy in force (kubernetes synced), 3 packets dropped; weft status policy'],
    [
      'with problems',
      { ...policy, source: { ...policy.source!, synced: false, error: 'forbidden: networkpolicies' }, bridgeNetfilter: ['net.bridge.bridge-nf-call-iptables: not in this kernel'] },
      '  NetworkPolicy: 1 policy in force (kubernetes not synced yet), 3 packets dropped; weft status policy; PROBLEM: forbidden: networkpolicies; net.bridge.bridge-nf-call-iptables: not in this kernel',
    ],
  ])('the summary line: %s', (_what, p, line) => {
    expect(policySummary(p)).toBe(line);
  });

  it('says when policy is off', () => {
    expect(formatPolicyStatus(undefined)).toMatch(/^NetworkPolicy: off on this router/);
  });
});

describe('weft status policy (the built CLI)', () => {
  let dir: string;
  let socket: string;
  let api: ApiServer;
  let report: StatusReport = statusReport();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-status-policy-'));
    socket = join(dir, 'run', 'weft.sock');
    api = new ApiServer({ logger: silentLogger }, { socketPath: socket });
    api.route('GET', '/v1/status', () => report);
    await api.start();
  });

  afterAll(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const weft = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    try {
      const r = await promisify(execFile)(process.execPath, [CLI, ...args, '--socket', socket], { encoding: 'utf8', timeout: 20_000 });
      return { code: 0, out: r.stdout, err: r.stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, out: x.stdout, err: x.stderr };
    }
  };

  it('prints the policies; --json gives the status section', async () => {
    report = statusReport();
    const text = await weft(['status', 'policy']);
    expect(text.code).toBe(0);
    expect(text.out).toContain('  shop/db-ingress  [ingress]  allowed 12  dropped 3\n    selects: shop/db-0\n');
    const json = await weft(['status', 'policy', '--json']);
    expect(JSON.parse(json.out)).toEqual(policy);
  });

  it('off: says so (JSON: enabled false)', async () => {
    report = statusReport({ policy: undefined });
    expect((await weft(['status', 'policy'])).out).toMatch(/^NetworkPolicy: off on this router/);
    expect(JSON.parse((await weft(['status', 'policy', '--json'])).out)).toEqual({ enabled: false });
  });

  it('an unknown section is a usage error (exit 2)', async () => {
    const r = await weft(['status', 'pears']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('weft status: unknown section "pears" (did you mean "peers"? sections: policy, peers, ipam)');
  });
});
