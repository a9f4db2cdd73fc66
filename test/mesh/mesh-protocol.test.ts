import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  MESH_VERSION,
  FrameReader,
  MAX_HANDSHAKE_FRAME,
  MSG_BROADCAST,
  MSG_GOSSIP,
  MSG_HELLO,
  MSG_PING,
  MSG_UNICAST,
  MeshProtocolError,
  TransportCipher,
  checkPreamble,
  decodeMessage,
  encodeMessage,
  frame,
  preamble,
  type MeshMessage,
} from '../../src/mesh/mesh-protocol.js';

const A = '0123456789abcdef';
const B = 'fedcba9876543210';
const packr = new Packr({ useRecords: false });

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof MeshProtocolError) return err.reason;
    throw err;
  }
  return 'none';
}

describe('mesh protocol', () => {
  it('round-trips every message type', () => {
    const msgs: MeshMessage[] = [
      { type: MSG_HELLO, nickname: 'node-1', udpPort: 6784, features: 0 },
      { type: MSG_GOSSIP, channel: 'topology', data: new Uint8Array([1, 2, 3]) },
      { type: MSG_UNICAST, channel: 'keys', src: A, dst: B, ttl: 7, data: new Uint8Array(300) },
      { type: MSG_BROADCAST, channel: 'ipam', src: A, data: new Uint8Array([9]) },
      { type: MSG_PING },
    ];
    const plain = (m: MeshMessage) => ('data' in m ? { ...m, data: [...m.data] } : m);
    for (const m of msgs) expect(plain(decodeMessage(encodeMessage(m)))).toEqual(plain(m));
  });

  it.each([
    ['not msgpack', Buffer.from([0xc1])],
    ['not an array', packr.pack({ a: 1 })],
    ['unknown type', packr.pack([99])],
    ['HELLO with a bad port', packr.pack([MSG_HELLO, 'x', 70000, 0])],
    ['HELLO with a long nickname', packr.pack([MSG_HELLO, 'x'.repeat(65), 1, 0])],
    ['GOSSIP with a bad channel', packr.pack([MSG_GOSSIP, 'Bad Channel', Buffer.alloc(1)])],
    ['GOSSIP with text data', packr.pack([MSG_GOSSIP, 'topology', 'text'])],
    ['UNICAST with a bad peer name', packr.pack([MSG_UNICAST, 'keys', 'nobody', B, 1, Buffer.alloc(1)])],
    ['UNICAST with a ttl too high', packr.pack([MSG_UNICAST, 'keys', A, B, 1000, Buffer.alloc(1)])],
    ['BROADCAST with extra fields', packr.pack([MSG_BROADCAST, 'ipam', A, Buffer.alloc(1), 5])],
    ['PING with fields', packr.pack([MSG_PING, 1])],
  ])('refuses %s as garbled', (_what, body) => {
    expect(reason(() => decodeMessage(body))).toBe('garbled');
  });

  it('checks the preamble: magic and version', () => {
    expect(reason(() => checkPreamble(preamble()))).toBe('none');
    expect(reason(() => checkPreamble(Buffer.from('GET / HT')))).toBe('notWeft');
    expect(reason(() => checkPreamble(preamble(MESH_VERSION + 1)))).toBe('version');
  });

  it('reassembles frames split anywhere and enforces the size limit', () => {
    const r = new FrameReader();
    const stream = Buffer.concat([preamble(), frame(Buffer.from('hello')), frame(Buffer.alloc(300, 1))]);
    const got: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 3) {
      r.push(stream.subarray(i, i + 3));
      if (!r.preambleSeen && r.nextPreamble() === undefined) continue;
      for (let f = r.next(); f !== undefined; f = r.next()) got.push(f);
    }
    expect(got.map((f) => f.length)).toEqual([9, 304]);
    const big = new FrameReader();
    big.push(frame(Buffer.alloc(MAX_HANDSHAKE_FRAME + 1)).subarray(0, 4));
    expect(reason(() => big.next())).toBe('oversized');
  });

  it('seals and opens in order; a forged, replayed or reordered frame fails authentication', () => {
    const key = Buffer.alloc(32, 5);
    const tx = new TransportCipher(key);
    const rx = new TransportCipher(key);
    const f1 = tx.seal(Buffer.from('one'));
    const f2 = tx.seal(Buffer.from('two'));
    expect(rx.open(f1).toString()).toBe('one');
    const forged = Buffer.from(f2);
    forged[6] = forged[6]! ^ 1;
    expect(reason(() => rx.open(forged))).toBe('auth');
    const rx2 = new TransportCipher(key);
    expect(reason(() => rx2.open(f2))).toBe('auth'); // out of order: nonce 0 expected
  });
});
