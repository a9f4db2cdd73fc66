import { describe, expect, it } from 'vitest';
import { Endpoints, MAX_CANDIDATES, candidateEndpoint, type InterfaceAddress } from '../../src/mesh/endpoints.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { recordingLogger } from './mesh-harness.js';

const HOST: Record<string, InterfaceAddress[]> = {
  lo: [
    { address: '127.0.0.1', family: 'IPv4', internal: true },
    { address: '::1', family: 'IPv6', internal: true },
  ],
  eth0: [
    { address: '198.19.1.2', family: 'IPv4', internal: false },
    { address: '2001:2:1::2', family: 'IPv6', internal: false },
    { address: 'fe80::1', family: 'IPv6', internal: false },
  ],
  eth1: [
    { address: '169.254.3.3', family: 'IPv4', internal: false },
    { address: '198.18.0.5', family: 4, internal: false },
  ],
};

function endpoints(over: { listen?: string; advertise?: string[]; interfaces?: () => Record<string, InterfaceAddress[]> } = {}) {
  const clock = new FakeClock();
  const { logger, lines } = recordingLogger();
  const e = new Endpoints(
    { clock, logger, interfaces: over.interfaces ?? (() => HOST) },
    { udpPort: 6784, listenAddress: over.listen ?? '0.0.0.0', advertise: over.advertise ?? [], observationTtlMs: 60_000 },
  );
  return { e, clock, lines };
}

const PEERS = ['00000000000000a1', '00000000000000a2', '00000000000000a3'] as const;

describe('candidateEndpoint', () => {
  const cases: [string, string][] = [
    ['198.18.0.1:6784', '198.18.0.1:6784'],
    ['[2001:2:0:0::1]:6784', '[2001:2::1]:6784'],
    ['[::ffff:198.18.0.1]:6784', '198.18.0.1:6784'],
    ['[2001:2::1%eth0]:6784', '[2001:2::1]:6784'],
  ];
  for (const [text, want] of cases) it(`${text} → ${want}`, () => expect(candidateEndpoint(text)).toMatchObject({ endpoint: want }));
  for (const bad of ['0.0.0.0:1', '127.0.0.1:1', '[::1]:1', '224.1.1.1:1', '[fe80::2]:1', 'x:1', '1.2.3.4'.repeat(12)]) {
    it(`refuses ${bad}`, () => expect(typeof candidateEndpoint(bad)).toBe('string'));
  }
});

describe('Endpoints: local candidates', () => {
  const cases: { listen: string; want: string[] }[] = [
    { listen: '0.0.0.0', want: ['198.19.1.2:6784', '198.18.0.5:6784'] },
    { listen: '::', want: ['198.19.1.2:6784', '[2001:2:1::2]:6784', '198.18.0.5:6784'] },
    { listen: '198.18.0.5', want: ['198.18.0.5:6784'] },
    { listen: '2001:2:1::2', want: ['[2001:2:1::2]:6784'] },
    { listen: '127.0.0.1', want: [] },
  ];
  for (const c of cases) {
    it(`listening on ${c.listen}: ${c.want.join(', ') || 'none'} (no loopback, no link-local, the socket's families)`, () => {
      const { e } = endpoints({ listen: c.listen });
      expect(e.candidates()).toEqual(c.want.map((endpoint) => ({ endpoint, kind: 'local' })));
    });
  }

  it('puts --advertise first, then reflexive (newest first), then local; one kind per endpoint', () => {
    const { e, clock } = endpoints({ advertise: ['203.0.113.7:6784', '198.19.1.2:6784'] });
    e.observe(PEERS[0], '198.18.0.77:40000');
    clock.advance(10);
    e.observe(PEERS[1], '198.18.0.77:40001');
    clock.advance(10);
    e.observe(PEERS[2], '198.18.0.5:6784'); // one of our own: stays local
    expect(e.candidates()).toEqual([
      { endpoint: '203.0.113.7:6784', kind: 'advertised' },
      { endpoint: '198.19.1.2:6784', kind: 'advertised' },
      { endpoint: '198.18.0.77:40001', kind: 'reflexive' },
      { endpoint: '198.18.0.77:40000', kind: 'reflexive' },
      { endpoint: '198.18.0.5:6784', kind: 'local' },
    ]);
  });

  it(`offers at most ${MAX_CANDIDATES}`, () => {
    const many: Record<string, InterfaceAddress[]> = { eth0: Array.from({ length: 30 }, (_, i) => ({ address: `198.19.2.${i + 1}`, family: 'IPv4', internal: false })) };
    const { e } = endpoints({ interfaces: () => many });
    expect(e.candidates()).toHaveLength(MAX_CANDIDATES);
  });

  it('a new address on an interface changes the candidates at the next refresh (listeners told once)', () => {
    let host: Record<string, InterfaceAddress[]> = { eth0: [{ address: '198.19.1.2', family: 'IPv4', internal: false }] };
    const { e } = endpoints({ interfaces: () => host });
    let changes = 0;
    e.onChange(() => changes++);
    expect(e.refresh()).toBe(false);
    host = { eth0: [...host.eth0!, { address: '198.19.1.3', family: 'IPv4', internal: false }] };
    expect(e.refresh()).toBe(true);
    expect(e.refresh()).toBe(false);
    expect(changes).toBe(1);
    expect(e.candidates().map((c) => c.endpoint)).toEqual(['198.19.1.2:6784', '198.19.1.3:6784']);
  });

  it('an interface list that fails keeps the last candidates', () => {
    let fail = false;
    const { e } = endpoints({
      interfaces: () => {
        if (fail) throw new Error('EPERM');
        return HOST;
      },
    });
    fail = true;
    expect(e.refresh()).toBe(false);
    expect(e.candidates()).toHaveLength(2);
  });
});

describe('Endpoints: observations', () => {
  it('a renewal of the same observation changes nothing; a new one does', () => {
    const { e, clock } = endpoints();
    let changes = 0;
    e.onChange(() => changes++);
    e.observe(PEERS[0], '198.18.0.77:40000');
    clock.advance(1000);
    e.observe(PEERS[0], '198.18.0.77:40000');
    expect(changes).toBe(1);
    e.observe(PEERS[0], '198.18.0.77:40002');
    expect(changes).toBe(2);
    expect(e.status().observed).toEqual([{ endpoint: '198.18.0.77:40002', by: PEERS[0], agoMs: 0 }]);
  });

  it('observations renewed in another order (a symmetric NAT: a port per peer) reorder the candidates without telling peers again', () => {
    const { e, clock } = endpoints();
    let changes = 0;
    e.onChange(() => changes++);
    e.observe(PEERS[0], '198.18.0.77:40000');
    e.observe(PEERS[1], '198.18.0.77:40001');
    expect(changes).toBe(2);
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      e.observe(i % 2 === 0 ? PEERS[0] : PEERS[1], `198.18.0.77:${40000 + (i % 2)}`);
    }
    expect(changes).toBe(2);
    // (the newest observation still comes first among the reflexive ones)
    expect(e.candidates().filter((c) => c.kind === 'reflexive').map((c) => c.endpoint)).toEqual(['198.18.0.77:40000', '198.18.0.77:40001']);
  });

  it('counts and drops observations that are not endpoints', () => {
    const { e } = endpoints();
    for (const bad of ['nonsense', '0.0.0.0:5', '127.0.0.1:5', '[ff02::1]:5']) e.observe(PEERS[0], bad);
    expect(e.stats.invalidObservations).toBe(4);
    expect(e.status().observed).toEqual([]);
    expect(e.nat()).toBe('unknown');
  });

  it('ages observations out, and keeps at most the newest observers', () => {
    const clock = new FakeClock();
    const e = new Endpoints({ clock, logger: recordingLogger().logger }, { udpPort: 6784, listenAddress: '0.0.0.0', observationTtlMs: 60_000, maxObservers: 2 });
    e.observe(PEERS[0], '198.18.0.77:1');
    e.observe(PEERS[1], '198.18.0.77:2');
    e.observe(PEERS[2], '198.18.0.77:3');
    expect(e.status().observed.map((o) => o.by).sort()).toEqual([PEERS[1], PEERS[2]]);
    clock.advance(30_000);
    e.observe(PEERS[1], '198.18.0.77:2');
    clock.advance(30_000);
    e.refresh();
    expect(e.status().observed.map((o) => o.by)).toEqual([PEERS[1]]);
    expect(e.candidates()).toEqual([{ endpoint: '198.18.0.77:2', kind: 'reflexive' }]);
  });
});

describe('Endpoints: NAT guess', () => {
  const cases: { name: string; seen: string[]; want: string }[] = [
    { name: 'nothing observed', seen: [], want: 'unknown' },
    { name: 'peers see our own address', seen: ['198.19.1.2:6784', '198.18.0.5:6784'], want: 'none' },
    { name: 'one outside endpoint', seen: ['198.18.0.77:40000'], want: 'mapped' },
    { name: 'one outside endpoint whoever looks', seen: ['198.18.0.77:40000', '198.18.0.77:40000', '198.18.0.77:40000'], want: 'mapped' },
    { name: 'some see us inside, others outside', seen: ['198.19.1.2:6784', '198.18.0.77:40000'], want: 'mapped' },
    { name: 'our address with another port', seen: ['198.19.1.2:1234'], want: 'mapped' },
    { name: 'a new port per peer', seen: ['198.18.0.77:40000', '198.18.0.77:51234'], want: 'endpoint-dependent' },
    { name: 'two outside addresses, one port each', seen: ['198.18.0.77:40000', '198.18.0.78:40000'], want: 'mapped' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.want}`, () => {
      const { e } = endpoints();
      c.seen.forEach((s, i) => e.observe(PEERS[i]!, s));
      expect(e.nat()).toBe(c.want);
      expect(e.status().nat).toBe(c.want);
    });
  }
});

describe('Endpoints: the --advertise hint', () => {
  const cases: { name: string; advertise: string[]; seen: string[]; hint: string }[] = [
    { name: 'no observation', advertise: [], seen: [], hint: '' },
    { name: 'seen at our own address', advertise: [], seen: ['198.19.1.2:6784'], hint: '' },
    {
      name: 'behind NAT without --advertise',
      advertise: [],
      seen: ['198.18.0.77:40000'],
      hint: 'this router seems to be behind NAT (peers see it at 198.18.0.77:40000); other routers cannot dial it: if the NAT forwards the port, give --advertise 198.18.0.77:40000',
    },
    {
      name: 'behind a NAT that maps per peer: the suggestion is our own port',
      advertise: [],
      seen: ['198.18.0.77:40000', '198.18.0.77:40001'],
      hint: 'this router seems to be behind NAT (peers see it at 198.18.0.77:40001); other routers cannot dial it: if the NAT forwards the port, give --advertise 198.18.0.77:6784',
    },
    { name: 'an --advertise names that address', advertise: ['198.18.0.77:6784'], seen: ['198.18.0.77:40000'], hint: '' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.hint === '' ? 'no hint' : 'a hint'}, logged once`, () => {
      const { e, lines } = endpoints({ advertise: c.advertise });
      c.seen.forEach((s, i) => e.observe(PEERS[i]!, s));
      c.seen.forEach((s, i) => e.observe(PEERS[i]!, s));
      expect(e.hint()).toBe(c.hint);
      expect(e.status().hint).toBe(c.hint);
      const logged = lines.filter((l) => l.msg === c.hint);
      expect(logged).toHaveLength(c.hint === '' ? 0 : 1);
    });
  }
});
