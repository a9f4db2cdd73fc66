/**
 * The plugin at the runtime limits, in-process against the fake daemon: GC's scope and its
 * conditional release, STATUS for an exhausted pool, every command bounded by its deadline (a
 * daemon that accepts and never answers), the Node plugin after the binary gave up (never asks
 * the router again), the router refusing calls past their deadline, and the binary's limits
 * matching limits.ts.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReleaseJournal } from '../../src/api/release-journal.js';
import { DaemonClient, RouterTimeoutError, SilentRouter } from '../../src/cni/client.js';
import { GC_GRACE_MS } from '../../src/cni/commands/gc.js';
import { handlers } from '../../src/cni/commands/index.js';
import { COMMAND_LIMIT_MS, parseDeadlineHeader, ROUTER_MARGIN_MS, routerDeadline } from '../../src/cni/limits.js';
import { runPlugin, type PluginDeps } from '../../src/cni/skel.js';
import { hostVethName } from '../../src/cni/veth.js';
import { silentLogger } from '../../src/core/logger.js';
import { cniExecHandler } from '../../src/daemon/cni-exec.js';
import { FakeDaemon } from './fake-daemon.js';
import { FakeLinks } from './fake-links.js';

let daemon: FakeDaemon;
let links: FakeLinks;
let journalDir: string;

function conf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.1.0', name: 'weft', type: 'weft', socket: daemon.socket, journalDir, ...extra });
}

function env(command: string, containerId?: string, netns?: string): Record<string, string> {
  return { CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin', ...(containerId === undefined ? {} : { CNI_CONTAINERID: containerId, CNI_IFNAME: 'eth0' }), ...(netns === undefined ? {} : { CNI_NETNS: netns }) };
}

async function run(e: Record<string, string>, stdin: string, o: { deadline?: number; daemon?: PluginDeps['daemon'] } = {}) {
  let stdout = '';
  let stderr = '';
  const deps: PluginDeps = {
    links,
    daemon: o.daemon ?? ((socket, deadline) => new DaemonClient({ socket, ...(deadline === undefined ? {} : { deadline }) })),
    journal: (dir) => new ReleaseJournal(dir),
  };
  const started = Date.now();
  const code = await runPlugin({ env: e, stdin, stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, ...(o.deadline === undefined ? {} : { deadline: o.deadline }) }, handlers, deps);
  return { code, stdout, stderr, ms: Date.now() - started, json: stdout.trim() === '' ? undefined : (JSON.parse(stdout) as Record<string, unknown>) };
}

async function addPod(id: string, network = 'weft'): Promise<void> {
  links.addNamespace(`/ns/${id}`);
  const r = await run(env('ADD', id, `/ns/${id}`), conf({ name: network }));
  expect(r.code, r.stdout).toBe(0);
}

beforeEach(async () => {
  daemon = await new FakeDaemon({ v4Prefix: '10.99.0', v6Prefix: 'fd00:99::' }).start();
  links = new FakeLinks();
  journalDir = join(daemon.dir, 'pending-releases');
});

afterEach(async () => {
  daemon.hang = false;
  await daemon.destroy();
});

describe('GC scope', () => {
  it('releases only its own network\'s stale allocations, and deletes only the host ends of what it released', async () => {
    await addPod('mine');
    await addPod('theirs', 'other-net');
    await addPod('fresh');
    daemon.age(GC_GRACE_MS + 1000); // all but what follows were made a while ago
    await addPod('just-made'); // its ADD answered just now: possibly not in the runtime's list yet
    daemon.allocations.set('manual\0eth0', { containerId: 'manual', ifName: 'eth0', addresses: [{ address: '10.99.0.200', prefixLength: 24, family: 4 }], allocatedAt: '', touchedAt: 0 });
    // An ADD in flight: allocated long ago (a slow ADD), not attached yet.
    daemon.allocations.get('fresh\0eth0')!.adding = true;
    // A host end with no allocation (another network's ADD in flight, say).
    links.hosts.set('vw0123456789ab', { master: 'weft', mtu: 1376, up: true, netns: '/ns/x', ifName: 'eth0' });

    const r = await run(env('GC'), conf({ 'cni.dev/valid-attachments': [] }));
    expect(r.code, r.stdout).toBe(0);
    expect(daemon.podAllocations().map((a) => a.containerId).sort()).toEqual(['fresh', 'just-made', 'manual', 'theirs']);
    expect([...links.hosts.keys()].sort()).toEqual([hostVethName('fresh', 'eth0'), hostVethName('just-made', 'eth0'), hostVethName('theirs', 'eth0'), 'vw0123456789ab'].sort());
    expect(r.stderr).toMatch(/left fresh\/eth0 alone \(its ADD is in progress\)/);
    expect(r.stderr).toMatch(/left just-made\/eth0 alone \(allocated or confirmed just before GC started\)/);
    // Only its own network's allocations were asked for, each conditionally.
    const releases = daemon.requests.filter((q) => q.path === '/v1/ipam/release').map((q) => q.body as Record<string, unknown>);
    expect(releases.map((b) => b.containerId).sort()).toEqual(['fresh', 'just-made', 'mine']);
    for (const b of releases) expect(b).toMatchObject({ network: 'weft', before: expect.any(Number) });
  });
});

describe('STATUS', () => {
  it('an exhausted pool → 50 saying so', async () => {
    daemon.exhausted = 'no free address in 10.99.0.0/24 on this router and no reachable peer holds space in it';
    const r = await run(env('STATUS'), conf());
    expect(r.json).toMatchObject({ code: 50, msg: `pod address pool exhausted: ${daemon.exhausted}` });
  });
});

describe('a router that accepts calls and never answers', () => {
  beforeEach(() => {
    daemon.hang = true;
  });

  it.each([
    ['STATUS', 50, /router on .* did not answer in time/],
    ['ADD', 11, /reading the pod network: the weft router did not answer in time/],
    ['GC', 11, /listing allocations: the weft router did not answer in time/],
  ] as const)('%s fails with %i by its deadline', async (command, code, msg) => {
    links.addNamespace('/ns/p');
    const id = command === 'ADD' ? 'p' : undefined;
    const r = await run(env(command, id, id === undefined ? undefined : '/ns/p'), conf({ 'cni.dev/valid-attachments': [] }), { deadline: Date.now() + 300 });
    expect(r.json).toMatchObject({ code, msg: expect.stringMatching(msg) });
    expect(r.ms).toBeLessThan(COMMAND_LIMIT_MS.STATUS); // the 300 ms deadline, not a socket default
    expect(links.hosts.size).toBe(0);
  });

  it('DEL removes the host end, journals the release and succeeds by its deadline', async () => {
    daemon.hang = false;
    await addPod('p');
    daemon.hang = true;
    const r = await run(env('DEL', 'p'), conf(), { deadline: Date.now() + 300 });
    expect(r.code, r.stdout).toBe(0);
    expect(links.hosts.has(hostVethName('p', 'eth0'))).toBe(false);
    expect(new ReleaseJournal(journalDir).pending()).toMatchObject([{ containerId: 'p', ifName: 'eth0' }]);
  });

  it('the client refuses to start a request past the deadline', async () => {
    const c = new DaemonClient({ socket: daemon.socket, deadline: Date.now() - 1 });
    await expect(c.network()).rejects.toBeInstanceOf(RouterTimeoutError);
    expect(daemon.requests).toEqual([]);
  });
});

describe('the Node plugin after the binary gave up (SilentRouter)', () => {
  const silent = (socket: string) => new SilentRouter(socket, '5');

  it('DEL journals without asking the router', async () => {
    links.addNamespace('/ns/q');
    daemon.hang = false;
    await addPod('q');
    const before = daemon.requests.length;
    const r = await run(env('DEL', 'q'), conf(), { daemon: silent });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stderr).toMatch(/did not answer within 5 s; it was not asked again.*journaled/);
    expect(daemon.requests.length).toBe(before);
    expect(new ReleaseJournal(journalDir).pending()).toMatchObject([{ containerId: 'q', ifName: 'eth0' }]);
    expect(links.hosts.size).toBe(0);
  });

  it.each([
    ['STATUS', 50],
    ['ADD', 11],
  ] as const)('%s → %i without asking the router', async (command, code) => {
    links.addNamespace('/ns/r');
    const id = command === 'ADD' ? 'r' : undefined;
    const r = await run(env(command, id, id === undefined ? undefined : '/ns/r'), conf(), { daemon: silent });
    expect(r.json).toMatchObject({ code, msg: expect.stringMatching(/did not answer within 5 s/) });
    expect(daemon.requests).toEqual([]);
  });
});

describe('the router refuses a call that reaches it after its deadline', () => {
  function req(headers: Record<string, string>): IncomingMessage {
    return { headers } as unknown as IncomingMessage;
  }

  it('answers 11 and runs nothing', async () => {
    const handler = cniExecHandler(silentLogger, { socket: daemon.socket, ipam: undefined, pods: undefined, guard: undefined });
    const r = await handler(Buffer.from(conf()), req({ 'x-cni_command': 'DEL', 'x-cni_containerid': 'late', 'x-cni_ifname': 'eth0', 'x-weft-deadline': String(Date.now() - 1) }));
    expect(r.headers['x-cni-exit']).toBe('1');
    expect(JSON.parse(r.body)).toMatchObject({ cniVersion: '1.1.0', code: 11, msg: expect.stringMatching(/DEL call reached the weft router after its time limit/) });
    expect(daemon.requests).toEqual([]);
  });

  it.each([
    ['a time', '1767225600000', 1767225600000],
    ['empty', '', undefined],
    ['not digits', '12a', undefined],
    ['absent', undefined, undefined],
  ])('the deadline header: %s', (_what, v, want) => {
    expect(parseDeadlineHeader(v)).toBe(want);
  });
});

describe('limits', () => {
  it('the binary has the same per-command limits and margin as limits.ts', () => {
    const c = readFileSync(join(process.cwd(), 'src', 'cni', 'shim', 'weft-cni.c'), 'utf8');
    const fn = c.slice(c.indexOf('static long limit_ms('), c.indexOf('static long long clock_ms('));
    const rules = [...fn.matchAll(/((?:strcmp\(command, "[A-Z]+"\) == 0(?: \|\| )?)+)\) return (\d+);/g)].map((m) => ({ commands: [...m[1]!.matchAll(/"([A-Z]+)"/g)].map((x) => x[1]!), ms: Number(m[2]) }));
    const fallbackMs = Number(/\n {2}return (\d+);\n\}/.exec(fn)?.[1]);
    for (const [command, ms] of Object.entries(COMMAND_LIMIT_MS)) {
      expect(rules.find((r) => r.commands.includes(command))?.ms ?? fallbackMs, command).toBe(ms);
    }
    expect(Number(/#define ROUTER_MARGIN_MS (\d+)/.exec(c)?.[1])).toBe(ROUTER_MARGIN_MS);
    expect(routerDeadline('DEL', 0)).toBe(COMMAND_LIMIT_MS.DEL - ROUTER_MARGIN_MS);
  });
});
