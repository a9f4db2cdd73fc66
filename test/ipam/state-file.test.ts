import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GossipTransport, RouteTable } from '../../src/mesh/contracts.js';
import { FileIpamStore, Ipam, IpamStateError, type IpamStore } from '../../src/ipam/index.js';
import { pack } from '../../src/ipam/ring-codec.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { names, writerOf } from './keys.js';

const SELF = names[0]!;
const OTHER = names[1]!;
const transport: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => false, broadcast: () => undefined };
const routes: RouteTable = { nextHop: () => undefined, broadcastNext: () => [], reachable: () => [], distance: () => undefined, onChange: () => () => undefined };

function ipam(store: IpamStore, o: { self?: string; clusterId?: string; ranges?: string[]; clock?: FakeClock } = {}): Ipam {
  return new Ipam(
    { clock: o.clock ?? new FakeClock(), transport, routes, store, writer: writerOf(o.self ?? SELF) },
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
    await refuses(Buffer.from(pack(['weft-ipam-state', 2, 'prod'])), /corrupt \(3 fields, expected 11\)/);
    await refuses(Buffer.from(pack(['something-else', 1])), /not a weft IPAM state file/);
    await refuses(Buffer.from(pack(['weft-ipam-state', 7])), /version 7 is not supported/);
    const v2 = (rings: unknown[], custody: unknown[] = [null, null]) => Buffer.from(pack(['weft-ipam-state', 2, 'prod', SELF, ['10.9.0.0/24', 'fd00:9::/64'], rings, [], [[], []], [[], []], custody, false]));
    await refuses(v2([null]), /rings has 1 entries for 2 ranges/);
    await refuses(v2([Uint8Array.of(1), null]), /corrupt/);
    await refuses(v2([null, null], [[[[Uint8Array.of(0, 0, 0, 1), 5, null]], [], []], null]), /custody 0 pending 0 is not/);
    await refuses(v2([null, null], [[[], [[Uint8Array.of(0, 0, 0, 1), Uint8Array.of(0, 0, 0, 2), 'nobody']], []], null]), /custody 0 holders 0 is not/);
    // Written before signed rings: its ring cannot be used; the message says how to upgrade.
    await refuses(Buffer.from(pack(['weft-ipam-state', 1, 'prod', SELF, ['10.9.0.0/24', 'fd00:9::/64'], [null, null], [], [[], []], [[], []]])), /version 1 was written by a weft before signed rings.*Upgrade every router/);
  });

  it('refuses a foreign file (another peer, cluster or set of ranges), saying which field and what to do', async () => {
    const a = ipam(new FileIpamStore(path));
    await a.start();
    await a.allocate({ containerId: 'c1', ifName: 'eth0' });
    await a.stop();
    const content = readFileSync(path);
    await refuses(content, new RegExp(`another peer \\("${SELF}", this peer has "${OTHER}"\\).*copied from another peer`), { self: OTHER });
    await refuses(content, /another cluster \("prod", this peer has "test"\)/, { clusterId: 'test' });
    await refuses(content, /another set of ranges .*configure the ranges the file was written with/, { ranges: ['10.9.0.0/24'] });
  });

  it('keeps quarantines and holds as durations: a wall clock set forward while the router was down shortens neither', async () => {
    const clock = new FakeClock();
    const a = ipam(new FileIpamStore(path), { clock });
    await a.start();
    await a.allocate({ containerId: 'c1', ifName: 'eth0' });
    await a.release('c1');
    clock.advance(10_000); // 10 s of the 60 s quarantine pass while it runs
    await a.allocate({ containerId: 'c2', ifName: 'eth0' }); // a write: the state file has the release's age
    await a.stop();
    // Down for a while, and the wall clock jumps a day ahead; the monotonic clock starts again.
    clock.setWall(clock.wallNow() + 86_400_000);
    const b = ipam(new FileIpamStore(path), { clock });
    await b.start();
    expect(b.status().spaces[0]!.own).toMatchObject({ quarantined: '1' });
    clock.advance(49_000);
    expect(b.status().spaces[0]!.own).toMatchObject({ quarantined: '1' }); // 59 s of 60
    clock.advance(1000);
    expect(b.status().spaces[0]!.own).toMatchObject({ quarantined: '0' });
    await b.stop();
  });

  it('fails an allocation when the state cannot be written (the caller retries; it is idempotent)', async () => {
    const store = { location: 'broken', load: () => Promise.resolve(undefined), save: () => Promise.reject(new IpamStateError('broken', 'cannot write: disk full')) };
    const x = ipam(store);
    await expect(x.start()).rejects.toThrow(/disk full/);
  });
});
