/**
 * Attack (root, real namespaces): a host on the underlay without the secret (n3, with 32 source
 * addresses) holds hundreds of idle TCP connections open to router n1's mesh port, reopening each
 * one the moment it is closed. A new router (n2) joins while the flood goes on: it must become
 * established with n1, and the flood's connections must have been refused or closed by n1, which
 * never holds more than its pre-auth limit of them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster } from '../../../lab/weft-cluster.js';
import type { LabProcess } from '../../../lab/lab.js';
import { until } from '../../integration/helpers.js';
import { preamble } from '../../../src/mesh/mesh-protocol.js';

const isRoot = process.getuid?.() === 0;

const SOURCES = Array.from({ length: 32 }, (_, i) => `198.18.0.${100 + i}`);

/**
 * Keeps TOTAL connections open (as far as the target lets it) from SOURCES (half of them from the
 * first address, so that one is over the per-address limit and the others over the total), reopening
 * closed ones at up to RATE per second; half send a valid preamble, then nothing. One JSON line of
 * counters every 200 ms on stdout.
 */
const FLOOD = `
const net = require('node:net');
const [host, port, sources, total, rate] = [process.env.TARGET, Number(process.env.PORT), process.env.SOURCES.split(','), Number(process.env.TOTAL), Number(process.env.RATE)];
const st = { opened: 0, connected: 0, closed: 0, open: 0, maxOpen: 0 };
let next = 0, tokens = 0;
function attempt() {
  // every other attempt from the first address, the rest spread over all of them
  const src = next % 2 === 0 ? sources[0] : sources[(next >> 1) % sources.length];
  next++;
  st.opened++; st.open++;
  if (st.open > st.maxOpen) st.maxOpen = st.open;
  const s = net.connect({ host, port, localAddress: src });
  s.on('connect', () => { st.connected++; if (st.opened % 2 === 0) s.write(Buffer.from([${[...preamble()].join(', ')}])); });
  s.on('error', () => {});
  s.on('close', () => { st.closed++; st.open--; });
  s.resume();
}
setInterval(() => {
  tokens = Math.min(rate, tokens + rate / 100);
  while (st.open < total && tokens >= 1) { tokens--; attempt(); }
}, 10);
setInterval(() => process.stdout.write(JSON.stringify(st) + '\\n'), 200);
`;

interface FloodStats {
  opened: number;
  connected: number;
  closed: number;
  open: number;
  maxOpen: number;
}

function lastStats(p: LabProcess): FloodStats | undefined {
  const lines = p.stdoutText().trim().split('\n').filter((l) => l.startsWith('{'));
  const last = lines.at(-1);
  return last === undefined ? undefined : (JSON.parse(last) as FloodStats);
}

interface PreauthStatus {
  mesh: { preauth?: { pending: number; totalLimit: number } };
}

describe.skipIf(!isRoot)('attack: a pre-auth connection flood against a router while another joins', () => {
  let c: WeftCluster;
  let flood: LabProcess | undefined;

  beforeAll(async () => {
    // n1: the victim; n2: the router that joins during the flood; n3: the attacker (no router).
    c = await WeftCluster.start({ nodes: 3, podsPerNode: 0, deferStart: [1, 2], peersOf: (i) => (i === 1 ? [0] : []) });
  });

  afterAll(async () => {
    await flood?.stop(3000);
    await c?.destroy();
  });

  it('n2 joins n1 while n3 holds hundreds of idle connections; n1 refused or closed the flood', async () => {
    const [n1, , n3] = c.lab.nodes;
    for (const a of SOURCES) await c.lab.exec(n3!.ns, ['ip', 'addr', 'add', `${a}/24`, 'dev', n3!.underlayIf]);
    flood = c.lab.spawn(n3!.ns, [process.execPath, '-e', FLOOD], {
      env: { ...process.env, TARGET: n1!.address, PORT: '6784', SOURCES: SOURCES.join(','), TOTAL: '400', RATE: '400' },
    });
    const f = flood;
    // the flood is on: n1 has seen far more connections than it holds
    await until('the flood reaches n1', async () => ((lastStats(f)?.connected ?? 0) >= 400 ? true : undefined), 60_000);
    const before = lastStats(f)!;

    await c.startRouter(1);
    await c.waitEstablished(60_000);
    // ... while the flood was held: the attacker kept connecting all along
    const during = lastStats(f)!;
    expect(during.opened).toBeGreaterThan(before.opened);
    expect(during.open).toBeGreaterThan(0);
    const s1 = (await c.status(0)) as Awaited<ReturnType<WeftCluster['status']>> & PreauthStatus;
    const s2 = await c.status(1);
    expect(s1.mesh.connections.map((x) => x.nickname)).toEqual(['n2']);
    expect(s2.mesh.keys.find((k) => k.peer === s1.name)?.state).toBe('established');

    // Every close the attacker saw came from n1 (it never closes one itself): refused at once over
    // the per-address limit, evicted over the total, or timed out. n1 holds at most its limit.
    const closes = s1.mesh.closes;
    expect(closes.preauthPerAddress ?? 0).toBeGreaterThan(0);
    const refused = (closes.preauthPerAddress ?? 0) + (closes.preauthEvicted ?? 0) + (closes.handshakeTimeout ?? 0);
    expect(refused).toBeGreaterThanOrEqual(during.closed);
    expect(closes.preauthEvicted ?? 0).toBeGreaterThan(0);
    expect(s1.mesh.preauth?.pending).toBeLessThanOrEqual(s1.mesh.preauth!.totalLimit);
    console.log(`flood: ${JSON.stringify(during)}; n1 closes: ${JSON.stringify(closes)}`);
  });
});
