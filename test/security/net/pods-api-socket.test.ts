/**
 * Who can reach the router's local API (root, real processes): a router on a lab node with its
 * socket in a directory it makes itself, under a parent anyone may traverse. A non-root user on
 * the node (even one in root's group) and a process in a pod's network namespace cannot connect;
 * the router has no abstract socket and listens on nothing but its API socket and its mesh port;
 * a socket directory others may write is refused at start.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../../../src/api/client.js';
import { Lab, type LabNode, type LabPod, type LabProcess } from '../../../lab/lab.js';
import { until } from '../../integration/helpers.js';

const isRoot = process.getuid?.() === 0;
const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');

// Connects to the Unix socket PATH; prints "connected" or the error code.
const CONNECT = `
const c = require('node:net').connect(process.argv[1]);
c.on('connect', () => { process.stdout.write('connected\\n'); c.destroy(); });
c.on('error', (e) => process.stdout.write(e.code + '\\n'));`;

describe.skipIf(!isRoot)("the router's API socket is for root only", () => {
  let lab: Lab;
  let node: LabNode;
  let pod: LabPod;
  let dir: string;
  let socket: string;
  let router: LabProcess;

  function launchArgs(apiSocket: string, state: string, on = node): string[] {
    return [process.execPath, CLI, 'launch', '--name', on.name, '--listen', `${on.address}:6784`, '--state-dir', join(dir, state), '--secret-file', join(dir, 'secret'), '--api-socket', apiSocket, '--ipam-range', 'none'];
  }

  /** `CONNECT` run as uid 65534 with gid 0 (root's group), in namespace `ns`. */
  function connectAsNobody(ns: string): string {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=65534', '--regid=0', '--clear-groups', '--', process.execPath, '-e', CONNECT, socket], { encoding: 'utf8', timeout: 20_000 });
    return r.stdout.trim();
  }

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 2 });
    node = lab.nodes[0]!;
    pod = await lab.addPod(node, { name: 'p1', ipv4: '10.47.0.2/24' });
    dir = mkdtempSync(join(tmpdir(), 'weft-api-'));
    chmodSync(dir, 0o755); // anyone may traverse it: only the router's own directory and socket protect the API
    writeFileSync(join(dir, 'secret'), 'a long enough cluster secret', { mode: 0o600 });
    socket = join(dir, 'run', 'weft.sock');
    router = lab.spawn(node.ns, launchArgs(socket, 'state'));
    await until('the router answers', () => callApi(socket, 'GET', '/v1/status').then(() => true), 30_000);
  }, 60_000);

  afterAll(async () => {
    await router?.stop(5000);
    await lab?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the socket has mode 0600 and its directory 0700, both root', () => {
    const s = statSync(socket);
    expect(s.isSocket()).toBe(true);
    expect((s.mode & 0o7777).toString(8)).toBe('600');
    expect(s.uid).toBe(0);
    const d = statSync(join(dir, 'run'));
    expect((d.mode & 0o7777).toString(8)).toBe('700');
    expect(d.uid).toBe(0);
  });

  it('a non-root user on the node, even in root\'s group, cannot connect', () => {
    expect(connectAsNobody(node.ns)).toBe('EACCES');
  });

  it("a process in a pod's network namespace cannot connect", () => {
    expect(connectAsNobody(pod.ns)).toBe('EACCES');
  });

  it('the router has no abstract socket and listens on nothing but the API socket and its mesh port', () => {
    const pid = router.pid;
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m !== null) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
    // Unix sockets: "Num RefCount Protocol Flags Type St Inode Path"; flag 0x10000 = listening
    const unix = readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 7 && inodes.has(f[6]!));
    expect(unix.filter((f) => (f[7] ?? '').startsWith('@')).map((f) => f[7])).toEqual([]);
    expect(unix.filter((f) => (parseInt(f[3]!, 16) & 0x10000) !== 0).map((f) => f[7])).toEqual([socket]);
    // TCP: listening (state 0A) sockets of the router, by local port
    const listening: number[] = [];
    for (const file of ['tcp', 'tcp6']) {
      for (const l of readFileSync(`/proc/${pid}/net/${file}`, 'utf8').split('\n').slice(1)) {
        const f = l.trim().split(/\s+/);
        if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) listening.push(parseInt(f[1]!.split(':')[1]!, 16));
      }
    }
    expect(listening).toEqual([6784]);
  });

  it('a socket directory others may write is refused at start (they could put their own socket there)', () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const n2 = lab.nodes[1]!;
    const r = spawnSync('ip', ['netns', 'exec', n2.ns, ...launchArgs(join(shared, 'weft.sock'), 'state-2', n2)], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/directory .*shared is writable by group or others \(mode 1777\)/);
  });
});
