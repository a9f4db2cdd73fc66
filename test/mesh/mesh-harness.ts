/**
 * A real Mesh (the router's) fed by Unix socket pairs instead of TCP, with a chosen remote address
 * per connection, plus bare MeshConnections that play other routers (members with the secret) or
 * strangers. No IP traffic: everything stays in this process. The mesh's clock is a FakeClock, so
 * handshake timeouts and pings happen only when a test advances it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../src/core/logger.js';
import { NullOverlay, type Overlay } from '../../src/mesh/contracts.js';
import { MeshConnection, type ConnectionInit } from '../../src/mesh/connection.js';
import { generateIdentity, type Identity } from '../../src/mesh/identity.js';
import { Mesh, type MeshComponents, type MeshInit } from '../../src/mesh/mesh.js';
import type { MeshListener, RemoteAddress } from '../../src/mesh/mesh-listener.js';
import type { MeshMessage } from '../../src/mesh/mesh-protocol.js';
import { Topology } from '../../src/mesh/topology.js';
import { buildMeshGossip, type MeshGossip } from '../../src/daemon/mesh-gossip.js';
import { FakeClock } from '../fakes/fake-clock.js';

export const PSK = Buffer.alloc(32, 0x5a);
export const PAIR_PROLOGUE = Buffer.from('weft pair v1 test prologue');

/** Hands the mesh the accepting end of a Unix socket pair, as if it came from `remote`. */
export class PairListener implements MeshListener {
  private accept: ((socket: Socket, remote: RemoteAddress) => void) | undefined;
  private server: Server | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'weft-mesh-'));
  private readonly path = join(this.dir, 'mesh.sock');
  private readonly waiting: RemoteAddress[] = [];

  async listen(accept: (socket: Socket, remote: RemoteAddress) => void): Promise<void> {
    this.accept = accept;
    const server = createServer((s) => this.accept?.(s, this.waiting.shift() ?? { address: '?', port: 0 }));
    this.server = server;
    await new Promise<void>((r) => server.listen(this.path, r));
  }

  /** A client socket whose other end the mesh accepted as coming from `remote`. */
  async connect(remote: RemoteAddress): Promise<Socket> {
    this.waiting.push(remote);
    const s = connect(this.path);
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    return s;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { lines, logger: createLogger({ level: 'debug', sink: { write: (l: string) => lines.push(JSON.parse(l) as LogLine) } }) };
}

export interface Victim {
  mesh: Mesh;
  gossip: MeshGossip;
  identity: Identity;
  clock: FakeClock;
  listener: PairListener;
  lines: LogLine[];
  stop(): Promise<void>;
}

/** A router's mesh with its topology, routes and MAC channels, as the daemon builds them. */
export async function startVictim(init: Partial<MeshInit> = {}, overlay: Overlay = new NullOverlay(), extra: Pick<MeshComponents, 'isRevoked' | 'acceptPsks'> = {}): Promise<Victim> {
  const clock = new FakeClock();
  const identity = generateIdentity('victim');
  const listener = new PairListener();
  const { logger, lines } = recordingLogger();
  const stateDir = mkdtempSync(join(tmpdir(), 'weft-mesh-state-'));
  const mesh = new Mesh(
    { identity, psk: PSK, clock, logger, overlay, listener, ...extra },
    { listenAddress: '198.18.0.1', listenPort: 6784, udpPort: 6784, peers: [], pairPrologue: PAIR_PROLOGUE, ...init },
  );
  const gossip = buildMeshGossip({ mesh, clock, logger }, { identity, endpoints: ['198.18.0.1:6784'], stateDir });
  gossip.start();
  await mesh.start();
  return {
    mesh, gossip, identity, clock, listener, lines,
    stop: async () => {
      await mesh.stop();
      gossip.stop();
      await listener.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export interface Member {
  conn: MeshConnection;
  identity: Identity;
  established: Promise<void>;
  closed: Promise<{ reason: string; detail: string }>;
  isClosed(): boolean;
  messages: MeshMessage[];
}

/** Another router dialling the victim from `remote`: a MeshConnection with the cluster secret. */
export async function dialAsMember(
  v: Victim, remote: RemoteAddress, identity = generateIdentity('member'), psk = PSK, init: Pick<ConnectionInit, 'protocols' | 'release'> = {},
): Promise<Member> {
  const socket = await v.listener.connect(remote);
  let est!: () => void;
  let cls!: (x: { reason: string; detail: string }) => void;
  let closedFlag = false;
  const established = new Promise<void>((r) => (est = r));
  const closed = new Promise<{ reason: string; detail: string }>((r) => (cls = r));
  const messages: MeshMessage[] = [];
  const conn = new MeshConnection(
    {
      identity, psk, clock: new FakeClock(), logger: createLogger({ level: 'silent' }),
      events: {
        established: () => est(),
        message: (_c, m) => messages.push(m),
        closed: (_c, reason, detail) => {
          closedFlag = true;
          cls({ reason, detail });
        },
      },
    },
    { socket, outbound: true, remoteAddress: `${remote.address}:${remote.port}`, udpPort: 6784, ...init },
  );
  return { conn, identity, established, closed, isClosed: () => closedFlag, messages };
}

/** `identity`'s own topology record as "topology" gossip (signed with its key where records are signed). */
export function ownRecordGossip(identity: Identity, endpoints: string[] = []): Uint8Array {
  const components = { clock: new FakeClock(), signer: identity.signer };
  return new Topology(components, { publicKey: identity.publicKey, nickname: identity.nickname, endpoints }).gossip();
}

/** Polls `check` on the event loop until it returns true; throws after `tries` turns (a liveness bound, not a timing check). */
export async function settle(what: string, check: () => boolean, tries = 2000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}
