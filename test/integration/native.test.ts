import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemError } from '../../src/core/errors.js';
import { Lab } from '../../lab/index.js';
import { LinuxTap, VNET_MAX_READ } from '../../src/platform/linux/linux-tap.js';
import { LinuxUdp } from '../../src/platform/linux/linux-udp.js';
import { closeNetns, openNetns } from '../../src/platform/linux/rtnl.js';
import { RX_META_STRIDE } from '../../src/platform/udp.js';


/** Opens devices inside `ns` with the addon's netns option (restores the thread's namespace). */
function udpIn(ns: string, address: string, port = 0, gro = true): LinuxUdp {
  return new LinuxUdp({ address, port, gro, netns: `/var/run/netns/${ns}` });
}

function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() > end) {
        clearInterval(t);
        reject(new Error('condition not met in time'));
      }
    }, 5);
  });
}

describe('native addon on real devices', () => {
  let lab: Lab;
  let ns: string;
  beforeAll(async () => {
    lab = await Lab.create({ nodes: 2 });
    ns = lab.nodes[0]!.ns;
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('UDP: sendmmsg with scatter-gather and UDP_SEGMENT arrives as GRO trains with the segment size', async () => {
    const rx = udpIn(lab.nodes[1]!.ns, '198.18.0.2');
    const tx = udpIn(ns, '198.18.0.1');
    try {
      const seen: { len: number; seg: number; port: number; a0: number }[] = [];
      rx.start((n) => {
        for (let i = 0; i < n; i++) {
          const m = i * RX_META_STRIDE;
          seen.push({ len: rx.rxMeta[m + 1]!, seg: rx.rxMeta[m + 2]!, port: rx.rxMeta[m + 3]!, a0: rx.rxMeta[m + 5]! });
        }
      });
      const buf = Buffer.alloc(20_000, 7);
      tx.registerBuffer(1, buf);
      tx.setDest(3, '198.18.0.2', rx.localPort);
      // message 0: two iovs, 1000 + 9000 bytes, cut into 1400-byte datagrams; message 1: 500 bytes plain
      tx.txIov.set([1, 0, 1000, 1, 1000, 9000, 1, 10000, 500]);
      tx.txDesc.set([0, 2, 1400, 3, 2, 1, 0, 3]);
      expect(tx.send(2)).toBe(2);
      await until(() => seen.reduce((s, x) => s + x.len, 0) >= 10_500);
      const train = seen.find((x) => x.len === 10_000);
      expect(train?.seg).toBe(1400);
      expect(seen.find((x) => x.len === 500)?.seg).toBe(0);
      expect(seen[0]!.port).toBe(tx.localPort);
      expect(seen[0]!.a0 >>> 0).toBe(((198 << 24) | (18 << 16) | 1) >>> 0);
      expect(tx.counters().txPackets).toBe(9); // 8 segments + 1 datagram
      expect(tx.gsoActive()).toBe(true);
    } finally {
      rx.close();
      tx.close();
    }
  });

  it('UDP: IPv6 sockets work (loopback ::1 inside a namespace)', async () => {
    const a = udpIn(ns, '::1');
    const b = udpIn(ns, '::1');
    try {
      let got = 0;
      let family = 0;
      b.start((n) => {
        got += n;
        family = b.rxMeta[4]!;
      });
      const buf = Buffer.alloc(3000, 1);
      a.registerBuffer(0, buf);
      a.setDest(0, '::1', b.localPort);
      a.txIov.set([0, 0, 3000]);
      a.txDesc.set([0, 1, 1200, 0]);
      a.send(1);
      await until(() => got > 0);
      expect(family).toBe(6);
    } finally {
      a.close();
      b.close();
    }
  });

  it('UDP: errors are typed and name the address', () => {
    expect(() => udpIn(ns, '198.18.0.99')).toThrow(SystemError);
    expect(() => udpIn(ns, '198.18.0.99')).toThrow(/bind on udp 198\.18\.0\.99:0 failed: Cannot assign requested address \(EADDRNOTAVAIL\)/);
  });

  it('UDP: a send to an unroutable destination is counted, not thrown, and the batch goes on', () => {
    const a = udpIn(ns, '198.18.0.1');
    try {
      const buf = Buffer.alloc(100);
      a.registerBuffer(0, buf);
      a.setDest(0, '203.0.113.1', 9); // no route in the node namespace: ENETUNREACH
      a.setDest(1, '198.18.0.2', 9);
      a.txIov.set([0, 0, 100]);
      a.txDesc.set([0, 1, 0, 0, 0, 1, 0, 1]);
      expect(a.send(2)).toBe(1);
      expect(a.counters().txErrors).toBe(1);
      expect(a.counters().lastErrno).toBe(101); // ENETUNREACH
      expect(() => a.send(9999)).toThrow(/send\(count <= txMax\)/);
    } finally {
      a.close();
    }
  });

  it('TAP: creates the device in the namespace with offloads, reads batches, writes frames', async () => {
    const tap = new LinuxTap({ name: 'wt-tap0', vnetHdr: true, netns: `/var/run/netns/${ns}` });
    try {
      expect(tap.name).toBe('wt-tap0');
      expect(tap.stride).toBeGreaterThanOrEqual(VNET_MAX_READ + tap.headroom);
      await lab.exec(ns, ['ip', 'link', 'set', 'wt-tap0', 'up']);
      await lab.exec(ns, ['ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'wt-tap0']);
      const feat = (await lab.exec(ns, ['ethtool', '-k', 'wt-tap0'])).stdout;
      expect(feat).toMatch(/tcp-segmentation-offload: on/);
      const frames: Buffer[] = [];
      tap.start((n) => {
        for (let i = 0; i < n; i++) {
          const off = i * tap.stride + tap.headroom;
          frames.push(Buffer.from(tap.arena.subarray(off, off + tap.lens[i]!)));
        }
      });
      await lab.exec(ns, ['ping', '-c', '1', '-W', '1', '10.99.0.2'], { check: false });
      await until(() => frames.some((f) => f.readUInt16BE(10 + 12) === 0x0806));
      // write an ARP request with a zero vnet header prepended by the addon
      const arp = Buffer.alloc(42);
      arp.fill(0xff, 0, 6);
      Buffer.from([2, 0, 0, 0, 0, 9]).copy(arp, 6);
      arp.writeUInt16BE(0x0806, 12);
      expect(tap.write(arp, 0, 42, true)).toBe(52);
      expect(tap.counters().txPackets).toBe(1);
      // off-zero invalid write is refused with a negative errno, never thrown
      expect(tap.write(Buffer.alloc(4), 0, 4, false)).toBeLessThan(0);
    } finally {
      tap.close();
    }
    const after = await lab.exec(ns, ['ip', 'link', 'show', 'wt-tap0'], { check: false });
    expect(after.code).not.toBe(0); // non-persistent: gone with the fd
  });

  it.each([
    ['io_uring', true, 'wt-tapu'],
    ['read', false, 'wt-tapr'],
  ])('TAP (%s): a queued burst arrives whole and in order, in batches; io_uring needs fewer calls than frames', async (mode, uring, name) => {
    const tap = new LinuxTap({ name, vnetHdr: true, uring, netns: `/var/run/netns/${ns}` });
    try {
      expect(tap.readMode()).toBe(mode);
      await lab.exec(ns, ['ip', 'link', 'set', name, 'up']);
      await lab.exec(ns, ['ip', 'addr', 'add', `10.98.${uring ? 1 : 2}.1/24`, 'dev', name]);
      const peer = `10.98.${uring ? 1 : 2}.2`;
      await lab.exec(ns, ['ip', 'neigh', 'replace', peer, 'lladdr', '02:00:00:00:00:02', 'dev', name]);
      const seqs: number[] = [];
      const batches: number[] = [];
      const onBatch = (n: number): void => {
        batches.push(n);
        for (let i = 0; i < n; i++) {
          const f = i * tap.stride + tap.headroom + 10; // after the virtio_net_hdr
          const len = tap.lens[i]! - 10;
          // IPv4 UDP to port 9999 carrying "seq NNNN"
          if (len >= 42 && tap.arena.readUInt16BE(f + 12) === 0x0800 && tap.arena[f + 23] === 17 && tap.arena.readUInt16BE(f + 36) === 9999) {
            seqs.push(Number(tap.arena.toString('latin1', f + 42 + 4, f + len)));
          }
        }
      };
      // 300 datagrams queue in the TAP while nobody reads, then the reader starts: it must take
      // them in batches (the TAP's queue holds 500 frames).
      const burst = `const s=require('dgram').createSocket('udp4');let i=0;const go=()=>{if(i===300){s.close();return;}s.send('seq '+String(i++).padStart(4,'0'),9999,'${peer}',go)};go();`;
      await lab.exec(ns, ['node', '-e', burst]);
      const before = tap.counters();
      tap.start(onBatch);
      await until(() => seqs.length >= 300);
      const c = tap.counters();
      expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i));
      expect(Math.max(...batches)).toBeGreaterThan(1);
      const calls = c.rxCalls - before.rxCalls;
      const frames = c.rxPackets - before.rxPackets;
      expect(frames).toBeGreaterThanOrEqual(300);
      if (uring) expect(calls).toBeLessThan(frames / 4);
      else expect(calls).toBeGreaterThan(frames);
    } finally {
      tap.close();
    }
  });

  it('TAP: a bad name is a typed error naming the device', () => {
    expect(() => new LinuxTap({ name: 'bad name', vnetHdr: false, netns: `/var/run/netns/${ns}` })).toThrow(/ioctl\(TUNSETIFF\) on tap bad name failed/);
  });

  it('TAP: a device deleted under the reader reports an error once and stops', async () => {
    const tap = new LinuxTap({ name: 'wt-tap1', vnetHdr: false, netns: `/var/run/netns/${ns}` });
    try {
      const counts: number[] = [];
      tap.start((n) => counts.push(n));
      await lab.exec(ns, ['ip', 'link', 'set', 'wt-tap1', 'up']);
      await lab.exec(ns, ['ip', 'link', 'del', 'wt-tap1']);
      await until(() => counts.some((n) => n < 0));
      expect(counts.filter((n) => n < 0)).toHaveLength(1);
    } finally {
      tap.close();
    }
  });

  it('process.exit() and worker termination do not hang with open, polling handles', () => {
    const script = `
      const { loadNative } = await import(${JSON.stringify(new URL('../../src/platform/linux/native.ts', import.meta.url).pathname.replace(/\.ts$/, '.js').replace('/src/', '/dist/src/'))});
      const { Worker } = await import('node:worker_threads');
      const a = loadNative();
      const mk = () => new a.Udp({ netns: '/var/run/netns/${'${NS}'}', address: '198.18.0.1', port: 0, arena: Buffer.alloc(65536), meta: new Int32Array(10), stats: new Float64Array(a.STATS_SIZE), stride: 65536, maxBatch: 1, txDesc: new Int32Array(4), txIov: new Int32Array(3), txMax: 1, txIovMax: 1 });
      mk().start(() => {});
      const w = new Worker(\`
        const { createRequire } = await import('node:module');
        const require = createRequire(import.meta.url);
        const a = require(${JSON.stringify(process.cwd() + '/build/Release/weft_native.node')});
        const u = new a.Udp({ netns: '/var/run/netns/${'${NS}'}', address: '198.18.0.1', port: 0, arena: Buffer.alloc(65536), meta: new Int32Array(10), stats: new Float64Array(a.STATS_SIZE), stride: 65536, maxBatch: 1, txDesc: new Int32Array(4), txIov: new Int32Array(3), txMax: 1, txIovMax: 1 });
        u.start(() => {});
        require('node:worker_threads').parentPort.postMessage('polling');\`, { eval: true });
      w.on('message', async () => { await w.terminate(); process.stdout.write('worker ended\\n'); process.exit(0); });
    `.replaceAll('${NS}', ns);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('worker ended');
    expect(r.status).toBe(0); // a hang would be killed by the spawn timeout and have no status
  });
});

/** A path to `/var/run/netns/<ns>` padded with slashes so that it is exactly `len` bytes long. */
function paddedNetnsPath(ns: string, len: number): string {
  const head = '/var/run/netns/';
  return `${head}${'/'.repeat(len - head.length - ns.length)}${ns}`;
}

describe('native addon limits: never a short datagram, a truncated path or a hung thread', () => {
  let lab: Lab;
  let ns: string;
  let work: string;
  beforeAll(async () => {
    lab = await Lab.create({ nodes: 2 });
    ns = lab.nodes[0]!.ns;
    work = mkdtempSync(join(tmpdir(), 'weft-native-limits-'));
  });
  afterAll(async () => {
    await lab?.destroy();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('UDP: a GSO message sent as separate datagrams drops a datagram of too many pieces whole; the others arrive intact', async () => {
    const rx = udpIn(lab.nodes[1]!.ns, '198.18.0.2', 0, false);
    const tx = udpIn(ns, '198.18.0.1');
    try {
      const got: Buffer[] = [];
      rx.start((n) => {
        for (let i = 0; i < n; i++) {
          const m = i * RX_META_STRIDE;
          got.push(Buffer.from(rx.rxArena.subarray(rx.rxMeta[m]!, rx.rxMeta[m]! + rx.rxMeta[m + 1]!)));
        }
      });
      // 300 datagrams of 100 bytes, datagram k filled with byte k % 256, in one message with
      // UDP_SEGMENT 100: more segments than the kernel's GSO takes (EINVAL), so the addon sends
      // them one by one. Datagram 5 is made of 70 pieces (69 of 1 byte, one of 31).
      const seg = 100;
      const count = 300;
      const buf = Buffer.alloc(count * seg);
      for (let k = 0; k < count; k++) buf.fill(k % 256, k * seg, (k + 1) * seg);
      tx.registerBuffer(0, buf);
      tx.setDest(0, '198.18.0.2', rx.localPort);
      const iov: number[] = [];
      for (let k = 0; k < count; k++) {
        if (k !== 5) iov.push(0, k * seg, seg);
        else {
          for (let b = 0; b < 69; b++) iov.push(0, k * seg + b, 1);
          iov.push(0, k * seg + 69, 31);
        }
      }
      tx.txIov.set(iov);
      tx.txDesc.set([0, iov.length / 3, seg, 0]);
      tx.send(1);
      await until(() => got.length >= count - 1);
      expect(got.every((d) => d.length === seg)).toBe(true);
      expect(got.every((d) => d.every((b) => b === d[0]))).toBe(true);
      expect(got.map((d) => d[0]).sort((a, b) => a! - b!)).toEqual(
        Array.from({ length: count }, (_, k) => k % 256).filter((_, k) => k !== 5).sort((a, b) => a - b),
      );
      const c = tx.counters();
      expect(c.gsoFallbacks).toBe(1);
      expect(c.txIovLimit).toBe(1);
      expect(c.txPackets).toBe(count - 1);
      expect(c.lastErrno).toBe(90); // EMSGSIZE
    } finally {
      rx.close();
      tx.close();
    }
  });

  it('UDP: a message of more iovecs than the kernel takes is a typed error and nothing of the batch is sent', () => {
    const tx = udpIn(ns, '198.18.0.1');
    try {
      const buf = Buffer.alloc(2000, 1);
      tx.registerBuffer(0, buf);
      tx.setDest(0, '198.18.0.2', 9);
      const iov: number[] = [];
      for (let k = 0; k < 1025; k++) iov.push(0, k, 1);
      tx.txIov.set(iov);
      tx.txDesc.set([0, 1, 0, 0, 0, 1025, 0, 0]);
      let caught: unknown;
      try {
        tx.send(2);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RangeError);
      expect((caught as { code?: string }).code).toBe('ERR_UDP_IOV_LIMIT');
      expect((caught as Error).message).toMatch(/message 1 has 1025 iovecs, more than the kernel takes \(IOV_MAX 1024\)/);
      expect(tx.counters().txPackets).toBe(0);
      expect(tx.counters().txErrors).toBe(0);
    } finally {
      tx.close();
    }
  });

  it('netns paths are never truncated: a longer path whose first 255 bytes name a namespace is refused', () => {
    const path = `${paddedNetnsPath(ns, 255)}/not-a-namespace`;
    expect(() => new LinuxUdp({ address: '198.18.0.1', port: 0, netns: path })).toThrow(/setns on .*\/not-a-namespace failed: Not a directory \(ENOTDIR\)/);
    expect(() => new LinuxTap({ name: 'wt-tap9', vnetHdr: false, netns: path })).toThrow(/setns on .*\/not-a-namespace failed: Not a directory \(ENOTDIR\)/);
  });

  it('netns paths longer than PATH_MAX - 1 bytes are a named error (ENAMETOOLONG), not a truncated path', () => {
    const long = `${paddedNetnsPath(ns, 4095)}/x`; // the first 4095 bytes name the namespace
    expect(() => openNetns(long)).toThrow(/open on \/var\/run\/netns\/.*\.\.\. \(4097 bytes, at most 4095\) failed: File name too long \(ENAMETOOLONG\)/);
    expect(() => new LinuxUdp({ address: '198.18.0.1', port: 0, netns: long })).toThrow(/\(4097 bytes, at most 4095\) failed: File name too long \(ENAMETOOLONG\)/);
    expect(() => new LinuxTap({ name: 'wt-tap9', vnetHdr: false, netns: long })).toThrow(/\(4097 bytes, at most 4095\) failed: File name too long \(ENAMETOOLONG\)/);
    const fd = openNetns(paddedNetnsPath(ns, 4095)); // the longest path there is still works
    expect(fd).toBeGreaterThan(2);
    closeNetns(fd);
  });

  it('rtnetlink: an answer that never comes fails the call with ETIMEDOUT instead of holding a pool thread', () => {
    // A preloaded recv() that loses the kernel's answers on netlink sockets, then waits for more.
    const src = join(work, 'lose-netlink-answers.c');
    const so = join(work, 'lose-netlink-answers.so');
    writeFileSync(
      src,
      `#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
ssize_t recv(int fd, void *buf, size_t len, int flags) {
  static ssize_t (*real)(int, void *, size_t, int);
  if (!real) real = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_NETLINK)
    while (real(fd, buf, len, MSG_DONTWAIT) > 0) {}
  return real(fd, buf, len, flags);
}
`,
    );
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', so, src, '-ldl']);
    const rtnl = join(process.cwd(), 'dist', 'src', 'platform', 'linux', 'rtnl.js');
    const script = `
      const { closeNetns, linkGet, openNetns, transact } = await import(${JSON.stringify(rtnl)});
      const fd = openNetns('/var/run/netns/${ns}');
      try {
        const replies = await transact(fd, [linkGet('lo')], 300);
        process.stdout.write(JSON.stringify({ replies: replies.length }));
      } catch (err) {
        process.stdout.write(JSON.stringify({ code: err.code, index: err.index, message: err.message }));
      } finally {
        closeNetns(fd);
      }
    `;
    const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env, timeout: 60_000 });
    const normal = run(process.env);
    expect(normal.stderr).toBe('');
    expect(JSON.parse(normal.stdout)).toEqual({ replies: 1 });
    const lost = run({ ...process.env, LD_PRELOAD: so });
    expect(lost.stderr).toBe('');
    expect(lost.status).toBe(0); // a hang would be killed by the spawn timeout and have no status
    expect(JSON.parse(lost.stdout)).toEqual({ code: 'ETIMEDOUT', index: 0, message: 'looking up lo: ETIMEDOUT (no answer from the kernel within 300 ms)' });
  });
});
