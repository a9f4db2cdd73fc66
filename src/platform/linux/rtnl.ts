/**
 * rtnetlink requests through the native addon (native/rtnl.c): links, addresses and routes in
 * any network namespace without starting a process. Messages are built here; the addon sends
 * them one at a time on the thread pool, from a socket opened inside the namespace, and stops at
 * the first refusal.
 *
 *   const ns = openNetns('/var/run/netns/pod1');   // checked to be a network namespace
 *   try { await transact(ns, [linkSet({ name: 'lo', up: true })]); } finally { closeNetns(ns); }
 *
 * Layouts (include/uapi/linux/rtnetlink.h, if_link.h, if_addr.h, veth.h, netlink.h): nlmsghdr 16
 * bytes, ifinfomsg 16, ifaddrmsg 8, rtmsg 12, attributes 4-byte headers padded to 4.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { WeftError } from '../../core/errors.js';
import { formatLinkAddress } from '../../core/mac.js';
import { bigintToAddress } from '../../core/net.js';
import { loadNative } from './native.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
const RTM_NEWNEIGH = 28;
const RTM_GETNEIGH = 30;

const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

const IFF_UP = 0x1;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_KIND = 4;
const IFLA_INFO_SLAVE_DATA = 5;
const VETH_INFO_PEER = 1;
const IFLA_BRPORT_MODE = 4; // hairpin
const NLA_F_NESTED = 0x8000;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_F_NODAD = 0x02;

const NDA_LLADDR = 2;
const NDA_MASTER = 9;
const NUD_NOARP = 0x40;
const NUD_PERMANENT = 0x80;
const AF_BRIDGE = 7;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
export const RTN_UNICAST = 1;
const RTNH_F_ONLINK = 4;

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;

/** A request the kernel refused: `index` is its position in the call, `code` e.g. 'EEXIST'. */
export class RtnlError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly index: number;

  constructor(index: number, errno: number, code: string, detail: string, what: string) {
    super(`${what}: ${code}${detail === '' ? '' : ` (${detail})`}`);
    this.name = 'RtnlError';
    this.errno = errno;
    this.code = code;
    this.index = index;
  }
}

/** One netlink request and a description for errors ("creating veth eth0/vw..."). */
export interface RtnlRequest {
  message: Buffer;
  what: string;
}

interface RtnlNative {
  rtnlTransact(nsFd: number, requests: Buffer, cb: (r: { done: number; errno: number; code: string; message: string; replies: Buffer }) => void, timeoutMs?: number): void;
  netnsOpen(path: string): number;
  closeFd(fd: number): void;
}

function native(): RtnlNative {
  return loadNative() as unknown as RtnlNative;
}

/** An fd of the network namespace at `path`; throws (code ERR_NETNS, errnoName) when it is none. */
export function openNetns(path: string): number {
  return native().netnsOpen(path);
}

export function closeNetns(fd: number): void {
  native().closeFd(fd);
}

/** The caller's own namespace, for `transact`. */
export const HERE = -1;

/** How long the addon waits for each answer before failing the call with ETIMEDOUT. */
export const RTNL_TIMEOUT_MS = 10_000;

/**
 * Sends the requests in order inside namespace `nsFd` (HERE: ours); resolves with the answers
 * (non-ack messages, e.g. a GETLINK's link) or rejects with the first refusal as an RtnlError
 * (code 'ETIMEDOUT' when the kernel's answer did not come within `timeoutMs`).
 */
export function transact(nsFd: number, requests: readonly RtnlRequest[], timeoutMs = RTNL_TIMEOUT_MS): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    native().rtnlTransact(nsFd, Buffer.concat(requests.map((r) => r.message)), (r) => {
      if (r.errno !== 0) {
        const what = requests[Math.min(r.done, requests.length - 1)]?.what ?? 'netlink request';
        reject(new RtnlError(r.done, r.errno, r.code, r.message, what));
        return;
      }
      const out: Buffer[] = [];
      for (let off = 0; off + 16 <= r.replies.length; ) {
        const len = r.replies.readUInt32LE(off);
        if (len < 16) break;
        out.push(r.replies.subarray(off, off + len));
        off += (len + 3) & ~3;
      }
      resolve(out);
    }, timeoutMs);
  });
}

/* ---------- building messages ---------- */

class Attrs {
  private readonly parts: Buffer[] = [];

  raw(type: number, data: Buffer): this {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(4 + data.length, 0);
    h.writeUInt16LE(type, 2);
    this.parts.push(h, data, Buffer.alloc(((data.length + 3) & ~3) - data.length));
    return this;
  }

  u8(type: number, v: number): this {
    return this.raw(type, Buffer.from([v]));
  }

  u32(type: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0, 0);
    return this.raw(type, b);
  }

  str(type: number, s: string): this {
    return this.raw(type, Buffer.from(`${s}\0`, 'utf8'));
  }

  nest(type: number, inner: Attrs | Buffer): this {
    return this.raw(type | NLA_F_NESTED, inner instanceof Attrs ? inner.bytes() : inner);
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function message(type: number, flags: number, header: Buffer, attrs: Attrs): Buffer {
  const body = attrs.bytes();
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + header.length + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags | NLM_F_REQUEST, 6);
  return Buffer.concat([h, header, body]);
}

function ifinfomsg(index = 0, up?: boolean): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  if (up !== undefined) {
    b.writeUInt32LE(up ? IFF_UP : 0, 8); // flags
    b.writeUInt32LE(IFF_UP, 12); // change
  }
  return b;
}

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new WeftError('ERR_INVALID_MAC', `${mac} is not a MAC address`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function ipBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address)) throw new WeftError('ERR_INVALID_ADDRESS', `${address} is not an IP address`);
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = ipBytes(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head === '' ? [] : head!.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Reads the interface index out of a RTM_NEWLINK answer (ifinfomsg.ifi_index). */
export function linkIndexOf(reply: Buffer): number {
  return reply.readInt32LE(16 + 4);
}

/** GETLINK by name: the answer carries the link (see linkIndexOf); ENODEV when there is none. */
export function linkGet(name: string): RtnlRequest {
  return { message: message(RTM_GETLINK, 0, ifinfomsg(), new Attrs().str(IFLA_IFNAME, name)), what: `looking up ${name}` };
}

/** Changes an existing link, named or by index: up/down, master. */
export function linkSet(o: { name?: string; index?: number; up?: boolean; master?: number }): RtnlRequest {
  const a = new Attrs();
  if (o.name !== undefined) a.str(IFLA_IFNAME, o.name);
  if (o.master !== undefined) a.u32(IFLA_MASTER, o.master);
  return { message: message(RTM_NEWLINK, 0, ifinfomsg(o.index ?? 0, o.up), a), what: `setting ${o.name ?? `link ${o.index}`}${o.up === true ? ' up' : ''}` };
}

/** Hairpin on or off on a bridge port (`ip link set dev X type bridge_slave hairpin on`). */
export function bridgePortHairpin(name: string, on: boolean): RtnlRequest {
  const info = new Attrs().str(IFLA_INFO_SLAVE_KIND, 'bridge').nest(IFLA_INFO_SLAVE_DATA, new Attrs().u8(IFLA_BRPORT_MODE, on ? 1 : 0));
  return { message: message(RTM_NEWLINK, 0, ifinfomsg(), new Attrs().str(IFLA_IFNAME, name).nest(IFLA_LINKINFO, info)), what: `setting hairpin on ${name}` };
}

export interface VethSpec {
  /** The end made here, in the namespace of the socket. */
  name: string;
  mac: string;
  mtu: number;
  master?: number;
  up?: boolean;
  /** The other end, made straight inside the namespace `peerNsFd`. */
  peer: { name: string; mac: string; mtu: number; nsFd: number };
}

/** Creates a veth pair (EEXIST when a name is taken in either namespace). */
export function vethAdd(s: VethSpec): RtnlRequest {
  const peer = new Attrs().str(IFLA_IFNAME, s.peer.name).raw(IFLA_ADDRESS, macBytes(s.peer.mac)).u32(IFLA_MTU, s.peer.mtu).u32(IFLA_NET_NS_FD, s.peer.nsFd);
  const info = new Attrs().str(IFLA_INFO_KIND, 'veth').nest(IFLA_INFO_DATA, new Attrs().nest(VETH_INFO_PEER, Buffer.concat([ifinfomsg(), peer.bytes()])));
  const a = new Attrs().str(IFLA_IFNAME, s.name).raw(IFLA_ADDRESS, macBytes(s.mac)).u32(IFLA_MTU, s.mtu);
  if (s.master !== undefined) a.u32(IFLA_MASTER, s.master);
  a.nest(IFLA_LINKINFO, info);
  return {
    message: message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0, s.up), a),
    what: `creating veth ${s.peer.name}/${s.name}`,
  };
}

/** Deletes a link by name (ENODEV when there is none). */
export function linkDelete(name: string): RtnlRequest {
  return { message: message(RTM_DELLINK, 0, ifinfomsg(), new Attrs().str(IFLA_IFNAME, name)), what: `deleting ${name}` };
}

/** Adds an address (EEXIST when present); IPv6 without duplicate address detection when `nodad`. */
export function addressAdd(o: { index: number; address: string; prefixLength: number; nodad?: boolean }): RtnlRequest {
  const v4 = isIPv4(o.address);
  const h = Buffer.alloc(8);
  h.writeUInt8(v4 ? AF_INET : AF_INET6, 0);
  h.writeUInt8(o.prefixLength, 1);
  h.writeUInt8(o.nodad === true ? IFA_F_NODAD : 0, 2);
  h.writeUInt8(RT_SCOPE_UNIVERSE, 3);
  h.writeUInt32LE(o.index, 4);
  const ip = ipBytes(o.address);
  const a = new Attrs().raw(IFA_LOCAL, ip).raw(IFA_ADDRESS, ip);
  return { message: message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, h, a), what: `adding ${o.address}/${o.prefixLength}` };
}

/** A default route through `gateway` on link `index`, on-link (the gateway needs no covering prefix). */
export function defaultRouteAdd(o: { index: number; gateway: string }): RtnlRequest {
  return routeAdd({ index: o.index, dst: isIPv4(o.gateway) ? '0.0.0.0' : '::', prefixLength: 0, gateway: o.gateway });
}

/**
 * A route to `dst/prefixLength` on link `index` in the main table (EEXIST when one to that prefix
 * is there already): through `gateway` on-link (it needs no covering prefix), or straight on the
 * link (scope link) without one.
 */
export function routeAdd(o: { index: number; dst: string; prefixLength: number; gateway?: string }): RtnlRequest {
  const v4 = isIPv4(o.dst);
  const h = Buffer.alloc(12);
  h.writeUInt8(v4 ? AF_INET : AF_INET6, 0);
  h.writeUInt8(o.prefixLength, 1); // dst_len
  h.writeUInt8(RT_TABLE_MAIN, 4);
  h.writeUInt8(RTPROT_BOOT, 5);
  h.writeUInt8(o.gateway === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE, 6);
  h.writeUInt8(RTN_UNICAST, 7);
  h.writeUInt32LE(o.gateway === undefined ? 0 : RTNH_F_ONLINK, 8);
  const a = new Attrs();
  if (o.prefixLength > 0) a.raw(RTA_DST, ipBytes(o.dst));
  if (o.gateway !== undefined) a.raw(RTA_GATEWAY, ipBytes(o.gateway));
  a.u32(RTA_OIF, o.index);
  const to = o.prefixLength === 0 ? 'the default route' : `the route to ${o.dst}/${o.prefixLength}`;
  return { message: message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, h, a), what: `adding ${to}${o.gateway === undefined ? '' : ` via ${o.gateway}`}` };
}

/** Every route of the namespace, both families, all tables (see parseRoute for each answer). */
export function routeDump(): RtnlRequest {
  return { message: message(RTM_GETROUTE, NLM_F_DUMP, Buffer.alloc(12), new Attrs()), what: 'listing the routes' };
}

export interface RouteInfo {
  family: 4 | 6;
  table: number;
  /** rtm_type: 1 unicast (2 local, 3 broadcast, ...). */
  type: number;
  dst: string;
  prefixLength: number;
  gateway?: string;
  oif?: number;
}

function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/** Reads a RTM_NEWROUTE answer of routeDump; undefined for another message or family. */
export function parseRoute(reply: Buffer): RouteInfo | undefined {
  if (reply.length < 28 || reply.readUInt16LE(4) !== RTM_NEWROUTE) return undefined;
  const fam = reply.readUInt8(16);
  if (fam !== AF_INET && fam !== AF_INET6) return undefined;
  const family: 4 | 6 = fam === AF_INET ? 4 : 6;
  const r: RouteInfo = { family, table: reply.readUInt8(20), type: reply.readUInt8(23), dst: family === 4 ? '0.0.0.0' : '::', prefixLength: reply.readUInt8(17) };
  const end = Math.min(reply.readUInt32LE(0), reply.length);
  for (const [type, data] of attributes(reply, 28, end)) {
    if (type === RTA_DST) r.dst = formatIp(data);
    else if (type === RTA_GATEWAY) r.gateway = formatIp(data);
    else if (type === RTA_OIF && data.length >= 4) r.oif = data.readUInt32LE(0);
    else if (type === RTA_TABLE && data.length >= 4) r.table = data.readUInt32LE(0);
  }
  return r;
}

/** Every link of the namespace (see parseLink for each answer): what `ip -d link show` lists, without a process. */
export function linkDump(): RtnlRequest {
  return { message: message(RTM_GETLINK, NLM_F_DUMP, ifinfomsg(), new Attrs()), what: 'listing the links' };
}

/** One link of a linkDump, its master as an index (resolve it within the same dump). */
export interface RtnlLink {
  index: number;
  name: string;
  mtu: number;
  up: boolean;
  masterIndex: number | undefined;
  /** IFLA_INFO_KIND: 'bridge', 'veth', 'vxlan', 'tun', ...; undefined for a plain link. */
  kind: string | undefined;
  mac: string | undefined;
  /** The hairpin mode of a bridge port (IFLA_BRPORT_MODE); undefined for a link that is no bridge port. */
  hairpin: boolean | undefined;
}

/** The attributes (type, value) in reply[start, end), each value a view; stops at the first malformed one. */
function* attributes(reply: Buffer, start: number, end: number): Generator<[number, Buffer]> {
  for (let off = start; off + 4 <= end; ) {
    const len = reply.readUInt16LE(off);
    if (len < 4 || off + len > end) return;
    yield [reply.readUInt16LE(off + 2) & 0x3fff, reply.subarray(off + 4, off + len)];
    off += (len + 3) & ~3;
  }
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

/** Reads a RTM_NEWLINK answer (of linkDump or linkGet); undefined for another message or one too short to be a link. */
export function parseLink(reply: Buffer): RtnlLink | undefined {
  if (reply.length < 32 || reply.readUInt16LE(4) !== RTM_NEWLINK) return undefined;
  const end = Math.min(reply.readUInt32LE(0), reply.length);
  const l: RtnlLink = {
    index: reply.readInt32LE(20), name: '', mtu: 0, up: (reply.readUInt32LE(24) & IFF_UP) !== 0,
    masterIndex: undefined, kind: undefined, mac: undefined, hairpin: undefined,
  };
  for (const [type, data] of attributes(reply, 32, end)) {
    if (type === IFLA_IFNAME) l.name = cString(data);
    else if (type === IFLA_MTU && data.length >= 4) l.mtu = data.readUInt32LE(0);
    else if (type === IFLA_MASTER && data.length >= 4) l.masterIndex = data.readUInt32LE(0);
    else if (type === IFLA_ADDRESS && data.length > 0) l.mac = formatLinkAddress(data);
    else if (type === IFLA_LINKINFO) {
      let slaveKind: string | undefined;
      let slaveData: Buffer | undefined;
      for (const [t, d] of attributes(data, 0, data.length)) {
        if (t === IFLA_INFO_KIND) l.kind = cString(d);
        else if (t === IFLA_INFO_SLAVE_KIND) slaveKind = cString(d);
        else if (t === IFLA_INFO_SLAVE_DATA) slaveData = d;
      }
      if (slaveKind === 'bridge' && slaveData !== undefined) {
        for (const [t, d] of attributes(slaveData, 0, slaveData.length)) if (t === IFLA_BRPORT_MODE && d.length >= 1) l.hairpin = d[0] !== 0;
      }
    }
  }
  return l;
}

/** Every address of the namespace, both families (see parseAddress for each answer). */
export function addressDump(): RtnlRequest {
  return { message: message(RTM_GETADDR, NLM_F_DUMP, Buffer.alloc(8), new Attrs()), what: 'listing the addresses' };
}

export interface RtnlAddress {
  family: 4 | 6;
  index: number;
  prefixLength: number;
  /** ifa_scope: 0 global (RT_SCOPE_UNIVERSE), 253 link, 254 host. */
  scope: number;
  /** IFA_LOCAL when there is one (IPv4: the interface's own address), else IFA_ADDRESS, as `ip` shows "local". */
  address: string;
}

/** An address as `ip` prints it (IPv6 with the longest run of zero groups as "::"). */
function canonicalIp(b: Buffer): string {
  return bigintToAddress(BigInt(`0x${b.toString('hex')}`), b.length === 4 ? 4 : 6);
}

/** Reads a RTM_NEWADDR answer of addressDump; undefined for another message, family, or one without an address. */
export function parseAddress(reply: Buffer): RtnlAddress | undefined {
  if (reply.length < 24 || reply.readUInt16LE(4) !== RTM_NEWADDR) return undefined;
  const fam = reply.readUInt8(16);
  if (fam !== AF_INET && fam !== AF_INET6) return undefined;
  let local: string | undefined;
  let address: string | undefined;
  const size = fam === AF_INET ? 4 : 16;
  for (const [type, data] of attributes(reply, 24, Math.min(reply.readUInt32LE(0), reply.length))) {
    if (data.length !== size) continue;
    if (type === IFA_LOCAL) local = canonicalIp(data);
    else if (type === IFA_ADDRESS) address = canonicalIp(data);
  }
  const a = local ?? address;
  if (a === undefined) return undefined;
  return { family: fam === AF_INET ? 4 : 6, index: reply.readUInt32LE(20), prefixLength: reply.readUInt8(17), scope: reply.readUInt8(19), address: a };
}

/** Every bridge forwarding entry of the namespace, of every bridge and device (see parseFdb). */
export function fdbDump(): RtnlRequest {
  const ndmsg = Buffer.alloc(12);
  ndmsg.writeUInt8(AF_BRIDGE, 0);
  return { message: message(RTM_GETNEIGH, NLM_F_DUMP, ndmsg, new Attrs()), what: 'listing the bridge forwarding entries' };
}

export interface RtnlFdb {
  mac: string;
  /** The device the entry points to (a bridge port, or the bridge itself). */
  index: number;
  /** NDA_MASTER: the bridge the entry belongs to; undefined for a device's own ("self") entries. */
  masterIndex: number | undefined;
  /** What `bridge fdb` prints: permanent (NUD_PERMANENT), static (NUD_NOARP), else learned. */
  kind: 'learned' | 'static' | 'permanent';
}

/** Reads a RTM_NEWNEIGH answer of fdbDump; undefined for another message, family, or one without a MAC. */
export function parseFdb(reply: Buffer): RtnlFdb | undefined {
  if (reply.length < 28 || reply.readUInt16LE(4) !== RTM_NEWNEIGH || reply.readUInt8(16) !== AF_BRIDGE) return undefined;
  let mac: string | undefined;
  let masterIndex: number | undefined;
  for (const [type, data] of attributes(reply, 28, Math.min(reply.readUInt32LE(0), reply.length))) {
    if (type === NDA_LLADDR && data.length === 6) mac = formatLinkAddress(data);
    else if (type === NDA_MASTER && data.length >= 4) masterIndex = data.readUInt32LE(0);
  }
  if (mac === undefined) return undefined;
  const state = reply.readUInt16LE(24);
  const kind = (state & NUD_PERMANENT) !== 0 ? 'permanent' : (state & NUD_NOARP) !== 0 ? 'static' : 'learned';
  return { mac, index: reply.readInt32LE(20), masterIndex, kind };
}

/** The link-layer address (IFLA_ADDRESS) of a RTM_NEWLINK answer, as 'aa:bb:..'; undefined when it has none. */
export function linkAddressOf(reply: Buffer): string | undefined {
  return parseLink(reply)?.mac;
}
