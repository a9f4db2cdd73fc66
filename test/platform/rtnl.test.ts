import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressAdd, addressDump, bridgePortHairpin, defaultRouteAdd, fdbDump, ipBytes, linkAddressOf, linkDump, linkGet, linkIndexOf, macBytes, parseAddress, parseFdb, parseLink, parseRoute, routeAdd, routeDump, vethAdd,
} from '../../src/platform/linux/rtnl.js';

/** Attributes of a message body as [type, payload] (nested flag kept in the type). */
function attrs(buf: Buffer, off: number): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    out.push([buf.readUInt16LE(off + 2), buf.subarray(off + 4, off + len)]);
    off += (len + 3) & ~3;
  }
  return out;
}

describe('rtnetlink messages', () => {
  it('parses IPv4 and every IPv6 spelling to bytes', () => {
    expect([...ipBytes('10.32.0.1')]).toEqual([10, 32, 0, 1]);
    expect(ipBytes('fd00::1').toString('hex')).toBe('fd000000000000000000000000000001');
    expect(ipBytes('::').toString('hex')).toBe('0'.repeat(32));
    expect(ipBytes('::1').toString('hex')).toBe(`${'0'.repeat(31)}1`);
    expect(ipBytes('fe80::').toString('hex')).toBe(`fe80${'0'.repeat(28)}`);
    expect(ipBytes('1:2:3:4:5:6:7:8').toString('hex')).toBe('00010002000300040005000600070008');
    expect(ipBytes('fd00:99::a:b').toString('hex')).toBe('fd0000990000000000000000000a000b');
    expect(ipBytes('::ffff:198.18.0.1').toString('hex')).toBe('00000000000000000000ffffc6120001');
    expect(() => ipBytes('10.0.0.256')).toThrow(/not an IP address/);
    expect(() => ipBytes('fd00:::1')).toThrow(/not an IP address/);
  });

  it('parses MACs and refuses what is not one', () => {
    expect(macBytes('02:aB:00:ff:10:01').toString('hex')).toBe('02ab00ff1001');
    expect(() => macBytes('02:ab:00:ff:10')).toThrow(/not a MAC address/);
    expect(() => macBytes('02:ab:00:ff:10:1g')).toThrow(/not a MAC address/);
  });

  it('frames a GETLINK: header length, type, request flag, the name NUL-terminated and padded', () => {
    const m = linkGet('eth0').message;
    expect(m.readUInt32LE(0)).toBe(m.length);
    expect(m.length % 4).toBe(0);
    expect(m.readUInt16LE(4)).toBe(18);
    expect(m.readUInt16LE(6) & 1).toBe(1);
    expect(attrs(m, 32)).toEqual([[3, Buffer.from('eth0\0')]]);
  });

  it('nests the veth peer (its own ifinfomsg, then name, MAC, MTU, namespace fd) inside link info', () => {
    const m = vethAdd({ name: 'vwabc', mac: '02:00:00:00:00:01', mtu: 1376, master: 7, up: true, peer: { name: 'eth0', mac: '02:00:00:00:00:02', mtu: 1376, nsFd: 42 } }).message;
    expect(m.readUInt32LE(0)).toBe(m.length);
    expect(m.readUInt16LE(6) & 0x600).toBe(0x600); // create, exclusive
    expect(m.readUInt32LE(16 + 8)).toBe(1); // IFF_UP in flags
    expect(m.readUInt32LE(16 + 12)).toBe(1); // and in change
    const top = new Map(attrs(m, 32));
    expect(top.get(3)).toEqual(Buffer.from('vwabc\0'));
    expect(top.get(1)!.toString('hex')).toBe('020000000001');
    expect(top.get(4)!.readUInt32LE(0)).toBe(1376);
    expect(top.get(10)!.readUInt32LE(0)).toBe(7);
    const info = new Map(attrs(top.get(18 | 0x8000)!, 0));
    expect(info.get(1)).toEqual(Buffer.from('veth\0'));
    const peer = new Map(attrs(info.get(2 | 0x8000)!, 0)).get(1 | 0x8000)!;
    const peerAttrs = new Map(attrs(peer, 16));
    expect(peerAttrs.get(3)).toEqual(Buffer.from('eth0\0'));
    expect(peerAttrs.get(1)!.toString('hex')).toBe('020000000002');
    expect(peerAttrs.get(28)!.readUInt32LE(0)).toBe(42);
  });

  it('builds addresses (IPv6 with nodad) and on-link default routes per family', () => {
    const a6 = addressAdd({ index: 5, address: 'fd00:99::2', prefixLength: 64, nodad: true }).message;
    expect([a6.readUInt8(16), a6.readUInt8(17), a6.readUInt8(18), a6.readUInt32LE(20)]).toEqual([10, 64, 2, 5]);
    expect(new Map(attrs(a6, 24)).get(2)!.toString('hex')).toBe('fd000099000000000000000000000002');
    const a4 = addressAdd({ index: 5, address: '10.99.0.2', prefixLength: 24 }).message;
    expect([a4.readUInt8(16), a4.readUInt8(17), a4.readUInt8(18)]).toEqual([2, 24, 0]);
    const r = defaultRouteAdd({ index: 5, gateway: '10.99.0.1' }).message;
    expect([r.readUInt8(16), r.readUInt8(17), r.readUInt8(20), r.readUInt8(23), r.readUInt32LE(24)]).toEqual([2, 0, 254, 1, 4]);
    const ra = new Map(attrs(r, 28));
    expect([...ra.get(5)!]).toEqual([10, 99, 0, 1]);
    expect(ra.get(4)!.readUInt32LE(0)).toBe(5);
  });

  it('reads the link index out of a NEWLINK answer', () => {
    const reply = Buffer.alloc(32);
    reply.writeInt32LE(9, 20);
    expect(linkIndexOf(reply)).toBe(9);
  });

  it('builds routes to a prefix: via an on-link gateway, or on the link (scope link) without one', () => {
    const via = routeAdd({ index: 7, dst: 'fd01::', prefixLength: 48, gateway: 'fd00:99::1' }).message;
    expect([via.readUInt8(16), via.readUInt8(17), via.readUInt8(20), via.readUInt8(22), via.readUInt32LE(24)]).toEqual([10, 48, 254, 0, 4]);
    const va = new Map(attrs(via, 28));
    expect(va.get(1)!.toString('hex')).toBe('fd010000000000000000000000000000');
    expect(va.get(5)!.toString('hex')).toBe('fd000099000000000000000000000001');
    expect(va.get(4)!.readUInt32LE(0)).toBe(7);
    const on = routeAdd({ index: 7, dst: '192.168.0.0', prefixLength: 16 }).message;
    expect([on.readUInt8(16), on.readUInt8(17), on.readUInt8(22), on.readUInt32LE(24)]).toEqual([2, 16, 253, 0]);
    expect(new Map(attrs(on, 28)).has(5)).toBe(false);
    // a route dump request: GETROUTE with NLM_F_DUMP
    const d = routeDump().message;
    expect([d.readUInt16LE(4), d.readUInt16LE(6) & 0x300]).toEqual([26, 0x300]);
  });

  it('reads routes of a dump and the MAC of a NEWLINK answer', () => {
    // A NEWROUTE answer has the layout of the request: reuse one as the kernel's reply.
    const reply = routeAdd({ index: 3, dst: '10.1.0.0', prefixLength: 16, gateway: '10.99.0.1' }).message;
    expect(parseRoute(reply)).toEqual({ family: 4, table: 254, type: 1, dst: '10.1.0.0', prefixLength: 16, gateway: '10.99.0.1', oif: 3 });
    expect(parseRoute(defaultRouteAdd({ index: 3, gateway: 'fd00::1' }).message)).toMatchObject({ family: 6, dst: '::', prefixLength: 0, gateway: 'fd00:0:0:0:0:0:0:1' });
    expect(parseRoute(linkGet('eth0').message)).toBeUndefined();
    const link = vethAdd({ name: 'a', mac: '02:00:00:00:00:0a', mtu: 1500, peer: { name: 'b', mac: '02:00:00:00:00:0b', mtu: 1500, nsFd: 1 } }).message;
    expect(linkAddressOf(link)).toBe('02:00:00:00:00:0a');
    expect(linkAddressOf(linkGet('eth0').message)).toBeUndefined();
  });

  it('reads a link of a dump: name, MTU, up, master, kind, MAC and a bridge port\'s hairpin', () => {
    const d = linkDump().message;
    expect([d.readUInt16LE(4), d.readUInt16LE(6) & 0x300]).toEqual([18, 0x300]);
    // A NEWLINK answer has the layout of the request: reuse requests as the kernel's replies.
    const veth = vethAdd({ name: 'vp1', mac: '02:00:00:00:00:0a', mtu: 1400, master: 3, up: true, peer: { name: 'eth0', mac: '02:00:00:00:00:0b', mtu: 1400, nsFd: 1 } }).message;
    expect(parseLink(veth)).toEqual({ index: 0, name: 'vp1', mtu: 1400, up: true, masterIndex: 3, kind: 'veth', mac: '02:00:00:00:00:0a', hairpin: undefined });
    expect(parseLink(bridgePortHairpin('vp1', true).message)).toMatchObject({ name: 'vp1', up: false, kind: undefined, hairpin: true });
    expect(parseLink(bridgePortHairpin('vp1', false).message)?.hairpin).toBe(false);
    expect(parseLink(routeDump().message)).toBeUndefined();
    expect(parseLink(veth.subarray(0, 31))).toBeUndefined();
    // Cut inside the MTU (after the name, 8 bytes, and the MAC, 12): what came before it is read, the rest ignored.
    const cut = parseLink(veth.subarray(0, 32 + 8 + 12 + 6));
    expect(cut).toMatchObject({ name: 'vp1', mac: '02:00:00:00:00:0a', mtu: 0, masterIndex: undefined, kind: undefined });
  });

  it('never throws on a NEWLINK answer with bytes changed anywhere', () => {
    const veth = vethAdd({ name: 'vp1', mac: '02:00:00:00:00:0a', mtu: 1400, master: 3, up: true, peer: { name: 'eth0', mac: '02:00:00:00:00:0b', mtu: 1400, nsFd: 1 } }).message;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(veth.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }), fc.nat(veth.length), (edits, keep) => {
        const b = Buffer.from(veth);
        for (const [at, v] of edits) if (at !== 4 && at !== 5) b[at] = v; // (the type stays NEWLINK)
        const l = parseLink(b.subarray(0, Math.max(32, keep)));
        expect(l).toBeDefined();
        expect(typeof l!.name).toBe('string');
      }),
      { numRuns: 500 },
    );
  });

  it('reads an address of a dump: family, index, prefix, scope, the local address, IPv6 as ip prints it', () => {
    const d = addressDump().message;
    expect([d.readUInt16LE(4), d.readUInt16LE(6) & 0x300, d.length]).toEqual([22, 0x300, 24]);
    // A NEWADDR answer has the layout of the request.
    expect(parseAddress(addressAdd({ index: 5, address: '10.1.2.3', prefixLength: 24 }).message)).toEqual({ family: 4, index: 5, prefixLength: 24, scope: 0, address: '10.1.2.3' });
    expect(parseAddress(addressAdd({ index: 5, address: 'fd00:0:0:0:1:0:0:1', prefixLength: 80 }).message)?.address).toBe('fd00::1:0:0:1');
    expect(parseAddress(addressAdd({ index: 5, address: 'fd00:1::', prefixLength: 64 }).message)?.address).toBe('fd00:1::');
    expect(parseAddress(linkGet('eth0').message)).toBeUndefined();
    // the header alone: no address in it
    expect(parseAddress(addressAdd({ index: 5, address: '10.1.2.3', prefixLength: 24 }).message.subarray(0, 24))).toBeUndefined();
  });

  it('reads a bridge forwarding entry: MAC, device, master, permanent / static / learned', () => {
    const d = fdbDump().message;
    expect([d.readUInt16LE(4), d.readUInt16LE(6) & 0x300, d.readUInt8(16)]).toEqual([30, 0x300, 7]);
    const entry = (state: number, master?: number, family = 7, type = 28): Buffer => {
      const attrs = [Buffer.from([10, 0, 2, 0, 0x02, 0, 0, 0, 0x41, 0x01, 0, 0])]; // NDA_LLADDR, padded
      if (master !== undefined) {
        const m = Buffer.alloc(8);
        m.writeUInt16LE(8, 0);
        m.writeUInt16LE(9, 2);
        m.writeUInt32LE(master, 4);
        attrs.push(m);
      }
      const h = Buffer.alloc(28);
      h.writeUInt16LE(type, 4);
      h.writeUInt8(family, 16);
      h.writeInt32LE(6, 20);
      h.writeUInt16LE(state, 24);
      const b = Buffer.concat([h, ...attrs]);
      b.writeUInt32LE(b.length, 0);
      return b;
    };
    expect(parseFdb(entry(0x02, 3))).toEqual({ mac: '02:00:00:00:41:01', index: 6, masterIndex: 3, kind: 'learned' });
    expect(parseFdb(entry(0x40, 3))?.kind).toBe('static');
    expect(parseFdb(entry(0x80))).toEqual({ mac: '02:00:00:00:41:01', index: 6, masterIndex: undefined, kind: 'permanent' });
    expect(parseFdb(entry(0x02, 3, 2))).toBeUndefined(); // an IPv4 neighbour, not a bridge entry
    expect(parseFdb(entry(0x02, 3, 7, 16))).toBeUndefined();
    expect(parseFdb(entry(0x02, 3).subarray(0, 28))).toBeUndefined(); // no MAC
  });

  it('never throws on address or forwarding answers with bytes changed anywhere', () => {
    const samples = [addressAdd({ index: 5, address: 'fd00::1', prefixLength: 64 }).message, addressAdd({ index: 5, address: '10.0.0.1', prefixLength: 8 }).message];
    fc.assert(
      fc.property(fc.nat(1), fc.array(fc.tuple(fc.nat(63), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }), fc.nat(64), (which, edits, keep) => {
        const b = Buffer.from(samples[which]!);
        for (const [at, v] of edits) if (at < b.length) b[at] = v;
        const cut = b.subarray(0, Math.min(b.length, keep));
        parseAddress(cut);
        parseFdb(cut);
        parseLink(cut);
        parseRoute(cut);
      }),
      { numRuns: 1000 },
    );
  });
});
