/**
 * --stun on the NAT lab (issue 18): a router behind an endpoint-independent NAT asks a STUN
 * server on the internet (lab/stun-server-main.ts on n1's namespace) where it sees the router,
 * and offers the answer (the NAT's public address) as a candidate of kind 'stun'. A second
 * server where nothing answers is reported as failed, with the reason, and harms nothing.
 *
 * n1 public (its router is never started: no peer observes n2, so the NAT's endpoint can only
 * come from STUN, not as a reflexive candidate), n2 behind nat1 (eim, 198.18.0.201).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/core/paths.js';
import { startNatCluster, type LabProcess, type NatCluster } from '../../lab/index.js';
import { labNamespaces, until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const stunMain = join(packageRoot(import.meta.url), 'dist', 'lab', 'stun-server-main.js');
const SERVER = '198.18.0.1:3478';
const SILENT = '198.18.0.9:3478';

describe.skipIf(!isRoot)('STUN client on the NAT lab', () => {
  let nc: NatCluster | undefined;
  let server: LabProcess | undefined;

  beforeAll(async () => {
    nc = await startNatCluster({
      nat: { publicNodes: 1, nats: [{ kind: 'eim', nodes: 1 }] },
      perNodeArgs: (i) => (i === 1 ? ['--stun', SERVER, '--stun', SILENT] : []),
      cluster: { deferStart: [0] },
    });
    server = nc.nl.lab.spawn(nc.nl.nodes[0]!.ns, [process.execPath, stunMain, '--listen', SERVER]);
    for (let t = 0; t < 100 && !server.stdoutText().includes('"ready"'); t++) await new Promise((r) => setTimeout(r, 50));
    expect(server.stdoutText(), 'the STUN server is ready').toContain('"ready"');
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    const prefix = nc?.nl.prefix;
    await nc?.destroy();
    if (prefix !== undefined) expect(labNamespaces(prefix)).toEqual([]);
  });

  it("offers the NAT's public endpoint as a 'stun' candidate, and says the silent server failed", async () => {
    const c = nc!.c;
    const nat = nc!.nl.natOf(1)!;
    expect(nat.public4).toBe('198.18.0.201');
    // (the router started before the server: its first request went unanswered; the retry 6 s later is)
    const s = await until(
      'n2 mapped by the STUN server',
      async () => {
        const st = await c.status(1);
        return st.mesh.endpoints.stun.find((x) => x.server === SERVER)?.state === 'mapped' ? st : undefined;
      },
      45_000,
    );
    const e = s.mesh.endpoints;
    const mine = e.stun.find((x) => x.server === SERVER)!;
    expect(mine).toMatchObject({ resolved: '198.18.0.1', state: 'mapped', lastError: '' });
    expect(mine.mapped).toMatch(/^198\.18\.0\.201:\d+$/);
    expect(e.candidates).toContainEqual({ endpoint: mine.mapped, kind: 'stun' });
    // Nothing answers at the second: failed, with why, retried.
    const silent = e.stun.find((x) => x.server === SILENT)!;
    expect(silent).toMatchObject({ resolved: '198.18.0.9', state: 'failed', mapped: '' });
    expect(silent.lastError).toBe('no answer from 198.18.0.9:3478 in 3 s');
    expect(silent.requests).toBeGreaterThanOrEqual(2);
    expect(server!.stdoutText()).toContain(`"answered":"${mine.mapped}"`);
    // The router runs on, and its STUN answers reached no sleeve parsing.
    expect(c.routers[1]!.process).toBeDefined();
    const again = await c.status(1);
    expect(again.mesh.endpoints.candidates.filter((x) => x.kind === 'stun')).toEqual([{ endpoint: mine.mapped, kind: 'stun' }]);
    expect(again.drops).toMatchObject({ 'rx.stunUnmatched': 0, 'rx.stunMalformed': 0 });
  }, 90_000);
});
