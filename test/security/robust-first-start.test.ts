/**
 * A first start that crashed while writing the identity key leaves its temp file behind. The
 * temp file was named after the pid and created exclusively, and a router in a container gets
 * the same pid on every start (often 1): every later start failed with EEXIST and the router
 * could never make its key. Now the key is made and the leftover (which may hold half a secret)
 * is removed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IDENTITY_FILE, loadOrCreateIdentity } from '../../src/mesh/identity.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const ROOT = process.getuid?.() === 0;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-first-start-'));
  dirs.push(d);
  return d;
}

describe('identity key after a crashed first start', () => {
  it('a leftover temp file with our pid: the key is made, the leftover removed', () => {
    const state = stateDir();
    writeFileSync(join(state, `.${IDENTITY_FILE}.tmp-${process.pid}`), Buffer.alloc(7, 9), { mode: 0o600 });
    const id = loadOrCreateIdentity(state, 'n1');
    expect(id.created).toBe(true);
    expect(readdirSync(state)).toEqual([IDENTITY_FILE]);
    expect(readFileSync(join(state, IDENTITY_FILE)).equals(id.secretKey)).toBe(true);
    expect(statSync(join(state, IDENTITY_FILE)).mode & 0o777).toBe(0o600);
    expect(loadOrCreateIdentity(state, 'n1').name).toBe(id.name); // and it is the identity from then on
  });

  it('a leftover of a writer that is gone is removed; one of a live writer is left alone', () => {
    const state = stateDir();
    const gone = `.${IDENTITY_FILE}.tmp-${2 ** 22 + 7}-0badf00d`;
    const live = `.${IDENTITY_FILE}.tmp-1-00c0ffee`; // pid 1 is running
    writeFileSync(join(state, gone), 'x');
    writeFileSync(join(state, live), 'y');
    expect(loadOrCreateIdentity(state, 'n1').created).toBe(true);
    expect(readdirSync(state).sort()).toEqual([live, IDENTITY_FILE].sort());
  });

  // The real case: `weft identity` as pid 1 of its own PID namespace (as in a container), with the
  // temp file a crashed pid 1 left.
  it.skipIf(!ROOT || !existsSync(CLI))('weft as pid 1 with the temp file a crashed pid 1 left: the key is made', () => {
    const state = stateDir();
    writeFileSync(join(state, `.${IDENTITY_FILE}.tmp-1`), Buffer.alloc(16), { mode: 0o600 });
    const r = spawnSync('unshare', ['--pid', '--fork', process.execPath, CLI, 'identity', '--state-dir', state], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{16}\n$/);
    expect(readdirSync(state)).toEqual([IDENTITY_FILE]);
  });
});
