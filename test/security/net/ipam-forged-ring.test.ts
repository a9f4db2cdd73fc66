/**
 * Attack on real routers: a member (n4, whose identity key the test holds) gossips a ring into
 * which it wrote, signed with its own key, an entry taking n2's space and a grant of n1's space
 * to n3. The forged records are put in n4's state file while it is stopped (as a member that
 * modified its router could send them); on start n4 gossips them to everyone. The owners write
 * their entries back, n3 does not use the grant, nobody hands out another router's addresses.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSecret } from '../../../src/mesh/identity.js';
import type { IpamStatus } from '../../../src/ipam/status.js';
import { Ring, type RingEntry } from '../../../src/ipam/ring.js';
import { unpack } from '../../../src/ipam/ring-codec.js';
import { encodeCustody, encodeState, parseState } from '../../../src/ipam/state-file.js';
import { addressToOffset, formatRange, space } from '../../../src/ipam/space.js';
import { Signer } from '../../../src/mesh/signing.js';
import { packageRoot } from '../../../src/core/paths.js';
import { peerNameFromPublicKey } from '../../../src/core/ids.js';
import { WeftCluster } from '../../../lab/weft-cluster.js';
import { until } from '../../integration/helpers.js';

const isRoot = process.getuid?.() === 0;
const cli = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');
const RANGE = '10.45.0.0/16';

interface Listed {
  allocations: { containerId: string; ifName: string; addresses: string[] }[];
}

describe.skipIf(!isRoot)('attack: a member gossips a ring with forged IPAM entries (real routers)', () => {
  let c: WeftCluster;
  const status = (i: number) => c.api<IpamStatus>(i, 'GET', '/v1/ipam/status');
  const allocate = async (i: number, id: string) => (await c.api<{ addresses: { address: string }[] }>(i, 'POST', '/v1/ipam/allocate', { containerId: id, ifName: 'eth0' })).addresses[0]!.address;
  const list = async (i: number) => (await c.api<Listed>(i, 'GET', '/v1/ipam/allocations')).allocations.flatMap((a) => a.addresses);
  const names: string[] = [];

  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 4, ipamSeeds: [0, 1, 2], deferStart: [3], extraArgs: ['--ipam-range', RANGE, '--log-level', 'info'] });
    // n4's key exists before it starts: the test holds it.
    execFileSync(process.execPath, [cli, 'identity', '--state-dir', c.stateDir(3), '--name', 'n4'], { encoding: 'utf8' });
    await c.startRouter(3);
    await c.waitEstablished(45_000);
    for (let i = 0; i < 4; i++) names.push((await c.apiStatus(i)).name);
    await until('IPAM ready on every router', async () => ((await Promise.all([0, 1, 2, 3].map(status))).every((s) => s.ready.ok) ? true : undefined), 60_000);
  }, 180_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('the owners write their space back, the grant is not used, no address is handed out twice', async () => {
    const victimPods = [await allocate(1, 'n2-pod-1'), await allocate(1, 'n2-pod-2')];
    await allocate(3, 'n4-pod'); // n4 gets some space of its own
    await c.stopRouter(3);

    // The member's key and its state file.
    const secret = readFileSync(join(c.stateDir(3), 'identity.key'));
    const kp = keyPairFromSecret(secret);
    const signer = new Signer(kp.secretKey);
    const w = { name: peerNameFromPublicKey(kp.publicKey), publicKey: kp.publicKey, sign: (m: Uint8Array) => signer.sign(m) };
    expect(w.name).toBe(names[3]);
    const file = join(c.stateDir(3), 'ipam.state');
    const raw = readFileSync(file);
    const clusterId = (unpack(raw, (r) => { throw new Error(r); }) as unknown[])[2] as string;
    const st = parseState(raw, file, { clusterId, self: w.name, ranges: [RANGE] });
    const p = st.rings[0]!;
    const ring = Ring.fromParts(p.genesis, p.entries, p.life, p.adopted);
    const largest = (owner: string): [RingEntry, bigint] => {
      let best: [RingEntry, bigint] | undefined;
      ring.entryList().forEach((e, i) => {
        if (e.owner === owner && (best === undefined || ring.end(i) - e.token > best[1] - best[0].token)) best = [e, ring.end(i)];
      });
      return best!;
    };
    const [e2, end2] = largest(names[1]!);
    const [e1, end1] = largest(names[0]!);
    ring.write(w, [
      { token: e2.token, owner: w.name, version: e2.version + 1, end: e2.end }, // n2's space, for itself
      { token: e1.token, owner: names[2]!, version: e1.version + 1, end: e1.end }, // n1's space, to n3
    ]);
    // n4's own custody says what an honest router would: it holds neither (its router does not fight back).
    const custody = st.custody[0]!;
    custody.pending.push([e2.token, e2], [e1.token, e1]);
    custody.pending.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    custody.holders.push({ start: e2.token, end: end2, owner: names[1]! }, { start: e1.token, end: end1, owner: names[0]! });
    const sp = space(RANGE);
    writeFileSync(file, encodeState(st, [sp], [ring.encode()], [encodeCustody(custody, sp.bytes)]), { mode: 0o600 });
    await c.startRouter(3);
    await c.waitEstablished(45_000);

    const r2 = formatRange(sp, e2.token, end2);
    const r1 = formatRange(sp, e1.token, end1);
    await until(
      'n1 and n2 wrote their space back, as every router sees it',
      async () => {
        const all = await Promise.all([0, 1, 2, 3].map(status));
        const ok = all.every((s) => {
          const owners = s.spaces[0]!.owners;
          return owners.find((o) => o.peer === names[1])?.ranges.includes(r2) === true && owners.find((o) => o.peer === names[0])?.ranges.includes(r1) === true;
        });
        return ok ? all : undefined;
      },
      60_000,
    );
    const s1 = await status(0);
    const s2 = await status(1);
    const s3 = await status(2);
    expect(s2.counters.defended).toBeGreaterThan(0);
    expect(s1.counters.defended).toBeGreaterThan(0);
    expect(s3.counters.unconfirmed).toBeGreaterThan(0);
    // n3 allocates, and none of its addresses lies in the space it was "given".
    const fresh: string[] = [];
    for (let k = 0; k < 20; k++) fresh.push(await allocate(2, `n3-pod-${k}`));
    for (const a of fresh) {
      const off = addressToOffset(sp, a)!;
      expect(off >= e1.token && off < end1).toBe(false);
    }
    // The victim keeps its pods' addresses and keeps allocating.
    expect(await list(1)).toEqual(expect.arrayContaining(victimPods));
    await allocate(1, 'n2-pod-3');
    const listed = (await Promise.all([0, 1, 2, 3].map(list))).flat();
    expect(new Set(listed).size).toBe(listed.length);
  }, 240_000);
});
