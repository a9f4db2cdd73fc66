import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GossipTransport, RouteTable } from '../../../gossip/contracts.js';
import { FileIpamStore, Ipam, IpamStateError, type IpamStore } from '../../../gossip/ipam/index.js';
import { pack } from '../../../gossip/ipam/ring-codec.js';
import { FakeClock } from '../../fakes/fake-clock.js';

const SELF = 'a000000000000001';
const transport: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => false, broadcast: () => undefined };
const routes: RouteTable = { nextHop: () => undefined, broadcastNext: () => [], reachable: () => [], distance: () => undefined, onChange: () => () => undefined };

function ipam(store: IpamStore, o: { self?: string; clusterId?: string; ranges?: string[]; clock?: FakeClock } = {}): Ipam {
  return new Ipam(
    { clock: o.clock ?? new FakeClock(), transport, routes, store },
    { self: o.self ?? SELF, ranges: o.ranges ?? ['10.9.0.0/24', 'fd00:9::/64'], init: { seeds: [SELF] }, clusterId: o.clusterId ?? 'prod', quarantineMs: 60_000 },
  );
}

describe('IPAM state file', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-ipam-'));
    path = join(dir, 'state', 'ipam.state');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is written atomically (0600, no temp file left) and reloaded with allocations and quarantine', async () => {
    const clock = new FakeClock();
    const a = ipam(new FileIpamStore(path), { clock });
    await a.start();
    const r1 = await a.allocate({ containerId: 'c1', ifName: 'eth0' });
    await a.allocate({ containerId: 'c2', ifName: 'eth0' });
    await a.release('c2');
    await a.stop();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'state'))).toEqual(['ipam.state']);
    clock.advance(1000);
    const b = ipam(new FileIpamStore(path), { clock });
    await b.start();
    expect(b.list()).toEqual(a.list());
    expect(b.status().spaces[0]!.own).toMatchObject({ allocated: '1', quarantined: '1' });
    const r3 = await b.allocate({ containerId: 'c3', ifName: 'eth0' });
    expect(r3.addresses.map((x) => x.address)).not.toContain(r1.addresses[0]!.address);
    expect(r3.addresses[0]!.address).toBe('10.9.0.3'); // never-used first: 1 is in use, 2 is quarantined
    await b.stop();
  });

  const refuses = async (content: Buffer, message: RegExp, o: Parameters<typeof ipam>[1] = {}) => {
    writeFileSync(path.replace('/state/ipam.state', '/ipam.state'), content);
    const file = join(dir, 'ipam.state');
    const x = ipam(new FileIpamStore(file), o);
    const err = await x.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpamStateError);
    expect((err as IpamStateError).code).toBe('ERR_IPAM_STATE');
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(message);
    expect(readFileSync(file)).toEqual(content); // never reset
  };

  it('refuses a corrupt file with a clear message and leaves it alone', async () => {
    await refuses(Buffer.from('{"not":"msgpack"'), /not a weft IPAM state file|corrupt/);
    await refuses(Buffer.from(pack(['weft-ipam-state', 1, 'prod'])), /corrupt \(3 fields, expected 9\)/);
    await refuses(Buffer.from(pack(['something-else', 1])), /not a weft IPAM state file/);
    await refuses(Buffer.from(pack(['weft-ipam-state', 7])), /version 7 is not supported/);
    await refuses(Buffer.from(pack(['weft-ipam-state', 1, 'prod', SELF, ['10.9.0.0/24', 'fd00:9::/64'], [null], [], [[], []], [[], []]])), /rings has 1 entries for 2 ranges/);
    await refuses(Buffer.from(pack(['weft-ipam-state', 1, 'prod', SELF, ['10.9.0.0/24', 'fd00:9::/64'], [Uint8Array.of(1), null], [], [[], []], [[], []]])), /corrupt/);
  });

  it('refuses a foreign file (another peer, cluster or set of ranges), saying which field and what to do', async () => {
    const a = ipam(new FileIpamStore(path));
    await a.start();
    await a.allocate({ containerId: 'c1', ifName: 'eth0' });
    await a.stop();
    const content = readFileSync(path);
    await refuses(content, /another peer \("a000000000000001", this peer has "b000000000000002"\).*copied from another peer/, { self: 'b000000000000002' });
    await refuses(content, /another cluster \("prod", this peer has "test"\)/, { clusterId: 'test' });
    await refuses(content, /another set of ranges .*configure the ranges the file was written with/, { ranges: ['10.9.0.0/24'] });
  });

  it('fails an allocation when the state cannot be written (the caller retries; it is idempotent)', async () => {
    const store = { location: 'broken', load: () => Promise.resolve(undefined), save: () => Promise.reject(new IpamStateError('broken', 'cannot write: disk full')) };
    const x = ipam(store);
    await expect(x.start()).rejects.toThrow(/disk full/);
  });
});
