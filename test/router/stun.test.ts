import { describe, expect, it } from 'vitest';
import { isStunBindingSuccess, readBindingSuccess, sameTransaction, writeBindingRequest } from '../../src/router/sleeve/stun.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// RFC 5769's sample responses: transaction id, mapped 192.0.2.1:32853 and 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
const TXID = hex('b7e7a701 bc34d686 fa87dfae');
const SOFTWARE = hex('8022 000b 74657374 20766563 746f7220'); // "test vector" (11 bytes, padded to 12)
const XOR4 = hex('0020 0008 0001 a147 e112a643');
const XOR6 = hex('0020 0014 0002 a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9');
const PLAIN4 = hex('0001 0008 0001 8055 c0000201');

function response(...attrs: Buffer[]): Buffer {
  const body = Buffer.concat(attrs);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(0x0101, 0);
  h.writeUInt16BE(body.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  TXID.copy(h, 8);
  return Buffer.concat([h, body]);
}

describe('STUN Binding', () => {
  it('writes a Binding request: type, no attributes, the cookie and the transaction id', () => {
    const buf = Buffer.alloc(24, 0xee);
    expect(writeBindingRequest(buf, 2, TXID)).toBe(20);
    expect(buf.subarray(2, 22).toString('hex')).toBe(`000100002112a442${TXID.toString('hex')}`);
    expect(buf[0]).toBe(0xee);
    expect(buf[22]).toBe(0xee);
    expect(() => writeBindingRequest(buf, 0, TXID.subarray(0, 8))).toThrow('12 bytes, not 8');
  });

  it.each([
    ['XOR-MAPPED-ADDRESS, IPv4 (after an attribute with padding)', [SOFTWARE, XOR4], { address: '192.0.2.1', port: 32853, family: 4, from: 'xor-mapped-address' }],
    ['XOR-MAPPED-ADDRESS, IPv6', [SOFTWARE, XOR6], { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853, family: 6, from: 'xor-mapped-address' }],
    ['XOR-MAPPED-ADDRESS preferred to MAPPED-ADDRESS', [PLAIN4, XOR6], { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853, family: 6, from: 'xor-mapped-address' }],
    ['MAPPED-ADDRESS alone (an RFC 3489 server)', [PLAIN4], { address: '192.0.2.1', port: 32853, family: 4, from: 'mapped-address' }],
  ])('reads %s', (_what, attrs, want) => {
    const msg = response(...attrs);
    expect(isStunBindingSuccess(msg, 0, msg.length)).toBe(true);
    expect(sameTransaction(msg, 0, TXID)).toBe(true);
    expect(readBindingSuccess(msg, 0, msg.length)).toEqual(want);
  });

  it('reads at an offset inside a larger buffer', () => {
    const msg = Buffer.concat([Buffer.alloc(7), response(XOR4), Buffer.alloc(5)]);
    expect(readBindingSuccess(msg, 7, msg.length - 12)).toMatchObject({ address: '192.0.2.1', port: 32853 });
  });

  const lengthSet = (m: Buffer, n: number) => (m.writeUInt16BE(n, 2), m);
  it.each<[string, () => { buf: Buffer; len?: number }, string]>([
    ['a sleeve datagram', () => ({ buf: hex('0108 0201 00000002 00000001 00000007 0000000000000001') }), 'not a STUN Binding success response'],
    ['a Binding request', () => ({ buf: (() => { const b = Buffer.alloc(20); writeBindingRequest(b, 0, TXID); return b; })() }), 'not a STUN Binding success response'],
    ['a wrong cookie', () => ({ buf: (() => { const b = response(XOR4); b.writeUInt32BE(0x2112a443, 4); return b; })() }), 'not a STUN Binding success response'],
    ['a short header', () => ({ buf: response(XOR4).subarray(0, 19) }), 'not a STUN Binding success response'],
    ['a length past the datagram', () => ({ buf: response(XOR4), len: 28 }), 'STUN message length 12 runs past the datagram (8 bytes after the header)'],
    ['a length not a multiple of 4', () => ({ buf: lengthSet(response(XOR4), 10) }), 'STUN message length 10 is not a multiple of 4'],
    ['an attribute past the message', () => ({ buf: response(hex('0020 0040 0001 a147 e112a643')) }), 'STUN attribute 0x0020 at byte 20: length 64 runs past the message'],
    ['an unknown family', () => ({ buf: response(hex('0020 0008 0003 a147 e112a643')) }), 'STUN XOR-MAPPED-ADDRESS has an unknown address family 3'],
    ['an IPv6 family with an IPv4 length', () => ({ buf: response(hex('0020 0008 0002 a147 e112a643')) }), 'STUN XOR-MAPPED-ADDRESS of family 2 is 8 bytes, not 20'],
    ['a too short address', () => ({ buf: response(hex('0020 0002 0001 0000')) }), 'STUN XOR-MAPPED-ADDRESS of 2 bytes is too short'],
    ['no mapped address', () => ({ buf: response(SOFTWARE) }), 'STUN Binding success response without a mapped address'],
  ])('refuses %s with a reason', (_what, make, reason) => {
    const { buf, len } = make();
    expect(readBindingSuccess(buf, 0, len ?? buf.length)).toBe(reason);
  });

  it('tells another transaction apart', () => {
    const msg = response(XOR4);
    const other = Buffer.from(TXID);
    other.writeUInt8(other.readUInt8(11) ^ 1, 11);
    expect(sameTransaction(msg, 0, other)).toBe(false);
  });
});
