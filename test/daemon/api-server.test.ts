import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { ApiServer, apiSocketProblem, prepareSocketDir } from '../../src/daemon/api-server.js';

const uid = process.geteuid?.() ?? 0;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-api-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the API socket', () => {
  it.each([
    ['/run/weft/weft.sock', undefined],
    ['weft.sock', /absolute path/],
    ['\0weft', /absolute path/],
    ['/run/weft/\0x', /NUL byte/],
    [`/${'a'.repeat(107)}`, /longer than 107 bytes/],
    ['/run/weft/', /names a directory/],
  ])('apiSocketProblem(%j)', (path, problem) => {
    const why = apiSocketProblem(path);
    if (problem === undefined) expect(why).toBeUndefined();
    else expect(why).toMatch(problem);
  });

  it('a directory that does not exist is made with mode 0700', () => {
    const d = join(dir, 'run', 'weft');
    prepareSocketDir(d, uid);
    expect(statSync(d).mode & 0o777).toBe(0o700);
  });

  it.each([
    ['writable by others', 0o777, /writable by group or others \(mode 0777\)/],
    ['writable by its group', 0o775, /writable by group or others \(mode 0775\)/],
    ['sticky but world-writable (like /tmp)', 0o1777, /writable by group or others \(mode 1777\)/],
  ])('an existing directory %s is refused', (_, mode, problem) => {
    const d = join(dir, 'shared');
    mkdirSync(d);
    chmodSync(d, mode);
    expect(() => prepareSocketDir(d, uid)).toThrow(problem);
  });

  it('an existing directory of ours that only we write is used as it is', () => {
    const d = join(dir, 'mine');
    mkdirSync(d, { mode: 0o755 });
    chmodSync(d, 0o755);
    expect(() => prepareSocketDir(d, uid)).not.toThrow();
  });

  it('a directory owned by someone else is refused', () => {
    const d = join(dir, 'theirs');
    mkdirSync(d, { mode: 0o700 });
    // only root can give it away; as another user the check is that our own uid is accepted
    if (uid === 0) {
      chmodSync(d, 0o755);
      chownSync(d, 65534, 65534);
      expect(() => prepareSocketDir(d, 0)).toThrow(/belongs to uid 65534/);
    } else {
      expect(() => prepareSocketDir(d, uid)).not.toThrow();
    }
  });

  it('a symbolic link in place of the directory is refused', () => {
    const real = join(dir, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(dir, 'link'));
    expect(() => prepareSocketDir(join(dir, 'link'), uid)).toThrow(/not a directory/);
  });

  it('the server listens on a socket of mode 0600 in a directory of mode 0700, and answers there', async () => {
    const path = join(dir, 'run', 'weft.sock');
    const api = new ApiServer({ logger: silentLogger }, { socketPath: path });
    api.route('GET', '/v1/ping', () => ({ pong: true }));
    await api.start();
    try {
      const st = statSync(path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
      const answer = await new Promise<string>((resolve, reject) => {
        const c = connect(path, () => c.end('GET /v1/ping HTTP/1.0\r\n\r\n'));
        let text = '';
        c.on('data', (d: Buffer) => (text += d.toString()));
        c.on('end', () => resolve(text));
        c.on('error', reject);
      });
      expect(answer).toContain('{"pong":true}');
    } finally {
      await api.stop();
    }
  });

  it('refuses to start on an abstract socket name', async () => {
    const api = new ApiServer({ logger: silentLogger }, { socketPath: '\0weft-api' });
    await expect(api.start()).rejects.toMatchObject({ code: 'ERR_API_SOCKET' });
  });
});
