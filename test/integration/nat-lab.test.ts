/**
 * The NAT lab itself (lab/nat-lab.ts), with plain UDP and no weft: each NAT kind behaves as its
 * name says. The NAT traversal matrix (nat-traversal.test.ts) depends on these facts.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/core/paths.js';
import { NatLab, natLabProblems, natScript, type LabProcess } from '../../lab/index.js';
import { labNamespaces } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const probeMain = join(packageRoot(import.meta.url), 'dist', 'lab', 'nat-probe-main.js');

interface Datagram {
  from: string;
  port: number;
  text: string;
}

function datagrams(stdout: string): Datagram[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{"from"'))
    .map((l) => JSON.parse(l) as Datagram);
}

describe('NAT lab settings', () => {
  it.each([
    [{ publicNodes: 0, nats: [] }, 'publicNodes must be an integer in 1-8, not 0'],
    [{ publicNodes: 1, nats: [{ kind: 'full' as never, nodes: 1 }] }, 'nat1: kind "full" is none of eim, symmetric, cone, firewall6'],
    [{ publicNodes: 1, nats: [{ kind: 'eim' as const, nodes: 9 }] }, 'nat1: nodes must be an integer in 1-8, not 9'],
    [{ publicNodes: 8, nats: [{ kind: 'eim' as const, nodes: 8 }, { kind: 'eim' as const, nodes: 8 }] }, 'at most 20 nodes in all, not 24'],
    [{ publicNodes: 1, nats: [], conePort: 0 }, 'conePort must be an integer in 1-65535, not 0'],
  ])('refuses %j', (init, problem) => {
    expect(natLabProblems(init)).toEqual([problem]);
  });

  it.each([
    ['eim', ['masquerade\n', 'iifname "lan" meta nfproto ipv4 accept'], ['fully-random', 'dnat']],
    ['symmetric', ['masquerade fully-random'], ['dnat']],
    ['cone', ['masquerade\n', 'th dport 6784 dnat ip to 198.19.3.2', 'ct status dnat accept'], ['fully-random']],
    ['firewall6', ['iifname "lan" meta nfproto ipv6 accept'], ['masquerade', 'nfproto ipv4 accept']],
  ] as const)('the %s script has %j and none of %j', (kind, has, hasNot) => {
    const s = natScript({ kind, lan4: '198.19.3.1' }, { conePort: 6784, coneTarget4: '198.19.3.2', udpPorts: new Map() });
    for (const h of has) expect(s).toContain(h);
    for (const h of hasNot) expect(s).not.toContain(h);
  });

  it('maps a node to one fixed UDP port after changePort', () => {
    const s = natScript({ kind: 'eim', lan4: '198.19.1.1' }, { conePort: 6784, coneTarget4: undefined, udpPorts: new Map([['198.19.1.2', 40000]]) });
    expect(s).toContain('oifname "eth0" ip saddr 198.19.1.2 meta l4proto udp masquerade to :40000');
    expect(s.indexOf(':40000')).toBeLessThan(s.indexOf('meta nfproto ipv4 masquerade'));
  });
});

describe.skipIf(!isRoot)('NAT lab', () => {
  let nl: NatLab | undefined;
  const servers: LabProcess[] = [];
  const log: string[] = [];

  // n1, n2 public; n3, n4 behind nat1 (eim); n5 behind nat2 (symmetric); n6 behind nat3 (cone);
  // n7 behind nat4 (firewall6).
  beforeAll(async () => {
    nl = await NatLab.create({
      publicNodes: 2,
      nats: [
        { kind: 'eim', nodes: 2 },
        { kind: 'symmetric', nodes: 1 },
        { kind: 'cone', nodes: 1 },
        { kind: 'firewall6', nodes: 1 },
      ],
      log: (l) => log.push(l),
    });
    // Echo servers on the public nodes, both families.
    for (const i of [0, 1]) servers.push(await listen(i, '[::]:7000', true));
  }, 60_000);

  afterAll(async () => {
    const prefix = nl?.prefix;
    await nl?.destroy();
    if (prefix !== undefined) expect(labNamespaces(prefix)).toEqual([]);
  });

  const N = (): NatLab => {
    if (nl === undefined) throw new Error('NAT lab was not created');
    return nl;
  };

  /** Sends "hello" from node i's `bind` to each target and returns what came back within `waitMs`. */
  async function udp(i: number, bind: string, to: string[], waitMs = 800): Promise<Datagram[]> {
    const n = N();
    const r = await n.lab.exec(n.nodes[i]!.ns, [process.execPath, probeMain, '--bind', bind, ...to.flatMap((t) => ['--to', t]), '--wait', String(waitMs)], { check: false, timeoutMs: 10_000 });
    return datagrams(r.stdout);
  }

  /** A long-running socket on node i (sending "hello" to `to` first); read it with datagrams(p.stdoutText()). */
  async function listen(i: number, bind: string, echo: boolean, to: string[] = []): Promise<LabProcess> {
    const n = N();
    const p = n.lab.spawn(n.nodes[i]!.ns, [process.execPath, probeMain, '--bind', bind, ...(echo ? ['--echo'] : []), ...to.flatMap((t) => ['--to', t]), '--wait', '0']);
    for (let t = 0; t < 100 && !p.stdoutText().includes('"ready"'); t++) await new Promise((r) => setTimeout(r, 50));
    expect(p.stdoutText(), `${bind} on n${i + 1} is ready`).toContain('"ready"');
    return p;
  }

  const settle = (ms = 500) => new Promise((r) => setTimeout(r, ms));

  it('lays out public nodes, NATs and their LANs', () => {
    const n = N();
    expect(n.nodes.map((x) => [x.name, x.address])).toEqual([
      ['n1', '198.18.0.1'], ['n2', '198.18.0.2'], ['n3', '198.19.1.2'], ['n4', '198.19.1.3'], ['n5', '198.19.2.2'], ['n6', '198.19.3.2'], ['n7', '198.19.4.2'],
    ]);
    expect(n.nats.map((x) => [x.name, x.kind, x.public4, x.public6, x.lan4, x.nodes.map((y) => y.name)])).toEqual([
      ['nat1', 'eim', '198.18.0.201', '2001:2::201', '198.19.1.1', ['n3', 'n4']],
      ['nat2', 'symmetric', '198.18.0.202', '2001:2::202', '198.19.2.1', ['n5']],
      ['nat3', 'cone', '198.18.0.203', '2001:2::203', '198.19.3.1', ['n6']],
      ['nat4', 'firewall6', '198.18.0.204', '2001:2::204', '198.19.4.1', ['n7']],
    ]);
    expect([n.publicAddress(0), n.publicAddress(2), n.publicAddress(2, 6), n.natOf(1), n.natOf(4)?.name]).toEqual(['198.18.0.1', '198.18.0.201', '2001:2:1::2', undefined, 'nat2']);
    expect(labNamespaces(n.prefix).sort()).toEqual(
      ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'nat1', 'nat2', 'nat3', 'nat4', 'u'].map((s) => `${n.prefix}-${s}`).sort(),
    );
  });

  it('eim keeps the source port for two destinations', async () => {
    const got = await udp(2, '0.0.0.0:40001', ['198.18.0.1:7000', '198.18.0.2:7000']);
    expect(got.map((d) => d.text).sort()).toEqual(['seen 198.18.0.201 40001', 'seen 198.18.0.201 40001']);
  });

  it('symmetric maps each destination to its own port', async () => {
    const got = await udp(4, '0.0.0.0:40001', ['198.18.0.1:7000', '198.18.0.2:7000']);
    expect(got).toHaveLength(2);
    const ports = got.map((d) => /^seen 198\.18\.0\.202 (\d+)$/.exec(d.text)?.[1]);
    expect(ports.every((p) => p !== undefined), JSON.stringify(got)).toBe(true);
    expect(ports[0]).not.toBe(ports[1]);
  });

  it('eim lets in only answers from the endpoint a mapping was made for', async () => {
    const p = await listen(2, '0.0.0.0:40002', false, ['198.18.0.1:7000']);
    await settle();
    // Another host, and the same host from another port, to the mapped endpoint.
    await udp(1, '198.18.0.2:7001', ['198.18.0.201:40002'], 100);
    await udp(0, '198.18.0.1:7002', ['198.18.0.201:40002'], 100);
    await settle();
    expect(datagrams(p.stdoutText()).map((d) => `${d.from}:${d.port} ${d.text}`)).toEqual(['198.18.0.1:7000 seen 198.18.0.201 40002']);
    await p.stop();
  });

  it('a node behind eim gets nothing unsolicited on IPv4 or IPv6', async () => {
    const p = await listen(2, '[::]:40003', false);
    await udp(0, '198.18.0.1:7003', ['198.18.0.201:40003'], 100);
    await udp(0, '[2001:2::1]:7003', ['[2001:2:1::2]:40003'], 100);
    await settle();
    expect(datagrams(p.stdoutText())).toEqual([]);
    await p.stop();
  });

  it('cone lets anyone in to the forwarded port', async () => {
    const p = await listen(5, '0.0.0.0:6784', false);
    await udp(1, '198.18.0.2:7004', ['198.18.0.203:6784'], 100);
    await settle();
    expect(datagrams(p.stdoutText()).map((d) => `${d.from}:${d.port} ${d.text}`)).toEqual(['198.18.0.2:7004 hello']);
    await p.stop();
  });

  it('firewall6 routes IPv6 without NAT, drops unsolicited inbound, forwards no IPv4', async () => {
    const p = await listen(6, '[::]:7005', false);
    await udp(0, '[2001:2::1]:7005', ['[2001:2:4::2]:7005'], 100);
    await settle();
    expect(datagrams(p.stdoutText())).toEqual([]);
    await p.stop();
    const out = await udp(6, '[::]:7006', ['[2001:2::1]:7000', '198.18.0.1:7000']);
    expect(out.map((d) => d.text)).toEqual(['seen 2001:2:4::2 7006']);
    // The answer came in: the firewall passes what answers an outbound flow.
  });

  it('two nodes behind one NAT reach each other on the LAN; the internet cannot reach a LAN', async () => {
    const p = await listen(3, '0.0.0.0:7007', true);
    expect((await udp(2, '0.0.0.0:40004', ['198.19.1.3:7007'])).map((d) => d.text)).toEqual(['seen 198.19.1.2 40004']);
    await p.stop();
    const q = await listen(2, '0.0.0.0:7008', true);
    expect(await udp(0, '198.18.0.1:7008', ['198.19.1.2:7008'], 300)).toEqual([]);
    await q.stop();
  });

  it('changePort gives the next mapping a new port, still the same for every destination', async () => {
    const n = N();
    expect((await udp(2, '0.0.0.0:40005', ['198.18.0.1:7000'])).map((d) => d.text)).toEqual(['seen 198.18.0.201 40005']);
    const ports = await n.changePort(n.nats[0]!);
    const port = ports.get('n3');
    expect(port).toBeGreaterThanOrEqual(40_000);
    expect(port).not.toBe(40005);
    const got = await udp(2, '0.0.0.0:40005', ['198.18.0.1:7000', '198.18.0.2:7000']);
    expect(got.map((d) => d.text)).toEqual([`seen 198.18.0.201 ${port}`, `seen 198.18.0.201 ${port}`]);
  });

  it('flushMappings forgets a live mapping: answers to it no longer come in', async () => {
    const n = N();
    const p = await listen(3, '0.0.0.0:40006', false, ['198.18.0.1:7000']);
    await settle();
    expect(datagrams(p.stdoutText())).toHaveLength(1);
    const port = /(\d+)$/.exec(datagrams(p.stdoutText())[0]!.text)![1]!;
    await n.flushMappings(n.nats[0]!);
    await udp(0, '198.18.0.1:7000', [`198.18.0.201:${port}`], 100);
    await settle();
    expect(datagrams(p.stdoutText())).toHaveLength(1);
    await p.stop();
  });

  it('blockBetween cuts UDP between two nodes both ways, clearBlocks restores it', async () => {
    const n = N();
    // Since changePort above, every UDP flow of n3 leaves from one public port: one source port per destination.
    const answer = /^seen 198\.18\.0\.201 \d+$/;
    await n.blockBetween(n.nodes[2]!, n.nodes[0]!);
    expect(await udp(2, '0.0.0.0:40005', ['198.18.0.1:7000'], 500)).toEqual([]);
    expect(await udp(0, '198.18.0.1:7009', ['198.19.1.2:7000'], 300)).toEqual([]);
    const other = await udp(2, '0.0.0.0:40005', ['198.18.0.2:7000']);
    expect(other.map((d) => d.text)).toHaveLength(1);
    expect(other[0]!.text).toMatch(answer);
    await n.clearBlocks();
    const again = await udp(2, '0.0.0.0:40005', ['198.18.0.1:7000']);
    expect(again.map((d) => d.text)).toHaveLength(1);
    expect(again[0]!.text).toMatch(answer);
  });
});
