/**
 * The installed plugin, called as libcni calls it (CniNode: a real router, `env -i`, the per-plugin
 * config on stdin), at the limits of what runtimes do: GC of one network among several, GC while
 * ADDs are in flight, a router that accepts calls and never answers (SIGSTOP of its own process),
 * and STATUS with the pool exhausted.
 */
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniNode, type CniCallResult } from '../../lab/cni-node.js';
import type { AddressGrant } from '../../src/api/types.js';
import { GC_GRACE_MS } from '../../src/cni/commands/gc.js';
import { hostVethName } from '../../src/cni/veth.js';

const isRoot = process.getuid?.() === 0;
const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function allocations(node: CniNode): Promise<AddressGrant[]> {
  return (await node.cluster.api<{ allocations: AddressGrant[] }>(0, 'GET', '/v1/ipam/allocations')).allocations;
}

async function hostEnds(node: CniNode): Promise<string[]> {
  return (await node.cluster.lab.exec(node.nodeNs, ['ip', '-o', 'link', 'show'])).stdout.match(/vw[0-9a-f]{12}/g) ?? [];
}

function ipsOf(r: CniCallResult): string[] {
  return ((r.json?.ips ?? []) as { address: string }[]).map((x) => x.address.split('/')[0]!);
}

function journalEntries(node: CniNode): string[] {
  try {
    return readdirSync(node.journalDir).filter((n) => n.endsWith('.release.json'));
  } catch {
    return [];
  }
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(200);
  }
}

describe.skipIf(!isRoot)('CNI at the runtime limits (a real router)', () => {
  let node: CniNode;
  let network: string;

  beforeAll(async () => {
    node = await CniNode.start({ range: '10.48.0.0/16', range6: 'fd00:48::/64', install: { cniVersion: '1.1.0' } });
    network = node.conflist().name;
  }, 120_000);

  afterAll(async () => {
    await node?.destroy();
  }, 60_000);

  async function add(containerId: string, extra: Record<string, unknown> = {}, ifName = 'eth0'): Promise<CniCallResult> {
    const { path } = await node.newPodNs();
    return node.call('ADD', { containerId, netns: path, ifName, extra });
  }

  it('GC touches only its own network: not another network\'s attachment, not a reservation made by hand', async () => {
    const mine = await add('gcs-mine');
    expect(mine.code, mine.stdout).toBe(0);
    const other = await add('gcs-other', { name: 'other-net' });
    expect(other.code, other.stdout).toBe(0);
    const byHand = await node.cluster.lab.exec(node.nodeNs, [process.execPath, CLI, 'ipam', 'allocate', 'gcs-manual', '--socket', node.cluster.routers[0]!.socket]);
    expect(byHand.code).toBe(0);

    const before = await allocations(node);
    expect(before.find((a) => a.containerId === 'gcs-mine')).toMatchObject({ network });
    expect(before.find((a) => a.containerId === 'gcs-other')).toMatchObject({ network: 'other-net' });
    const manual = before.find((a) => a.containerId === 'gcs-manual');
    expect(manual).toBeDefined();
    expect(manual!.network).toBeUndefined();
    for (const a of before.filter((x) => x.containerId.startsWith('gcs-'))) expect(a.adding).toBeUndefined();

    await delay(GC_GRACE_MS + 200); // GC leaves allocations younger than its grace to the next GC
    const gc = await node.call('GC', { extra: { 'cni.dev/valid-attachments': [] } });
    expect(gc.code, gc.stdout).toBe(0);

    const after = await allocations(node);
    const ids = after.map((a) => a.containerId);
    expect(ids).not.toContain('gcs-mine');
    expect(ids).toContain('gcs-other');
    expect(ids).toContain('gcs-manual');
    const ends = await hostEnds(node);
    expect(ends).not.toContain(hostVethName('gcs-mine', 'eth0'));
    expect(ends).toContain(hostVethName('gcs-other', 'eth0'));

    // Clean up what this test made.
    expect((await node.call('DEL', { containerId: 'gcs-other', extra: { name: 'other-net' } })).code).toBe(0);
    await node.cluster.api(0, 'POST', '/v1/ipam/release', { containerId: 'gcs-manual' });
  }, 120_000);

  it('GC racing ADDs never takes the address of a pod an ADD made', async () => {
    const trials = 4;
    const perTrial = 4;
    for (let t = 0; t < trials; t++) {
      const ids = Array.from({ length: perTrial }, (_, k) => `race-${t}-${k}`);
      const netns = await Promise.all(ids.map(() => node.newPodNs()));
      const adds = ids.map((id, k) => node.call('ADD', { containerId: id, netns: netns[k]!.path }));
      // GC while the ADDs run; the runtime's list does not have them yet.
      await delay(30 * t);
      const gc = await node.call('GC', { extra: { 'cni.dev/valid-attachments': [] } });
      expect(gc.code, gc.stdout).toBe(0);
      const results = await Promise.all(adds);
      const held = await allocations(node);
      const byAddress = new Map<string, string>();
      for (const a of held) {
        for (const ip of a.addresses) {
          expect(byAddress.get(ip), `${ip} held twice`).toBeUndefined();
          byAddress.set(ip, `${a.containerId}/${a.ifName}`);
        }
      }
      for (const [k, r] of results.entries()) {
        if (r.code !== 0) continue;
        for (const ip of ipsOf(r)) expect(byAddress.get(ip), `trial ${t}: ${ids[k]} got ${ip} but the router does not hold it for it`).toBe(`${ids[k]}/eth0`);
      }
      expect(results.filter((r) => r.code === 0).length, results.map((r) => r.stdout).join('\n')).toBe(perTrial);
      for (const id of ids) expect((await node.call('DEL', { containerId: id })).code).toBe(0);
    }
  }, 300_000);

  describe('a router that accepts calls and never answers (SIGSTOP)', () => {
    const pid = (): number => node.cluster.routers[0]!.process!.pid;

    async function stopped<T>(f: () => Promise<T>): Promise<T> {
      process.kill(pid(), 'SIGSTOP');
      try {
        return await f();
      } finally {
        process.kill(pid(), 'SIGCONT');
      }
    }

    it('STATUS answers 50 within its limit, ADD 11, DEL journals; nothing is left half-made; the late calls do nothing', async () => {
      const pod = await add('hung-del');
      expect(pod.code, pod.stdout).toBe(0);
      const podIps = ipsOf(pod);
      const { path: newNs } = await node.newPodNs();

      const [status, added, deleted] = await stopped(async () => {
        const status = await node.call('STATUS', { timeoutMs: 30_000 });
        const added = await node.call('ADD', { containerId: 'hung-add', netns: newNs, timeoutMs: 40_000 });
        const deleted = await node.call('DEL', { containerId: 'hung-del', timeoutMs: 30_000 });
        // Still stopped: the DEL removed the host end and journaled the release.
        expect(await hostEnds(node)).not.toContain(hostVethName('hung-del', 'eth0'));
        expect(journalEntries(node).length).toBe(1);
        return [status, added, deleted];
      });

      expect(status.timedOut).toBe(false);
      expect(status.json).toMatchObject({ code: 50, msg: expect.stringMatching(/did not answer in time.*within 3 s/) });
      expect(added.timedOut).toBe(false);
      expect(added.json).toMatchObject({ code: 11, msg: expect.stringMatching(/did not answer.*within 10 s/) });
      expect(deleted.timedOut).toBe(false);
      expect(deleted.code, deleted.stdout + deleted.stderr).toBe(0);
      expect(deleted.stderr).toMatch(/journaled/);

      // Running again: the replay releases the DEL's allocation; the late ADD made nothing.
      await until('the journaled release to be replayed', async () => !(await allocations(node)).some((a) => a.containerId === 'hung-del') && journalEntries(node).length === 0);
      const now = await allocations(node);
      expect(now.some((a) => a.containerId === 'hung-add')).toBe(false);
      expect(await hostEnds(node)).not.toContain(hostVethName('hung-add', 'eth0'));
      expect(podIps.some((ip) => now.some((a) => a.addresses.includes(ip)))).toBe(false);
      expect((await node.call('STATUS')).code).toBe(0);
    }, 180_000);

    it('a release journaled while the router was stopped does not take the address a new ADD of the same attachment got', async () => {
      const first = await add('again');
      expect(first.code, first.stdout).toBe(0);
      const deleted = await stopped(() => node.call('DEL', { containerId: 'again', timeoutMs: 30_000 }));
      expect(deleted.code, deleted.stdout).toBe(0);
      // The router runs again (the late DEL and the journal still to come); the runtime adds the pod again.
      const { path } = await node.newPodNs();
      const second = await node.call('ADD', { containerId: 'again', netns: path });
      expect(second.code, second.stdout).toBe(0);
      // Past several replay rounds (every 5 s).
      await until('the journal to be empty', async () => journalEntries(node).length === 0);
      await delay(11_000);
      const held = (await allocations(node)).find((a) => a.containerId === 'again');
      expect(held?.addresses.sort()).toEqual(ipsOf(second).sort());
      const st = await node.cluster.apiStatus(0);
      expect(st.pods?.pods.some((p) => p.containerId === 'again')).toBe(true);
      expect((await node.call('DEL', { containerId: 'again' })).code).toBe(0);
    }, 180_000);
  });
});

describe.skipIf(!isRoot)('STATUS with the pool exhausted (a real router, a /30)', () => {
  let node: CniNode;

  beforeAll(async () => {
    node = await CniNode.start({ range: '10.47.0.0/30', range6: 'fd00:47::/64', extraArgs: ['--ipam-quarantine-seconds', '0'], install: { cniVersion: '1.1.0' } });
  }, 120_000);

  afterAll(async () => {
    await node?.destroy();
  }, 60_000);

  it('is 50 naming the exhaustion while no address is left, and 0 again after a DEL', async () => {
    expect((await node.call('STATUS')).code).toBe(0);
    const { path: a } = await node.newPodNs();
    const first = await node.call('ADD', { containerId: 'full-1', netns: a });
    expect(first.code, first.stdout).toBe(0);
    const { path: b } = await node.newPodNs();
    const second = await node.call('ADD', { containerId: 'full-2', netns: b });
    expect(second.json).toMatchObject({ code: 100 });
    const status = await node.call('STATUS', { timeoutMs: 30_000 });
    expect(status.json).toMatchObject({ code: 50, msg: expect.stringMatching(/exhausted.*no free address in 10\.47\.0\.0\/30/) });
    expect((await node.call('DEL', { containerId: 'full-1' })).code).toBe(0);
    expect(await node.call('STATUS')).toMatchObject({ code: 0, stdout: '' });
  }, 120_000);
});
