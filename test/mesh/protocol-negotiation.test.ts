/**
 * Mesh protocol negotiation: the preamble's range, the version two ends settle on, the prologue
 * that binds it, the range stated in HELLO; then connections over a Unix socket pair with ranges
 * on each end, and a man in the middle who edits both preambles (closed: `downgrade`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { MeshConnection } from '../../src/mesh/connection.js';
import { generateIdentity } from '../../src/mesh/identity.js';
import { MESH_PROTOCOL_MAX, MESH_PROTOCOL_MIN, MeshProtocolError, preamble } from '../../src/mesh/mesh-protocol.js';
import {
  checkStatedRange,
  decodePreamble,
  encodePreamble,
  negotiate,
  prologue,
  rangeFeatures,
  rangeFromFeatures,
  type ProtocolRange,
} from '../../src/mesh/protocol-negotiation.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

function caught(fn: () => unknown): MeshProtocolError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof MeshProtocolError) return err;
    throw err;
  }
  return undefined;
}

const r = (min: number, max: number): ProtocolRange => ({ min, max });
const hex = (b: Buffer): string => b.toString('hex');

describe('protocol negotiation (pure)', () => {
  it('this build speaks 2..3', () => {
    expect([MESH_PROTOCOL_MIN, MESH_PROTOCOL_MAX]).toEqual([2, 3]);
  });

  it.each([
    // range, preamble bytes after the magic
    [r(2, 2), '00020000'], // exactly what a protocol-2 router sends
    [r(2, 3), '00020003'],
    [r(3, 3), '00030000'],
    [r(3, 7), '00030007'],
  ])('preamble of %j ends %s and decodes back', (range, tail) => {
    const b = encodePreamble(range);
    expect(hex(b)).toBe(`77454674${tail}`);
    expect(decodePreamble(b)).toEqual(range);
  });

  it('the old preamble() (a single version) is read as that version only', () => {
    expect(decodePreamble(preamble(2))).toEqual(r(2, 2));
    expect(decodePreamble(preamble())).toEqual(r(MESH_PROTOCOL_MIN, MESH_PROTOCOL_MAX));
  });

  it.each([
    ['not weft', Buffer.from('GET / HT', 'latin1'), 'notWeft'],
    ['max below min', Buffer.from('7745467400030002', 'hex'), 'version'],
    ['version 0', Buffer.from('7745467400000000', 'hex'), 'version'],
  ])('a preamble that is %s is refused', (_what, b, reason) => {
    expect(caught(() => decodePreamble(b))?.reason).toBe(reason);
  });

  it.each([
    // ours, theirs, negotiated (undefined: no overlap)
    [r(2, 3), r(2, 3), 3],
    [r(2, 3), r(2, 2), 2], // a protocol-2 router
    [r(2, 2), r(2, 3), 2], // held back with --mesh-protocol-max 2
    [r(2, 3), r(3, 5), 3],
    [r(2, 3), r(1, 9), 3],
    [r(3, 3), r(2, 3), 3],
    [r(3, 3), r(2, 2), undefined],
    [r(2, 3), r(4, 5), undefined],
  ])('ours %j, theirs %j: %s', (ours, theirs, want) => {
    if (want !== undefined) {
      expect(negotiate(ours, theirs)).toBe(want);
      expect(negotiate(theirs, ours)).toBe(want);
      return;
    }
    const err = caught(() => negotiate(ours, theirs));
    expect(err?.reason).toBe('version');
    expect(err?.message).toContain(`this router speaks ${ours.min === ours.max ? ours.min : `${ours.min}..${ours.max}`}`);
    expect(err?.message).toContain(`the remote end speaks ${theirs.min === theirs.max ? theirs.min : `${theirs.min}..${theirs.max}`}`);
  });

  it('the prologue of version 2 is what a protocol-2 router binds (its own preamble); from 3 it binds both preambles', () => {
    const a = encodePreamble(r(2, 3));
    const b = encodePreamble(r(2, 3));
    expect(hex(prologue(2, a, b))).toBe(hex(preamble(2)));
    const p3 = prologue(3, a, b);
    expect(p3.includes(a)).toBe(true);
    expect(hex(prologue(3, a, encodePreamble(r(2, 4))))).not.toBe(hex(p3));
    expect(hex(prologue(3, encodePreamble(r(3, 3)), b))).not.toBe(hex(p3));
  });

  it.each([
    [r(2, 3), r(2, 3), undefined],
    [r(2, 2), undefined, undefined], // a protocol-2 router states nothing
    [r(2, 2), r(2, 3), 'downgrade'], // the preamble was edited down
    [r(2, 2), r(2, 2), undefined], // a router held back to 2
    [r(2, 3), r(2, 2), 'downgrade'],
    [r(2, 4), r(2, 3), 'downgrade'],
  ])('announced %j, stated in HELLO %j: %s', (announced, stated, reason) => {
    const features = stated === undefined ? 0 : rangeFeatures(stated);
    expect(rangeFromFeatures(features)).toEqual(stated);
    expect(caught(() => checkStatedRange(announced, rangeFromFeatures(features)))?.reason).toBe(reason);
  });
});

interface End {
  conn: MeshConnection;
  established: Promise<void>;
  closed: Promise<{ reason: string; detail: string }>;
}

function end(socket: Socket, outbound: boolean, protocols: ProtocolRange, release: string): End {
  let est!: () => void;
  let cls!: (v: { reason: string; detail: string }) => void;
  const established = new Promise<void>((res) => (est = res));
  const closed = new Promise<{ reason: string; detail: string }>((res) => (cls = res));
  const conn = new MeshConnection(
    {
      identity: generateIdentity(outbound ? 'alpha' : 'beta'), psk: Buffer.alloc(32, 9), clock: systemClock, logger: silentLogger,
      events: { established: () => est(), message: () => undefined, closed: (_c, reason, detail) => cls({ reason, detail }) },
    },
    { socket, outbound, remoteAddress: 'test', udpPort: 1000, handshakeTimeoutMs: 3000, protocols, release },
  );
  cleanup.push(() => conn.close('test over'));
  return { conn, established, closed };
}

async function socketPair(): Promise<[Socket, Socket]> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-nego-'));
  const path = join(dir, 's');
  const server: Server = createServer();
  cleanup.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const accepted = new Promise<Socket>((res) => server.once('connection', res));
  await new Promise<void>((res) => server.listen(path, res));
  const client = connect(path);
  const other = await accepted;
  cleanup.push(() => {
    client.destroy();
    other.destroy();
  });
  return [client, other];
}

/** Pipes a ⇄ b, handing each direction's first 8 bytes (the preamble) to `edit` first. */
function manInTheMiddle(a: Socket, b: Socket, edit: (p: Buffer) => Buffer): void {
  const pipe = (from: Socket, to: Socket): void => {
    let head = Buffer.alloc(0);
    let done = false;
    from.on('data', (d: Buffer) => {
      if (done) {
        to.write(d);
        return;
      }
      head = Buffer.concat([head, d]);
      if (head.length < 8) return;
      done = true;
      to.write(Buffer.concat([edit(head.subarray(0, 8)), head.subarray(8)]));
    });
    from.on('close', () => to.destroy());
  };
  pipe(a, b);
  pipe(b, a);
}

describe('protocol negotiation on a connection', () => {
  it.each([
    // outbound range, inbound range, negotiated, releases exchanged (protocol 3 HELLO only)
    [r(2, 3), r(2, 3), 3, true],
    [r(2, 2), r(2, 3), 2, false],
    [r(2, 3), r(2, 2), 2, false],
  ])('%j dials %j: both speak %s', async (ra, rb, want, releases) => {
    const [s1, s2] = await socketPair();
    const a = end(s1, true, ra, '9.9.1');
    const b = end(s2, false, rb, '9.9.2');
    await Promise.all([a.established, b.established]);
    expect([a.conn.protocol, b.conn.protocol]).toEqual([want, want]);
    expect([a.conn.remoteRelease, b.conn.remoteRelease]).toEqual(releases ? ['9.9.2', '9.9.1'] : [undefined, undefined]);
  });

  it('no common version: both ends close with "version", naming both ranges', async () => {
    const [s1, s2] = await socketPair();
    const a = end(s1, true, r(3, 3), 'x');
    const b = end(s2, false, r(2, 2), 'y');
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    expect([ca.reason, cb.reason]).toEqual(['version', 'version']);
    expect(ca.detail).toContain('the remote end speaks 2, this router speaks 3');
    expect(cb.detail).toContain('the remote end speaks 3, this router speaks 2');
  });

  it('a man in the middle who rewrites both preambles to "2 only" is caught: closed with "downgrade"', async () => {
    const [s1, m1] = await socketPair();
    const [m2, s2] = await socketPair();
    manInTheMiddle(m1, m2, () => preamble(2));
    const a = end(s1, true, r(2, 3), 'x');
    const b = end(s2, false, r(2, 3), 'y');
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    expect(ca.reason === 'downgrade' || cb.reason === 'downgrade').toBe(true);
    expect(a.conn.established || b.conn.established).toBe(false);
    expect(`${ca.detail} ${cb.detail}`).toContain('preamble announced mesh protocol 2 but its authenticated HELLO states 2..3');
  });

  it.each([
    // which preamble the man in the middle rewrites to "2 only", and what the responder sees
    ['the responder\'s (the initiator binds the protocol-2 prologue)', 'responder'],
    ['the initiator\'s (the responder binds the protocol-2 prologue)', 'initiator'],
  ])('a man in the middle who rewrites only %s: the responder closes with "downgrade"', async (_what, whose) => {
    const [s1, m1] = await socketPair();
    const [m2, s2] = await socketPair();
    const pipe = (from: Socket, to: Socket, edit: boolean): void => {
      let first = true;
      from.on('data', (d: Buffer) => {
        // each end writes its preamble alone first (one write, one chunk on a Unix socket)
        to.write(first && edit && d.length === 8 ? preamble(2) : d);
        first = false;
      });
      from.on('close', () => to.destroy());
    };
    pipe(m1, m2, whose === 'initiator');
    pipe(m2, m1, whose === 'responder');
    const a = end(s1, true, r(2, 3), 'x');
    const b = end(s2, false, r(2, 3), 'y');
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    expect(cb.reason, cb.detail).toBe('downgrade');
    expect(ca.reason).not.toBe('established');
    expect(a.conn.established || b.conn.established).toBe(false);
  });

  it('a wrong secret is still "handshake", not "downgrade"', async () => {
    const [s1, s2] = await socketPair();
    const a = end(s1, true, r(2, 3), 'x');
    const reasons: string[] = [];
    const b = new MeshConnection(
      {
        identity: generateIdentity('beta'), psk: Buffer.alloc(32, 1), clock: systemClock, logger: silentLogger,
        events: { established: () => undefined, message: () => undefined, closed: (_c, reason) => reasons.push(reason) },
      },
      { socket: s2, outbound: false, remoteAddress: 'test', udpPort: 1000, handshakeTimeoutMs: 3000 },
    );
    cleanup.push(() => b.close('test over'));
    await a.closed;
    await new Promise((res) => setTimeout(res, 50));
    expect(reasons[0]).toBe('handshake');
  });
});
