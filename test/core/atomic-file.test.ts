/**
 * Atomic file writes: every byte written through short writes, errors that name the file and
 * leave the old content and no temp file, create-only writes, leftovers of crashed writers.
 * write(2) is faked (node:fs mocked) to return short counts and errors on demand.
 */
import type * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { removeLeftoverTemps, writeFileAtomicSync } from '../../src/core/atomic-file.js';
import { FileWriteError } from '../../src/core/errors.js';

/** What the faked write(2) does on its n-th call: write this many bytes (at most), or fail. */
type WritePlan = (call: number, length: number) => number | NodeJS.ErrnoException;

const fault = vi.hoisted(() => ({ plan: undefined as WritePlan | undefined, calls: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const writeSync = (fd: number, buf: Uint8Array, off?: number, len?: number): number => {
    const o = off ?? 0;
    const l = len ?? buf.byteLength - o;
    if (fault.plan === undefined) return real.writeSync(fd, buf, o, l);
    const r = fault.plan(fault.calls++, l);
    if (typeof r !== 'number') throw r;
    return r === 0 ? 0 : real.writeSync(fd, buf, o, Math.min(r, l));
  };
  return { ...real, writeSync, default: { ...real, writeSync } };
});

function errno(code: string, text: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${text}, write`), { code, errno: code === 'ENOSPC' ? -28 : -5, syscall: 'write' });
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-atomic-'));
  fault.plan = undefined;
  fault.calls = 0;
});
afterEach(() => {
  fault.plan = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const DATA = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));

describe('writeFileAtomicSync', () => {
  it.each<[string, WritePlan]>([
    ['one byte per call', () => 1],
    ['half, then the rest', (call, len) => (call === 0 ? 5000 : len)],
    ['4096 per call (a page at a time)', () => 4096],
  ])('writes every byte through short writes: %s', (_, plan) => {
    const file = join(dir, 'target');
    fault.plan = plan;
    writeFileAtomicSync(file, DATA, 0o600);
    expect(readFileSync(file).equals(DATA)).toBe(true);
    expect(fault.calls).toBeGreaterThan(1);
    expect(readdirSync(dir)).toEqual(['target']);
  });

  it.each<[string, WritePlan, RegExp]>([
    ['ENOSPC after a short write', (call) => (call === 0 ? 4096 : errno('ENOSPC', 'no space left on device')), /write on .*target failed: no space left on device \(ENOSPC\)/],
    ['EIO on the first write', () => errno('EIO', 'i/o error'), /write on .*target failed: i\/o error \(EIO\)/],
    ['a write that makes no progress', () => 0, /write on .*target failed: write made no progress at byte 0 of 10000 \(EIO\)/],
  ])('%s: a FileWriteError naming the file; the old content stays, no temp file', (_, plan, message) => {
    const file = join(dir, 'target');
    writeFileSync(file, 'old content');
    fault.plan = plan;
    let caught: unknown;
    try {
      writeFileAtomicSync(file, DATA, 0o600);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FileWriteError);
    expect((caught as FileWriteError).code).toBe('ERR_FILE_WRITE');
    expect((caught as FileWriteError).target).toBe(file);
    expect((caught as Error).message).toMatch(message);
    expect(readFileSync(file, 'utf8')).toBe('old content');
    expect(readdirSync(dir)).toEqual(['target']);
  });

  it('exclusive: creates a missing file, refuses an existing one (EEXIST) and keeps it', () => {
    const file = join(dir, 'key');
    writeFileAtomicSync(file, 'first', 0o600, { exclusive: true });
    expect(readFileSync(file, 'utf8')).toBe('first');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(() => writeFileAtomicSync(file, 'second', 0o600, { exclusive: true })).toThrow(/link on .*key failed: .*\(EEXIST\)/);
    expect(readFileSync(file, 'utf8')).toBe('first');
    expect(readdirSync(dir)).toEqual(['key']);
  });

  it('a temp file left by a crashed writer with our pid blocks neither kind of write', () => {
    const file = join(dir, 'key');
    const leftover = join(dir, `.key.tmp-${process.pid}`);
    writeFileSync(leftover, 'half a key');
    writeFileAtomicSync(file, 'made', 0o600, { exclusive: true });
    expect(readFileSync(file, 'utf8')).toBe('made');
    writeFileAtomicSync(file, 'replaced', 0o600);
    expect(readFileSync(file, 'utf8')).toBe('replaced');
    expect(readFileSync(leftover, 'utf8')).toBe('half a key'); // never written into
  });

  it('an unwritable directory is a FileWriteError naming the file', () => {
    expect(() => writeFileAtomicSync(join(dir, 'missing', 'f'), 'x', 0o600)).toThrow(/open on .*missing\/f failed: .*\(ENOENT\)/);
  });
});

describe('removeLeftoverTemps', () => {
  it("removes the temps of gone writers and of this process, keeps a live writer's and other files", () => {
    const file = join(dir, 'identity.key');
    const gone = 2 ** 22 + 12345; // above pid_max's default: no such process
    const names = [
      `.identity.key.tmp-${process.pid}`, // the name an older weft used
      `.identity.key.tmp-${process.pid}-0a1b2c3d`,
      `.identity.key.tmp-${gone}-deadbeef`,
      '.identity.key.tmp-1-00000000', // pid 1 is alive
      '.other.tmp-12',
      'identity.key',
      '.identity.key.tmp-notapid',
    ];
    for (const n of names) writeFileSync(join(dir, n), 'x');
    expect(removeLeftoverTemps(file).sort()).toEqual([names[0], names[1], names[2]].sort());
    expect(readdirSync(dir).sort()).toEqual([names[3], names[4], names[5], names[6]].sort());
    expect(removeLeftoverTemps(join(dir, 'nothing', 'here'))).toEqual([]);
  });
});
