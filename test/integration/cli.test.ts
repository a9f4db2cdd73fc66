import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../lab/index.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');

function weft(ns: string | undefined, args: string[], prefix: string[] = []): { code: number | null; out: string; err: string } {
  const argv = [...prefix, process.execPath, CLI, ...args];
  const r = ns === undefined ? spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 }) : spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('weft CLI: bad input gets a clear message and the right exit code', () => {
  let lab: Lab;
  let dir: string;
  let secret: string;
  beforeAll(async () => {
    lab = await Lab.create({ nodes: 1 });
    dir = mkdtempSync(join(tmpdir(), 'weft-cli-'));
    secret = join(dir, 'secret');
    writeFileSync(secret, 'a long enough cluster secret', { mode: 0o600 });
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('invalid flags: one message listing every problem, exit code 2', () => {
    const r = weft(undefined, ['launch', '--name', '-x', '--listen', 'nowhere', '--peer', '1.2.3', '--mtu', 'big', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/invalid weft launch options/);
    for (const what of ['--name', '--listen', '--peer #1', '--mtu', '--secret-file', '--frobnicate']) expect(r.err).toContain(what);
  });

  it('a missing option value is a usage error (exit 2)', () => {
    const r = weft(undefined, ['launch', '--name']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/argument missing/);
  });

  it('a missing secret file is named', () => {
    const r = weft(lab.nodes[0]!.ns, ['launch', '--name', 'n1', '--state-dir', join(dir, 'state'), '--secret-file', join(dir, 'nope'), '--api-socket', join(dir, 'a.sock')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`cannot read the secret file ${join(dir, 'nope')}: no such file`);
  });

  it('a secret that is too short is refused', () => {
    const short = join(dir, 'short');
    writeFileSync(short, 'tiny', { mode: 0o600 });
    const r = weft(lab.nodes[0]!.ns, ['launch', '--name', 'n1', '--state-dir', join(dir, 'state'), '--secret-file', short, '--api-socket', join(dir, 'b.sock')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/secret in .* is 4 bytes; it needs at least 16/);
  });

  it('not root: says it needs root or CAP_NET_ADMIN', () => {
    const r = weft(undefined, ['launch', '--name', 'n1', '--state-dir', join(dir, 'state'), '--secret-file', secret, '--api-socket', join(dir, 'c.sock')], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/needs root \(or CAP_NET_ADMIN\)/);
  });

  it('no /dev/net/tun: says so', () => {
    const r = weft(lab.nodes[0]!.ns, ['launch', '--name', 'n1', '--state-dir', join(dir, 'state'), '--secret-file', secret, '--api-socket', join(dir, 'd.sock')], [
      'unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$@"', 'sh',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\/dev\/net\/tun does not exist/);
  });

  it('UDP port in use: names the address and the cause', async () => {
    const ns = lab.nodes[0]!.ns;
    const holder = lab.spawn(ns, [process.execPath, '-e', "require('dgram').createSocket('udp4').bind(6784, '198.18.0.1', () => process.stdout.write('bound\\n'))"]);
    while (!holder.stdoutText().includes('bound')) await new Promise((r) => setTimeout(r, 50));
    const r = weft(ns, ['launch', '--name', 'n1', '--state-dir', join(dir, 'state'), '--listen', '198.18.0.1:6784', '--secret-file', secret, '--api-socket', join(dir, 'e.sock')]);
    await holder.stop();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bind on udp 198\.18\.0\.1:6784 failed: Address already in use \(EADDRINUSE\)/);
    // nothing left behind: the TAP went with the failed start
    const links = (await lab.exec(ns, ['ip', '-o', 'link', 'show'])).stdout;
    expect(links).not.toContain('weft-tap');
  });

  it('mesh TCP port in use: names the address and the cause, and leaves nothing behind', async () => {
    const ns = lab.nodes[0]!.ns;
    const holder = lab.spawn(ns, [process.execPath, '-e', "require('net').createServer().listen(6784, '198.18.0.1', () => process.stdout.write('bound\\n'))"]);
    while (!holder.stdoutText().includes('bound')) await new Promise((r) => setTimeout(r, 50));
    const r = weft(ns, ['launch', '--name', 'n1', '--state-dir', join(dir, 'state'), '--listen', '198.18.0.1:6784', '--secret-file', secret, '--api-socket', join(dir, 'f.sock')]);
    await holder.stop();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot listen for mesh connections on TCP 198\.18\.0\.1:6784: the port is in use/);
    const links = (await lab.exec(ns, ['ip', '-o', 'link', 'show'])).stdout;
    expect(links).not.toContain('weft-tap');
  });

  it('status without a running router names the socket', () => {
    const r = weft(undefined, ['status', '--socket', join(dir, 'none.sock')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`no weft daemon is listening on ${join(dir, 'none.sock')}`);
  });
});
