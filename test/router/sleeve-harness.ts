/** Builds sleeves on a FakeNetwork for unit tests. */
import { silentLogger } from '../../src/core/logger.js';
import { AeadCipher, PlainCipher } from '../../src/router/crypto/frame-cipher.js';
import { SodiumChaCha } from '../../src/router/crypto/sodium-aead.js';
import { OpenSslChaCha } from '../../src/platform/linux/native-aead.js';
import { createHash } from 'node:crypto';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../../src/core/ids.js';
import { Sleeve, type SleeveInit } from '../../src/router/sleeve/sleeve.js';
import type { SleevePeer } from '../../src/router/sleeve/peer.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeNetwork, type FakeUdp } from '../fakes/fake-udp.js';

export interface Received {
  from: string;
  vnet: Buffer | undefined;
  frame: Buffer;
}

export interface Node {
  /** Nickname used by the tests; `peer` is the peer name the sleeve uses. */
  name: string;
  peer: string;
  id: number;
  address: string;
  udp: FakeUdp;
  sleeve: Sleeve;
  received: Received[];
}

export const SECRET = 'correct horse battery staple 42';

/**
 * Crypto threads of the OpenSSL engine the nodes use: WEFT_TEST_CRYPTO_THREADS (default 0, each
 * message sealed and opened as it comes). With 1 or more, every sleeve test runs its seals and
 * opens in deferred batches (on a pool with 2 or more): `WEFT_TEST_CRYPTO_THREADS=2 npx vitest
 * run --project unit test/router test/security`. One engine (one pool) serves every node.
 */
export const TEST_CRYPTO_THREADS = Number(process.env.WEFT_TEST_CRYPTO_THREADS ?? '0');
const engines = new Map<number, OpenSslChaCha>();

/** The shared OpenSSL engine with `threads` crypto threads. */
export function opensslEngine(threads = TEST_CRYPTO_THREADS): OpenSslChaCha {
  let e = engines.get(threads);
  // (inlineBelow 0: even small batches go to the pool, so the tests exercise it)
  if (e === undefined) engines.set(threads, (e = new OpenSslChaCha({ threads, inlineBelow: 0 })));
  return e;
}

export function makeNode(
  net: FakeNetwork,
  clock: FakeClock,
  init: {
    name: string; address: string; plaintext?: boolean; mtu?: number; gro?: boolean; aead?: 'openssl' | 'libsodium'; sleeve?: Partial<SleeveInit>;
    /** Crypto threads of the OpenSSL engine (default TEST_CRYPTO_THREADS); datagrams per receive batch (default 16). */
    cryptoThreads?: number; maxBatch?: number;
  },
): Node {
  const udp = net.endpoint(init.address, 6784, { gro: init.gro ?? false, maxBatch: init.maxBatch });
  const peer = peerName(init.name);
  const sleeve = new Sleeve(
    { udp, cipher: init.plaintext === true ? new PlainCipher() : new AeadCipher(init.aead === 'libsodium' ? new SodiumChaCha() : opensslEngine(init.cryptoThreads)), clock, logger: silentLogger },
    { heartbeatMs: 1000, ...init.sleeve, name: peer, id: peerIdFromPeerName(peer), underlayMtu: init.mtu ?? 1500, vnetCapable: true },
  );
  const received: Received[] = [];
  sleeve.setSink((p: SleevePeer, buf, vnetOff, frameOff, frameLen) => {
    received.push({
      from: nicknames.get(p.name) ?? p.name,
      vnet: vnetOff >= 0 ? Buffer.from(buf.subarray(vnetOff, vnetOff + 10)) : undefined,
      frame: Buffer.from(buf.subarray(frameOff, frameOff + frameLen)),
    });
  });
  return { name: init.name, peer, id: peerIdFromPeerName(peer), address: init.address, udp, sleeve, received };
}

const nicknames = new Map<string, string>();

/** A stable peer name for a test nickname. */
export function peerName(nickname: string): string {
  const name = peerNameFromPublicKey(createHash('sha256').update(nickname).digest());
  nicknames.set(name, nickname);
  return name;
}

/** Deterministic key material for the direction from → to in epoch `epoch` under `secret`. */
export function testKey(secret: string, from: string, to: string, epoch: number): Buffer {
  return createHash('sha256').update(`${secret}|${from}|${to}|${epoch}`).digest();
}

/**
 * What the mesh does for two peers: keys for both directions (as a handshake would give them)
 * and each other's direct endpoint. `secretB` different from `secret` emulates a peer whose keys
 * do not match. `confirmB`: b installs like a rekey responder.
 */
export function connect(a: Node, b: Node, opts: { epoch?: number; secret?: string; secretB?: string; direct?: boolean; confirmB?: boolean } = {}): void {
  const epoch = opts.epoch ?? 1;
  const sa = opts.secret ?? SECRET;
  const sb = opts.secretB ?? sa;
  const idA = 1000 + epoch;
  const idB = 2000 + epoch;
  a.sleeve.installKeys({ name: b.peer, id: b.id, tx: { keyId: idB, key: testKey(sa, a.peer, b.peer, epoch) }, rx: { keyId: idA, key: testKey(sa, b.peer, a.peer, epoch) }, probe: testKey(sa, 'probe', '', epoch) }, false);
  b.sleeve.installKeys({ name: a.peer, id: a.id, tx: { keyId: idA, key: testKey(sb, b.peer, a.peer, epoch) }, rx: { keyId: idB, key: testKey(sb, a.peer, b.peer, epoch) }, probe: testKey(sb, 'probe', '', epoch) }, opts.confirmB ?? false);
  if (opts.direct !== false) {
    a.sleeve.setDirect(b.id, { address: b.address, port: 6784, family: 4 });
    b.sleeve.setDirect(a.id, { address: a.address, port: 6784, family: 4 });
  }
}

/** Runs timers and delivery until the network is quiet. */
export async function run(net: FakeNetwork, clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await net.settle();
  }
}

/** Sends frames from `node` to the peer named `to` through the sleeve's transmit path. */
export function sendFrames(node: Node, to: string, frames: { frame: Buffer; vnet?: Buffer }[]): void {
  const peer = node.sleeve.peers.find((p) => p.name === peerName(to));
  if (peer === undefined) throw new Error(`${node.name} does not know ${to}`);
  node.sleeve.batchStart();
  for (const f of frames) {
    const vlen = f.vnet === undefined ? 0 : 10;
    const buf = Buffer.alloc(64 + vlen + f.frame.length + 64);
    if (f.vnet !== undefined) f.vnet.copy(buf, 64);
    f.frame.copy(buf, 64 + vlen);
    node.sleeve.tx.frame(peer, buf, f.vnet === undefined ? -1 : 64, 64 + vlen, f.frame.length, false);
  }
  node.sleeve.tx.flush();
}

export function randomFrame(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  b[0] = 0x02; // unicast, locally administered destination
  b[6] = 0x02;
  return b;
}

export { FakeClock, FakeNetwork };

/**
 * Two sleeves, alpha (198.18.0.1) and beta (198.18.0.2), with keys and each other's direct
 * endpoint, started and run for 1.5 s so the direct path is up. `capture`: the network records
 * every datagram from the start (set before the first heartbeats).
 */
export async function startedPair(opts: { capture?: boolean } = {}): Promise<{ net: FakeNetwork; clock: FakeClock; a: Node; b: Node }> {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1' });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2' });
  connect(a, b);
  a.sleeve.start();
  b.sleeve.start();
  if (opts.capture === true) net.capture = true;
  await run(net, clock, 1500);
  return { net, clock, a, b };
}
