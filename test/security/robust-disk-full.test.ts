/**
 * A nearly full disk (a real 256 KiB tmpfs, mounted on a temp directory and unmounted after):
 * every file weft writes atomically either gets its new content whole or keeps its old content,
 * with an error naming the file and ENOSPC, and no temp file left. Before atomic writes looped
 * over short writes, a write that took only what fitted was fsynced and renamed over the old file:
 * a truncated CNI binary, conflist, release journal entry or topology version, with no error.
 * Root only (mount); skipped otherwise.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { installCni } from '../../src/cni/install.js';
import { writeFileAtomicSync } from '../../src/core/atomic-file.js';
import { FileWriteError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { ReleaseJournal } from '../../src/api/release-journal.js';
import { buildMeshGossip } from '../../src/daemon/mesh-gossip.js';
import { IDENTITY_FILE, IdentityError, generateIdentity, loadOrCreateIdentity } from '../../src/mesh/identity.js';
import { IpamStateError } from '../../src/ipam/errors.js';
import { FileIpamStore } from '../../src/ipam/state-file.js';
import type { Mesh } from '../../src/mesh/mesh.js';
import { FakeClock } from '../fakes/fake-clock.js';

const ROOT = process.getuid?.() === 0;
const PAGE = 4096;

let base: string;
let disk: string;
let mounted = false;

beforeAll(() => {
  if (!ROOT) return;
  base = mkdtempSync(join(tmpdir(), 'weft-full-'));
  disk = join(base, 'disk');
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0755', 'weft-test-full', disk]);
  mounted = true;
});

afterAll(() => {
  if (!ROOT) return;
  if (mounted) {
    try {
      execFileSync('umount', [disk]);
    } catch {
      execFileSync('umount', ['-l', disk]);
    }
  }
  rmSync(base, { recursive: true, force: true });
});

beforeEach(() => {
  if (!ROOT) return;
  for (const n of readdirSync(disk)) rmSync(join(disk, n), { recursive: true, force: true });
});

/** Fills the disk until only `pages` pages are free. */
function fill(pages = 0): void {
  const s = statfsSync(disk);
  const free = s.bavail * s.bsize;
  const want = free - pages * PAGE;
  if (want > 0) {
    try {
      writeFileSync(join(disk, 'filler'), Buffer.alloc(want, 1), { flag: 'a' });
    } catch {
      // as full as it gets
    }
  }
  expect(statfsSync(disk).bavail).toBeLessThanOrEqual(pages);
}

/** Every file name under `dir` (recursively), temp files included. */
function names(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => !n.endsWith('filler')).sort();
}

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error, none was thrown');
}

describe.skipIf(!ROOT)('atomic writes on a full disk (tmpfs)', () => {
  it('a write larger than the free space: ENOSPC naming the file, old content kept, no temp file', () => {
    const file = join(disk, 'target');
    writeFileSync(file, 'old');
    fill(1);
    const err = thrown(() => writeFileAtomicSync(file, Buffer.alloc(3 * PAGE, 7), 0o644));
    expect(err).toBeInstanceOf(FileWriteError);
    expect(err.message).toMatch(new RegExp(`write on ${file} failed: .*\\(ENOSPC\\)`));
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(names(disk)).toEqual(['target']);
  });

  it('CNI install: the plugin binary and conflist are whole or untouched; the error names the file', () => {
    const binDir = join(disk, 'bin');
    const confDir = join(disk, 'net.d');
    const pluginMain = join(base, 'main.js');
    writeFileSync(pluginMain, '');
    const shim = join(base, 'weft-cni');
    writeFileSync(shim, Buffer.alloc(10 * PAGE, 0x5a)); // stands for the native binary
    const first = installCni({ binDir, confDir, pluginMain, shim, portmap: false, name: 'first' });
    const before = { plugin: readFileSync(first.plugin), wrapper: readFileSync(first.wrapper), conflist: readFileSync(first.conflist, 'utf8') };
    writeFileSync(shim, Buffer.alloc(12 * PAGE, 0xa5)); // a new build, bigger
    fill(2);
    const err = thrown(() => installCni({ binDir, confDir, pluginMain, shim, portmap: false, name: 'second' }));
    expect(err).toBeInstanceOf(FileWriteError);
    expect(err.message).toMatch(new RegExp(`on ${first.plugin} failed: .*\\(ENOSPC\\)`));
    expect(readFileSync(first.plugin).equals(before.plugin)).toBe(true);
    expect(readFileSync(first.conflist, 'utf8')).toBe(before.conflist);
    expect(readFileSync(first.wrapper).equals(before.wrapper)).toBe(true); // same text: rewritten whole
    expect(names(disk)).toEqual(['bin', 'bin/weft', 'bin/weft-node', 'net.d', 'net.d/00-weft.conflist']);
  });

  it('release journal: a record that does not fit fails naming its file; earlier entries stay readable', () => {
    const j = new ReleaseJournal(join(disk, 'pending-releases'));
    j.record('c1', 'eth0', 1000);
    fill(1);
    const err = thrown(() => j.record('c2-'.padEnd(3 * PAGE, 'x'), 'eth0', 2000));
    expect(err).toBeInstanceOf(FileWriteError);
    expect(err.message).toMatch(/on .*pending-releases\/[0-9a-f]{32}\.release\.json failed: .*\(ENOSPC\)/);
    expect(j.pending()).toEqual([{ containerId: 'c1', ifName: 'eth0', at: 1000 }]);
    expect(j.unreadable).toEqual([]);
    expect(names(disk).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('identity key: no key and no temp file when it cannot be written, made once there is room', () => {
    const state = join(disk, 'state');
    mkdirSync(state);
    fill(0);
    const err = thrown(() => loadOrCreateIdentity(state, 'n1'));
    expect(err).toBeInstanceOf(IdentityError);
    expect(err.message).toMatch(new RegExp(`cannot write the identity key in ${state}: .*${IDENTITY_FILE} failed: .*\\(ENOSPC\\)`));
    expect(names(state)).toEqual([]);
    rmSync(join(disk, 'filler'));
    const id = loadOrCreateIdentity(state, 'n1');
    expect(id.created).toBe(true);
    expect(names(state)).toEqual([IDENTITY_FILE]);
  });

  it('IPAM state: a save that does not fit rejects naming the file; the previous state stays', async () => {
    const store = new FileIpamStore(join(disk, 'ipam.state'));
    await store.save(Buffer.alloc(100, 1));
    fill(1);
    const err = await store.save(Buffer.alloc(4 * PAGE, 2)).then(
      () => new Error('saved'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(IpamStateError);
    expect(err.message).toMatch(/ipam\.state.*ENOSPC/);
    expect(Buffer.from((await store.load())!).equals(Buffer.alloc(100, 1))).toBe(true);
    expect(names(disk)).toEqual(['ipam.state']);
  });

  it('topology version: a save that fails is logged with the file and ENOSPC; the old version stays', () => {
    const state = join(disk, 'state');
    mkdirSync(state);
    writeFileSync(join(state, 'topology.version'), '41\n');
    fill(0);
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', sink: { write: (l: string) => lines.push(l) > 0 } });
    const channel = { start: () => undefined, stop: () => undefined };
    const mesh = { attach: () => undefined, newChannel: () => channel, forgotten: () => undefined } as unknown as Mesh;
    const g = buildMeshGossip({ mesh, clock: new FakeClock(), logger }, { identity: generateIdentity('n1'), endpoints: [], stateDir: state });
    g.start();
    g.stop();
    const warned = lines.map((l) => JSON.parse(l) as { msg: string; file?: string; err?: string }).filter((r) => r.msg === 'cannot save the topology version');
    expect(warned.length).toBeGreaterThan(0);
    expect(warned[0]!.file).toBe(join(state, 'topology.version'));
    expect(warned[0]!.err).toMatch(/ENOSPC/);
    expect(readFileSync(join(state, 'topology.version'), 'utf8')).toBe('41\n');
    expect(names(state)).toEqual(['topology.version']);
  });
});
