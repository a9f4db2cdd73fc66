/**
 * MeshConnection end to end over a Unix socket pair (no IP traffic): handshake, HELLO, sealed
 * messages, and the reasons it closes for.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { MeshConnection } from '../../src/mesh/connection.js';
import { generateIdentity, type Identity } from '../../src/mesh/identity.js';
import { MSG_GOSSIP, type MeshMessage } from '../../src/mesh/mesh-protocol.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

interface End {
  conn: MeshConnection;
  established: Promise<void>;
  closed: Promise<{ reason: string; detail: string }>;
  messages: MeshMessage[];
}

function end(socket: Socket, outbound: boolean, identity: Identity, psk: Buffer): End {
  let est!: () => void;
  let cls!: (v: { reason: string; detail: string }) => void;
  const established = new Promise<void>((r) => (est = r));
  const closed = new Promise<{ reason: string; detail: string }>((r) => (cls = r));
  const messages: MeshMessage[] = [];
  const conn = new MeshConnection(
    { identity, psk, clock: systemClock, logger: silentLogger, events: { established: () => est(), message: (_c, m) => messages.push(m), closed: (_c, reason, detail) => cls({ reason, detail }) } },
    { socket, outbound, remoteAddress: 'test', udpPort: outbound ? 1111 : 2222, handshakeTimeoutMs: 3000 },
  );
  cleanup.push(() => conn.close('test over'));
  return { conn, established, closed, messages };
}

async function socketPair(): Promise<[Socket, Socket]> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-conn-'));
  const path = join(dir, 's');
  const server: Server = createServer();
  cleanup.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(path, r));
  const client = connect(path);
  return [client, await accepted];
}

describe('mesh connection', () => {
  it('authenticates both ends, exchanges HELLO and carries sealed messages both ways', async () => {
    const [s1, s2] = await socketPair();
    const psk = Buffer.alloc(32, 3);
    const ia = generateIdentity('alpha');
    const ib = generateIdentity('beta');
    const a = end(s1, true, ia, psk);
    const b = end(s2, false, ib, psk);
    await Promise.all([a.established, b.established]);
    expect(a.conn.remoteName).toBe(ib.name);
    expect(b.conn.remoteName).toBe(ia.name);
    expect(a.conn.remoteNickname).toBe('beta');
    expect(b.conn.remoteUdpPort).toBe(1111);
    a.conn.send({ type: MSG_GOSSIP, channel: 'topology', data: new Uint8Array(100_000).fill(7) });
    b.conn.send({ type: MSG_GOSSIP, channel: 'ipam', data: new Uint8Array([1]) });
    await new Promise((r) => setTimeout(r, 100));
    expect(b.messages).toHaveLength(1);
    expect((b.messages[0] as { data: Uint8Array }).data.length).toBe(100_000);
    expect(a.messages).toHaveLength(1);
  });

  it('refuses a peer with another cluster secret: the responder closes with "handshake"', async () => {
    const [s1, s2] = await socketPair();
    const a = end(s1, true, generateIdentity('alpha'), Buffer.alloc(32, 1));
    const b = end(s2, false, generateIdentity('beta'), Buffer.alloc(32, 2));
    const rb = await b.closed;
    expect(rb.reason).toBe('handshake');
    expect(rb.detail).toMatch(/wrong cluster secret/);
    expect((await a.closed).reason).toBe('closedByPeer');
    expect(a.conn.established).toBe(false);
  });

  it('closes on a foreign protocol, a wrong version, and silence during the handshake', async () => {
    const cases: [Buffer | undefined, string][] = [
      [Buffer.from('SSH-2.0-OpenSSH\r\n'), 'notWeft'],
      [Buffer.from([0x77, 0x45, 0x46, 0x74, 0, 1, 0, 0]), 'version'],
      [undefined, 'handshakeTimeout'],
    ];
    for (const [bytes, reason] of cases) {
      const [s1, s2] = await socketPair();
      const b = end(s2, false, generateIdentity('beta'), Buffer.alloc(32, 1));
      s1.on('error', () => undefined);
      if (bytes !== undefined) s1.write(bytes);
      expect((await b.closed).reason).toBe(reason);
      s1.destroy();
    }
  });

  it('refuses a connection to itself', async () => {
    const [s1, s2] = await socketPair();
    const id = generateIdentity('same');
    const a = end(s1, true, id, Buffer.alloc(32, 1));
    const b = end(s2, false, id, Buffer.alloc(32, 1));
    const reasons = [(await a.closed).reason, (await b.closed).reason];
    expect(reasons).toContain('self');
  });
});
