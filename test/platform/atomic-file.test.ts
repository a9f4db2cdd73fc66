import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileWriteError } from '../../src/core/errors.js';
import { FileIpamStore } from '../../src/ipam/state-file.js';
import { atomicWriteFile } from '../../src/platform/linux/atomic-file.js';
import { loadNative } from '../../src/platform/linux/native.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-atomic-'));
});

afterEach(() => {
  chmodSync(dir, 0o700);
  rmSync(dir, { recursive: true, force: true });
});

describe('atomicWriteFile: one thread-pool job replaces a file', () => {
  it('writes, replaces, keeps the mode, leaves no temporary file', async () => {
    const path = join(dir, 'state');
    await atomicWriteFile(path, Buffer.from('first'));
    expect(readFileSync(path, 'utf8')).toBe('first');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    writeFileSync(`${path}.tmp-${process.pid}`, 'left by a crash');
    await atomicWriteFile(path, new Uint8Array([1, 2, 3]), 0o640);
    expect([...readFileSync(path)]).toEqual([1, 2, 3]);
    expect(readdirSync(dir)).toEqual(['state']);
    await atomicWriteFile(path, new Uint8Array(0));
    expect(readFileSync(path).length).toBe(0);
  });

  it('makes a missing directory', async () => {
    const path = join(dir, 'a', 'b', 'state');
    await atomicWriteFile(path, Buffer.from('x'));
    expect(readFileSync(path, 'utf8')).toBe('x');
  });

  it('a directory that cannot be made (a file is in the way; works as root too) is a FileWriteError naming the file, nothing left', async () => {
    const sub = join(dir, 'file');
    writeFileSync(sub, 'in the way');
    const err = await atomicWriteFile(join(sub, 'state'), Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileWriteError);
    expect(err).toMatchObject({ code: 'ERR_FILE_WRITE', errnoName: 'ENOTDIR', target: join(sub, 'state') });
    expect(readdirSync(dir)).toEqual(['file']);
  });

  it('a path that is a directory fails at rename and leaves no temporary file', async () => {
    const path = join(dir, 'taken');
    mkdirSync(join(path, 'inside'), { recursive: true });
    const err = await atomicWriteFile(path, Buffer.from('x')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_FILE_WRITE', syscall: 'rename', errnoName: expect.stringMatching(/^E(ISDIR|NOTEMPTY|EXIST)$/), target: path });
    expect(readdirSync(dir)).toEqual(['taken']);
  });

  it.each<[string, unknown[]]>([
    ['no callback', ['/tmp/x', Buffer.from('x'), 0o600]],
    ['data that is not bytes', ['/tmp/x', 'x', 0o600, () => undefined]],
    ['a mode out of range', ['/tmp/x', Buffer.from('x'), 0o10000, () => undefined]],
    ['an empty path', ['', Buffer.from('x'), 0o600, () => undefined]],
    ['a path with a NUL', ['/tmp/x\0y', Buffer.from('x'), 0o600, () => undefined]],
  ])('refuses %s', (_name, args) => {
    const a = loadNative() as unknown as { atomicWrite: (...x: unknown[]) => void };
    expect(() => a.atomicWrite(...args)).toThrow(/atomicWrite/);
  });
});

describe('FileIpamStore with a writer', () => {
  it('saves through it and reads back; its failure is an IpamStateError naming the file', async () => {
    const path = join(dir, 'ipam.state');
    const store = new FileIpamStore(path, { write: atomicWriteFile });
    await store.save(new Uint8Array([9, 8, 7]));
    expect([...((await store.load()) ?? [])]).toEqual([9, 8, 7]);
    const failing = new FileIpamStore(path, { write: () => Promise.reject(new Error('disk full')) });
    await expect(failing.save(new Uint8Array([1]))).rejects.toMatchObject({ code: 'ERR_IPAM_STATE', message: `IPAM state ${path}: cannot write: disk full` });
  });
});
