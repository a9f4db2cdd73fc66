/**
 * Hand-made frames for the pod attack tests, and a way to send them from inside a pod: a TAP in
 * the attacker's network namespace, bridged there with its eth0, so whatever the test writes to
 * the TAP leaves through the pod's veth exactly as written (any source MAC, any address, any
 * ethertype). No tool beyond the native addon and iproute2 is needed.
 */
import { isIPv4 } from 'node:net';
import { LinuxTap } from '../../../src/platform/linux/linux-tap.js';
import { execIn } from '../../../lab/lab-process.js';
import { ipv6Hex } from '../../../src/daemon/pod-guard-rules.js';

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((x) => parseInt(x, 16)));
}

function ip4Bytes(a: string): Buffer {
  if (!isIPv4(a)) throw new Error(`${a} is not IPv4`);
  return Buffer.from(a.split('.').map(Number));
}

function ip6Bytes(a: string): Buffer {
  return Buffer.from(ipv6Hex(a), 'hex');
}

function checksum(...parts: Buffer[]): number {
  const b = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ether(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  const f = Buffer.concat([h, payload]);
  return f.length >= 60 ? f : Buffer.concat([f, Buffer.alloc(60 - f.length)]);
}

/** An 802.1Q-tagged frame. */
export function vlanFrame(dst: string, src: string, vid: number, type: number, payload: Buffer): Buffer {
  const tag = Buffer.alloc(4);
  tag.writeUInt16BE(vid & 0xfff, 0);
  tag.writeUInt16BE(type, 2);
  return ether(dst, src, 0x8100, Buffer.concat([tag, payload]));
}

/** ARP for Ethernet/IPv4; op 1 request, 2 reply. */
export function arp(op: 1 | 2, senderMac: string, senderIp: string, targetMac: string, targetIp: string): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(op, 6);
  macBytes(senderMac).copy(b, 8);
  ip4Bytes(senderIp).copy(b, 14);
  macBytes(targetMac).copy(b, 18);
  ip4Bytes(targetIp).copy(b, 24);
  return b;
}

export function ipv4(src: string, dst: string, proto: number, payload: Buffer, ttl = 64): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(0x4000, 6); // DF
  h[8] = ttl;
  h[9] = proto;
  ip4Bytes(src).copy(h, 12);
  ip4Bytes(dst).copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, payload]);
}

export function udp4(src: string, dst: string, sport: number, dport: number, data: Buffer): Buffer {
  const u = Buffer.alloc(8);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(8 + data.length, 4);
  const pseudo = Buffer.concat([ip4Bytes(src), ip4Bytes(dst), Buffer.from([0, 17]), Buffer.from([(8 + data.length) >> 8, (8 + data.length) & 0xff])]);
  u.writeUInt16BE(checksum(pseudo, u, data) || 0xffff, 6);
  return ipv4(src, dst, 17, Buffer.concat([u, data]));
}

/** ICMP echo request with `data`. */
export function icmpEcho4(src: string, dst: string, id: number, data: Buffer): Buffer {
  const m = Buffer.alloc(8);
  m[0] = 8;
  m.writeUInt16BE(id, 4);
  m.writeUInt16BE(1, 6);
  m.writeUInt16BE(checksum(m, data), 2);
  return ipv4(src, dst, 1, Buffer.concat([m, data]));
}

export function ipv6(src: string, dst: string, next: number, payload: Buffer, hopLimit = 64): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = next;
  h[7] = hopLimit;
  ip6Bytes(src).copy(h, 8);
  ip6Bytes(dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** ICMPv6 (type, code, body after the 4-byte header), checksummed, in an IPv6 packet. */
export function icmpv6(src: string, dst: string, type: number, code: number, body: Buffer, hopLimit = 255): Buffer {
  const m = Buffer.concat([Buffer.from([type, code, 0, 0]), body]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(m.length, 0);
  const pseudo = Buffer.concat([ip6Bytes(src), ip6Bytes(dst), len, Buffer.from([0, 0, 0, 58])]);
  m.writeUInt16BE(checksum(pseudo, m), 2);
  return ipv6(src, dst, 58, m, hopLimit);
}

/** Neighbour advertisement: `target` is at `mac` (router 0, solicited `solicited`, override 1). */
export function neighborAdvert(src: string, dst: string, target: string, mac: string, solicited: boolean): Buffer {
  const body = Buffer.alloc(4 + 16 + 8);
  body[0] = (solicited ? 0x40 : 0) | 0x20;
  ip6Bytes(target).copy(body, 4);
  body[20] = 2; // target link-layer address
  body[21] = 1;
  macBytes(mac).copy(body, 22);
  return icmpv6(src, dst, 136, 0, body);
}

/** Router advertisement: a default router for `lifetime` s and an autonomous /64 `prefix`. */
export function routerAdvert(src: string, mac: string, prefix: string, lifetime: number): Buffer {
  const ra = Buffer.alloc(12);
  ra[0] = 64; // cur hop limit
  ra.writeUInt16BE(lifetime, 2);
  const slla = Buffer.concat([Buffer.from([1, 1]), macBytes(mac)]);
  const pi = Buffer.alloc(32);
  pi[0] = 3;
  pi[1] = 4;
  pi[2] = 64;
  pi[3] = 0xc0; // on-link, autonomous
  pi.writeUInt32BE(86400, 4);
  pi.writeUInt32BE(14400, 8);
  ip6Bytes(prefix).copy(pi, 16);
  return icmpv6(src, 'ff02::1', 134, 0, Buffer.concat([ra, slla, pi]));
}

/** The IPv6 multicast MAC of an address (33:33 + its low 32 bits). */
export function multicastMac(address: string): string {
  const b = ip6Bytes(address);
  return ['33', '33', ...[...b.subarray(12)].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/**
 * The raw sender inside a pod: its eth0 becomes a port of a bridge in the pod's namespace, with a
 * TAP this process writes to. IPv6 is off on both (the pod's stack sends nothing by itself), so
 * every frame that leaves is one the test wrote.
 */
export class RawPod {
  private readonly tap: LinuxTap;

  private constructor(tap: LinuxTap) {
    this.tap = tap;
  }

  static async open(ns: string): Promise<RawPod> {
    const sh = (argv: string[]) => execIn(ns, argv, { timeoutMs: 10_000 });
    await sh(['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await sh(['ip', 'link', 'add', 'rawbr', 'type', 'bridge']);
    const tap = new LinuxTap({ name: 'rawtap', vnetHdr: false, maxFrame: 1514, netns: `/var/run/netns/${ns}` });
    try {
      await sh(['ip', 'link', 'set', 'eth0', 'master', 'rawbr']);
      await sh(['ip', 'link', 'set', 'rawtap', 'master', 'rawbr']);
      await sh(['ip', 'link', 'set', 'rawtap', 'up']);
      await sh(['ip', 'link', 'set', 'rawbr', 'up']);
    } catch (err) {
      tap.close();
      throw err;
    }
    return new RawPod(tap);
  }

  /** Writes each frame `times` times; returns how many were written. */
  send(frames: Buffer[], times = 1): number {
    let n = 0;
    for (let i = 0; i < times; i++) {
      for (const f of frames) if (this.tap.write(f, 0, f.length, false) > 0) n++;
    }
    return n;
  }

  close(): void {
    this.tap.close();
  }
}
