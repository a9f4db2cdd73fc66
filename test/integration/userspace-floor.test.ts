/**
 * The sleeve suite's floor row (bench/suites/userspace-floor.ts): the C forwarder is built from
 * the repository's source, carries a pod's traffic between two lab nodes through its TAPs, and
 * the bed's own check sees its TAPs carry it, and nothing passes without it; a source that does not build is a reason, not a throw.
 */
import { writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFloorForwarder, floorBed, type FloorForwarder } from '../../bench/suites/userspace-floor.js';
import { ping } from '../../lab/traffic.js';

const isRoot = process.getuid?.() === 0;

describe('userspace floor forwarder: build', () => {
  it('a source that does not compile gives the compiler\'s reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-floor-test-'));
    try {
      const bad = join(dir, 'bad.c');
      writeFileSync(bad, 'int main(void) { return nope; }\n');
      const r = buildFloorForwarder(bad);
      expect('why' in r && r.why).toMatch(/cc could not build .*bad\.c.*nope/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!isRoot)('userspace floor forwarder: a pod pinging across two nodes', () => {
  let fwd: FloorForwarder | undefined;

  afterAll(() => fwd?.remove());

  it('carries ping both ways through its TAPs, the bed says so, nothing passes without it; destroy stops it', async () => {
    const built = buildFloorForwarder();
    if ('why' in built) throw new Error(built.why);
    fwd = built.found;
    const bed = await floorBed({ brNetfilter: false }, fwd);
    try {
      const r = await ping(bed.lab, bed.client.ns, bed.server.ipv4!, { count: 20, intervalS: 0.01, timeoutS: 5 });
      expect(r.received).toBe(20);
      await bed.onSleeve!();
      for (const pid of bed.pids) expect(existsSync(`/proc/${pid}`)).toBe(true);
      // The forwarder is the only way across: with the client node's stopped (its TAP goes with it), nothing passes.
      process.kill(bed.pids[0]!, 'SIGKILL');
      const after = await ping(bed.lab, bed.client.ns, bed.server.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 });
      expect(after.received).toBe(0);
    } finally {
      await bed.destroy();
    }
    for (const pid of bed.pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
    fwd.remove();
    expect(existsSync(fwd.binary)).toBe(false);
  });
});
