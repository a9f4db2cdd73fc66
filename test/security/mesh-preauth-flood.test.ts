/**
 * Attack: an underlay host without the secret opens hundreds of TCP connections to a router's mesh
 * port and never completes a handshake. Before the fix they were all held for 10 s (and Node's
 * 256-connection limit then refused everyone, members included): a join took 14.4 s instead of
 * 0.2 s. Now a router holds at most a few unauthenticated connections per source address and a
 * bounded number in all, refuses or evicts the rest at once, and times them out in seconds.
 *
 * The victim is the router's real Mesh, fed by Unix socket pairs with a chosen source address.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { dialAsMember, settle, startVictim, type Victim } from '../mesh/mesh-harness.js';
import { preamble } from '../../src/mesh/mesh-protocol.js';

const victims: Victim[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const v of victims.splice(0)) await v.stop();
});

async function victim(): Promise<Victim> {
  const v = await startVictim();
  victims.push(v);
  return v;
}

/** `n` idle connections (nothing sent, or only the preamble) from `address`; counts those the victim closed. */
async function flood(v: Victim, addresses: string[], perAddress: number): Promise<{ sockets: Socket[]; closed: () => number }> {
  let closed = 0;
  const out: Socket[] = [];
  for (let i = 0; i < perAddress; i++) {
    for (const address of addresses) {
      const s = await v.listener.connect({ address, port: 40_000 + out.length });
      s.on('close', () => closed++);
      if (i % 2 === 1) s.write(preamble()); // a valid preamble, then silence
      s.resume();
      out.push(s);
      sockets.push(s);
    }
  }
  return { sockets: out, closed: () => closed };
}

describe('attack: idle pre-auth connections flood the mesh port', () => {
  it('one address: all but a few are refused at once, and a member from another address joins', async () => {
    const v = await victim();
    const f = await flood(v, ['198.18.0.66'], 300);
    const limit = v.mesh.status().preauth.perAddressLimit;
    await settle('the excess flood connections are closed', () => f.closed() >= 300 - limit);
    expect(v.mesh.status().preauth.pending).toBe(limit);
    const m = await dialAsMember(v, { address: '198.18.0.2', port: 51_000 });
    await m.established;
    await settle('the victim lists the member', () => v.mesh.status().connections.some((c) => c.peer === m.identity.name));
    const st = v.mesh.status();
    expect(st.connections.find((c) => c.peer === m.identity.name)?.state).toBe('established');
    expect(st.closes.preauthPerAddress).toBe(300 - limit);
    // logged once for the source, however many were refused
    expect(v.lines.filter((l) => l.level === 'warn' && l.address === '198.18.0.66').length).toBe(1);
    // the flood's survivors time out in seconds, the member stays
    v.clock.advance(st.preauth.timeoutMs + 1000);
    await settle('the rest of the flood is closed', () => f.closed() === 300);
    expect(v.mesh.status().closes.handshakeTimeout).toBe(limit);
    expect(m.isClosed()).toBe(false);
    expect(v.mesh.status().preauth.pending).toBe(0);
  });

  it('many addresses: the total stays bounded (the most represented address is evicted), and a member still joins', async () => {
    const v = await victim();
    const addresses = Array.from({ length: 24 }, (_, i) => `198.18.1.${i + 1}`);
    const f = await flood(v, addresses, 8);
    const { totalLimit } = v.mesh.status().preauth;
    expect(addresses.length * 8).toBeGreaterThan(totalLimit);
    await settle('evictions bring the flood down to the total limit', () => f.closed() >= addresses.length * 8 - totalLimit);
    expect(v.mesh.status().preauth.pending).toBe(totalLimit);
    const m = await dialAsMember(v, { address: '198.18.0.2', port: 51_000 });
    await m.established;
    await settle('the victim lists the member', () => v.mesh.status().connections.some((c) => c.peer === m.identity.name && c.state === 'established'));
    expect(v.mesh.status().closes.preauthEvicted).toBeGreaterThanOrEqual(addresses.length * 8 - totalLimit);
    expect(v.mesh.status().preauth.pending).toBeLessThanOrEqual(totalLimit);
  });

  it('an IPv6 flood counts per /64, and IPv4-mapped addresses count as IPv4', async () => {
    const v = await victim();
    const limit = v.mesh.status().preauth.perAddressLimit;
    const six = Array.from({ length: 40 }, (_, i) => `2001:2:0:7::${(i + 1).toString(16)}`); // one /64, many addresses
    const f6 = await flood(v, six, 1);
    await settle('the /64 holds only the per-address limit', () => f6.closed() >= six.length - limit);
    const mapped = await flood(v, ['::ffff:198.18.0.77'], limit);
    const plain = await flood(v, ['198.18.0.77'], 1);
    await settle('198.18.0.77 is over its limit', () => plain.closed() === 1);
    expect(mapped.closed()).toBe(0);
    expect(v.mesh.status().closes.preauthPerAddress).toBe(six.length - limit + 1);
  });
});
