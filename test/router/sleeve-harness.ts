/** Builds sleeves on a FakeNetwork for unit tests. */
import { silentLogger } from '../../src/core/logger.js';
import { AeadCipher, PlainCipher } from '../../router/crypto/frame-cipher.js';
import { SodiumChaCha } from '../../router/crypto/sodium-aead.js';
import { OpenSslChaCha } from '../../src/platform/linux/native-aead.js';
import { StaticKeySchedule, clusterKeyFromSecret } from '../../router/crypto/static-keys.js';
import { Sleeve } from '../../router/sleeve/sleeve.js';
import type { SleevePeer } from '../../router/sleeve/peer.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeNetwork, type FakeUdp } from '../fakes/fake-udp.js';

export interface Received {
  from: string;
  vnet: Buffer | undefined;
  frame: Buffer;
}

export interface Node {
  name: string;
  address: string;
  udp: FakeUdp;
  sleeve: Sleeve;
  received: Received[];
}

export const SECRET = 'correct horse battery staple 42';

export function makeNode(
  net: FakeNetwork,
  clock: FakeClock,
  init: { name: string; address: string; peers: string[]; secret?: string; plaintext?: boolean; sessionId?: number; mtu?: number; gro?: boolean; aead?: 'openssl' | 'libsodium' },
): Node {
  const udp = net.endpoint(init.address, 6784, { gro: init.gro ?? false });
  const keys = new StaticKeySchedule(clusterKeyFromSecret(Buffer.from(init.secret ?? SECRET), 'test'));
  const sleeve = new Sleeve(
    { udp, cipher: init.plaintext === true ? new PlainCipher() : new AeadCipher(init.aead === 'libsodium' ? new SodiumChaCha() : new OpenSslChaCha()), keys, clock, logger: silentLogger },
    {
      name: init.name,
      sessionId: init.sessionId ?? 1000,
      underlayMtu: init.mtu ?? 1500,
      vnetCapable: true,
      peers: init.peers.map((a) => ({ address: a, port: 6784, family: 4 as const })),
    },
  );
  const received: Received[] = [];
  sleeve.setSink((peer: SleevePeer, buf, vnetOff, frameOff, frameLen) => {
    received.push({
      from: peer.name,
      vnet: vnetOff >= 0 ? Buffer.from(buf.subarray(vnetOff, vnetOff + 10)) : undefined,
      frame: Buffer.from(buf.subarray(frameOff, frameOff + frameLen)),
    });
  });
  return { name: init.name, address: init.address, udp, sleeve, received };
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
  const peer = node.sleeve.peers.find((p) => p.name === to);
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
