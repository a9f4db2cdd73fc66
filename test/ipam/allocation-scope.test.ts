/**
 * Allocations for a CNI network: recorded with the network, "adding" until confirmed (or the lease
 * runs out), conditional release (GC, the journal replay), the network kept in the state file
 * (older files without it still read), and `exhausted()` for STATUS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GossipTransport, RouteTable } from '../../src/mesh/contracts.js';
import { ADDING_LEASE_MS } from '../../src/ipam/allocations.js';
import { FileIpamStore, Ipam, IpamBadRequestError, MemoryIpamStore, type IpamStore } from '../../src/ipam/index.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { names, writerOf } from './keys.js';

const SELF = names[0]!;
const transport: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => false, broadcast: () => undefined };
const routes: RouteTable = { nextHop: () => undefined, broadcastNext: () => [], reachable: () => [], distance: () => undefined, onChange: () => () => undefined };

async function ipam(o: { store?: IpamStore; clock?: FakeClock; ranges?: string[]; quarantineMs?: number } = {}): Promise<Ipam> {
  const i = new Ipam(
    { clock: o.clock ?? new FakeClock(), transport, routes, store: o.store ?? new MemoryIpamStore(), writer: writerOf(SELF) },
    { self: SELF, ranges: o.ranges ?? ['10.9.0.0/24'], init: { seeds: [SELF] }, clusterId: 't', quarantineMs: o.quarantineMs ?? 0, askTimeoutMs: 100 },
  );
  await i.start();
  return i;
}

describe('allocations for a CNI network', () => {
  it('are listed with their network, adding until confirmed; by hand: no network, never adding', async () => {
    const i = await ipam();
    await i.allocate({ containerId: 'pod', ifName: 'eth0', network: 'weft' });
    await i.allocate({ containerId: 'manual', ifName: 'eth0' });
    const byId = () => new Map(i.list().map((a) => [a.containerId, a]));
    expect(byId().get('pod')).toMatchObject({ network: 'weft', adding: true });
    expect(byId().get('manual')!.network).toBeUndefined();
    expect(byId().get('manual')!.adding).toBeUndefined();
    expect(i.confirm('pod', 'eth0')).toBe(true);
    expect(byId().get('pod')!.adding).toBeUndefined();
    expect(i.confirm('nobody', 'eth0')).toBe(false);
  });

  it('an ADD that never confirms stops pinning its allocation after the lease', async () => {
    const clock = new FakeClock();
    const i = await ipam({ clock });
    await i.allocate({ containerId: 'pod', ifName: 'eth0', network: 'weft' });
    clock.advance(ADDING_LEASE_MS - 1);
    expect((await i.release('pod', 'eth0', { network: 'weft', before: clock.wallNow() + 1 })).skipped).toEqual([{ containerId: 'pod', ifName: 'eth0', reason: 'adding' }]);
    clock.advance(1);
    expect((await i.release('pod', 'eth0', { network: 'weft', before: clock.wallNow() + 1 })).released).toHaveLength(1);
  });

  it('a repeated ADD of an attachment holds it as adding again', async () => {
    const clock = new FakeClock();
    const i = await ipam({ clock });
    await i.allocate({ containerId: 'pod', ifName: 'eth0', network: 'weft' });
    i.confirm('pod', 'eth0');
    clock.advance(10_000);
    expect(await i.allocate({ containerId: 'pod', ifName: 'eth0', network: 'weft' })).toMatchObject({ existing: true });
    expect(i.list()[0]).toMatchObject({ adding: true });
  });

  type Case = [what: string, made: { network?: string; confirm: boolean; ageMs: number }, cond: { network?: string; beforeAgoMs?: number }, outcome: 'released' | 'adding' | 'newer' | 'other-network'];
  const cases: Case[] = [
    ['own network, confirmed before GC: released', { network: 'weft', confirm: true, ageMs: 10_000 }, { network: 'weft', beforeAgoMs: 0 }, 'released'],
    ['own network, still adding: skipped', { network: 'weft', confirm: false, ageMs: 10_000 }, { network: 'weft', beforeAgoMs: 0 }, 'adding'],
    ['own network, confirmed after `before`: skipped', { network: 'weft', confirm: true, ageMs: 10_000 }, { network: 'weft', beforeAgoMs: 20_000 }, 'newer'],
    ['another network: skipped', { network: 'other', confirm: true, ageMs: 10_000 }, { network: 'weft', beforeAgoMs: 0 }, 'other-network'],
    ['made by hand, GC of a network: skipped', { confirm: false, ageMs: 10_000 }, { network: 'weft', beforeAgoMs: 0 }, 'other-network'],
    ['made by hand, replay of a later DEL (before only): released', { confirm: false, ageMs: 10_000 }, { beforeAgoMs: 0 }, 'released'],
    ['replay of a DEL older than the allocation: skipped', { network: 'weft', confirm: true, ageMs: 10_000 }, { beforeAgoMs: 20_000 }, 'newer'],
  ];
  it.each(cases)('conditional release: %s', async (_what, made, cond, outcome) => {
    const clock = new FakeClock();
    const i = await ipam({ clock });
    await i.allocate({ containerId: 'c', ifName: 'eth0', ...(made.network === undefined ? {} : { network: made.network }) });
    if (made.confirm) i.confirm('c', 'eth0');
    clock.advance(made.ageMs);
    const before = cond.beforeAgoMs === undefined ? undefined : clock.wallNow() - cond.beforeAgoMs;
    const r = await i.release('c', 'eth0', { ...(cond.network === undefined ? {} : { network: cond.network }), ...(before === undefined ? {} : { before }) });
    if (outcome === 'released') {
      expect(r.released).toHaveLength(1);
      expect(r.skipped).toBeUndefined();
      expect(i.list()).toEqual([]);
    } else {
      expect(r).toEqual({ released: [], skipped: [{ containerId: 'c', ifName: 'eth0', reason: outcome }] });
      expect(i.list()).toHaveLength(1);
    }
  });

  it('an unconditional release (DEL) takes an adding allocation too', async () => {
    const i = await ipam();
    await i.allocate({ containerId: 'c', ifName: 'eth0', network: 'weft' });
    expect((await i.release('c', 'eth0')).released).toHaveLength(1);
  });

  it.each([
    ['a network that is not a CNI name', { containerId: 'c', ifName: 'eth0', network: '-bad' }, 'network'],
    ['a network that is not a string', { containerId: 'c', ifName: 'eth0', network: 7 as unknown as string }, 'network'],
    ['a negative timeoutMs', { containerId: 'c', ifName: 'eth0', timeoutMs: -1 }, 'timeoutMs'],
  ])('allocate refuses %s', async (_what, req, field) => {
    const i = await ipam();
    await expect(i.allocate(req)).rejects.toThrow(IpamBadRequestError);
    await expect(i.allocate(req)).rejects.toMatchObject({ field });
  });

  it('release refuses a `before` that is not a time', async () => {
    const i = await ipam();
    await expect(i.release('c', 'eth0', { before: 'soon' as unknown as number })).rejects.toMatchObject({ field: 'before' });
  });
});

describe('the network in the state file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-ipam-scope-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is kept across a restart; allocations without one (older files) read as made by hand; none is adding after a restart', async () => {
    const path = join(dir, 'ipam.state');
    const a = await ipam({ store: new FileIpamStore(path) });
    await a.allocate({ containerId: 'pod', ifName: 'eth0', network: 'weft' });
    await a.allocate({ containerId: 'manual', ifName: 'eth0' });
    await a.stop();
    const b = await ipam({ store: new FileIpamStore(path) });
    const byId = new Map(b.list().map((x) => [x.containerId, x]));
    expect(byId.get('pod')).toMatchObject({ network: 'weft' });
    expect(byId.get('pod')!.adding).toBeUndefined();
    expect(byId.get('manual')!.network).toBeUndefined();
    await b.stop();
  });
});

describe('exhausted()', () => {
  it('names the range while no address is free and nobody can give one; clears once one is free', async () => {
    const clock = new FakeClock();
    // A /30: .1 and .2 are allocatable.
    const i = await ipam({ clock, ranges: ['10.9.0.0/30'], quarantineMs: 5000 });
    expect(i.exhausted()).toBeUndefined();
    await i.allocate({ containerId: 'a', ifName: 'eth0' });
    await i.allocate({ containerId: 'b', ifName: 'eth0' });
    expect(i.exhausted()).toMatch(/no free address in 10\.9\.0\.0\/30 on this router \(2 allocated, 0 in quarantine\) and no reachable peer holds space in it/);
    await i.release('a');
    expect(i.exhausted()).toMatch(/1 in quarantine/);
    clock.advance(5000);
    expect(i.exhausted()).toBeUndefined();
  });
});
