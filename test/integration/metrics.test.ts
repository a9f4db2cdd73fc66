/**
 * The metrics and health endpoint on real routers in the lab (`--metrics-addr` on each node's
 * underlay address, scraped with curl from inside the node's namespace): /readyz is 503 while
 * IPAM waits for its second peer (--ipam-init-peers 2) and 200 once it has started; /healthz is
 * 200 throughout; /metrics parses, and a peer's byte counters grow with a ping between pods.
 * The second router runs from a copy of the package whose package.json says another release
 * (0.99.0): the two mesh and carry traffic, each reporting its own version (peers check only the
 * protocol versions).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, ping } from '../../lab/index.js';
import { parseExposition, valueOf, type Exposition } from '../daemon/prom-text.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const ROOT = process.cwd();
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const OTHER_VERSION = '0.99.0';
const address = (i: number) => `198.18.0.${i + 1}`;

/** A copy of the built package (dist, the addon, package.json with another version) to run a router of another release. */
function otherRelease(): { dir: string; cli: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-other-release-'));
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
  cpSync(join(ROOT, 'build', 'Release', 'weft_native.node'), join(dir, 'build', 'Release', 'weft_native.node'));
  cpSync(join(ROOT, 'binding.gyp'), join(dir, 'binding.gyp'));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, version: OTHER_VERSION }));
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'));
  return { dir, cli: join(dir, 'dist', 'src', 'cli', 'main.js') };
}

describe.skipIf(!isRoot)('metrics and health endpoints on two routers', () => {
  let c: WeftCluster;
  let other: { dir: string; cli: string };

  /** GET from inside node i's namespace: status code and body. */
  const get = async (i: number, path: string): Promise<{ status: number; body: string }> => {
    const r = await c.lab.exec(c.lab.nodes[i]!.ns, ['curl', '-sS', '-m', '5', '-w', '\n%{http_code}', `http://${address(i)}:6782${path}`]);
    if (r.code !== 0) throw new Error(`curl ${path} on n${i + 1}: ${r.stderr}`);
    const cut = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
  };
  const scrape = async (i: number): Promise<Exposition> => {
    const r = await get(i, '/metrics');
    expect(r.status).toBe(200);
    const e = parseExposition(r.body);
    expect(e.problems).toEqual([]);
    return e;
  };

  beforeAll(async () => {
    other = otherRelease();
    c = await WeftCluster.start({
      nodes: 2,
      deferStart: [1],
      extraArgs: ['--ipam-range', '10.46.0.0/16', '--ipam-init-peers', '2', '--fastpath', 'off', '--log-level', 'info'],
      perNodeArgs: (i) => ['--metrics-addr', address(i)],
    });
  }, 90_000);

  afterAll(async () => {
    await c?.destroy();
    if (other !== undefined) rmSync(other.dir, { recursive: true, force: true });
  });

  it('one router up: /healthz 200, /readyz 503 naming IPAM, /metrics with the build and IPAM not ready', async () => {
    expect(await get(0, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    const ready = await get(0, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/^not ready:\n- pods: IPAM not ready: /);
    const e = await scrape(0);
    expect(valueOf(e, 'weft_build_info', { version: VERSION, node_version: process.versions.node })).toBe(1);
    expect(valueOf(e, 'weft_ipam_ready')).toBe(0);
    expect(valueOf(e, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // HEAD, as a probe may send it; the log line of the start carries the version.
    const head = await c.lab.exec(c.lab.nodes[0]!.ns, ['curl', '-sS', '-I', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${address(0)}:6782/readyz`]);
    expect(head.stdout).toBe('503');
    const started = readFileSync(c.routers[0]!.logFile, 'utf8').split('\n').find((l) => l.includes('"weft router started"'));
    expect(JSON.parse(started!)).toMatchObject({ version: VERSION });
  });

  it(`the second router (release ${OTHER_VERSION}) starts: both ready, both meshed, each shows its own release`, async () => {
    const r = c.routers[1]!;
    // As WeftCluster.startRouter does, with the other release's CLI.
    r.process = c.lab.spawn(r.node.ns, [process.execPath, other.cli, ...r.args], { logFile: r.logFile });
    await until('n2 answers its API', async () => c.status(1));
    await c.waitEstablished();
    for (const i of [0, 1]) {
      await until(`n${i + 1} ready`, async () => ((await get(i, '/readyz')).status === 200 ? true : undefined));
      expect(await get(i, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
      expect((await get(i, '/healthz')).status).toBe(200);
    }
    expect((await c.status(0)).build.version).toBe(VERSION);
    expect((await c.status(1)).build.version).toBe(OTHER_VERSION);
    expect(valueOf(await scrape(1), 'weft_build_info', { version: OTHER_VERSION })).toBe(1);
    const e = await scrape(0);
    expect(valueOf(e, 'weft_ipam_ready')).toBe(1);
    expect(valueOf(e, 'weft_mesh_connections', { state: 'established' })).toBe(1);
    expect(valueOf(e, 'weft_peer_up', { nickname: 'n2' })).toBe(1);
  });

  it("a ping between pods grows each side's bytes and frames for the other, on the direct path", async () => {
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    const before = [await scrape(0), await scrape(1)];
    expect((await ping(c.lab, a.ns, b.ipv4!, { count: 5, intervalS: 0.1 })).received).toBe(5);
    const after = [await scrape(0), await scrape(1)];
    const n2 = { nickname: 'n2' };
    const n1 = { nickname: 'n1' };
    for (const [name, i, peer] of [
      ['weft_peer_sent_bytes_total', 0, n2],
      ['weft_peer_received_bytes_total', 0, n2],
      ['weft_peer_sent_frames_total', 1, n1],
      ['weft_peer_received_frames_total', 1, n1],
    ] as const) {
      const was = valueOf(before[i]!, name, peer) ?? 0;
      const now = valueOf(after[i]!, name, peer)!;
      expect(now - was, `${name} on n${i + 1}`).toBeGreaterThanOrEqual(name.endsWith('frames_total') ? 5 : 5 * 84);
    }
    expect(valueOf(after[0]!, 'weft_peer_path', { nickname: 'n2', path: 'direct' })).toBe(1);
    expect(valueOf(after[0]!, 'weft_mesh_handshake_failures_total', { reason: 'version' })).toBe(0);
    expect((await get(0, '/healthz')).status).toBe(200);
  });

  it('a second router on the same --metrics-addr fails to start, naming the flag', async () => {
    const r = c.routers[0]!;
    // Another API socket, state dir, port, bridge and TAP; the same metrics address.
    const args = [...r.args, '--bridge', 'weft-again', '--tap', 'weft-tap-again'];
    const sock = join(c.dir, 'n1-again.sock');
    const at = (flag: string) => args.indexOf(flag) + 1;
    args[at('--api-socket')] = sock;
    args[at('--state-dir')] = join(c.dir, 'state-n1-again');
    args[at('--listen')] = `${address(0)}:6790`;
    const p = c.lab.spawn(r.node.ns, [process.execPath, join(ROOT, 'dist', 'src', 'cli', 'main.js'), ...args]);
    expect((await p.exited).code).toBe(1);
    expect(p.stderrText()).toContain(`--metrics-addr ${address(0)}:6782: cannot listen: the address is in use`);
    expect((await get(0, '/healthz')).status).toBe(200);
  });
});
