/**
 * The policy compiler's output on the real kernel: compiled tables (every feature, and random
 * policies and worlds) loaded with `nft -f` as fullScript writes them, in a namespace of this
 * test's own; the kernel holds the elements compiled (read back with readPolicySets); counters keep the values fullScript is given;
 * elementDiffScript leaves the same table as a full rewrite, and runs twice without error. No
 * packet is sent (the lab's network-policy test does that).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimPrefix } from '../../lab/lab-config.js';
import { execIn } from '../../lab/lab-process.js';
import { deleteNamespace, releasePrefix } from '../../lab/registry.js';
import { compilePolicy } from '../../src/policy/compile.js';
import type { CompiledPolicy, PolicyModel } from '../../src/policy/model.js';
import { elementDiffScript, fullScript, readPolicySets } from '../../src/policy/script.js';
import { run } from '../../src/platform/linux/run.js';
import { arbPolicies, arbWorld, toModel } from '../policy/arbitraries.js';
import { all, blockPeer, expr, labels, model, ns, pod, podsPeer, policy, port, rule } from '../policy/fixtures.js';
import { normalize } from './nft-json.js';

const isRoot = process.getuid?.() === 0;


/** Every pod feature in one world: two namespaces, local and remote pods, dual-stack, named ports, a hostNetwork pod, a pod without addresses. */
function featureModels(): [string, PolicyModel][] {
  const pods = [
    pod('a', 'web', { labels: { app: 'web' }, ips: ['10.32.0.2', 'fd00::2'], namedPorts: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }, { name: 'assoc', protocol: 'SCTP', port: 9 }] }),
    pod('a', 'db', { labels: { app: 'db' }, ips: ['10.32.0.3'] }),
    pod('a', 'client', { labels: { app: 'client' }, ips: ['10.32.1.3', 'fd00::1:3'], node: 'n2' }),
    pod('b', 'other', { labels: { app: 'client', role: 'x' }, ips: ['10.32.2.4'], node: 'n3', namedPorts: [{ name: 'http', protocol: 'TCP', port: 80 }] }),
    pod('b', 'host', { labels: { app: 'web' }, ips: ['198.18.0.1'], hostNetwork: true }),
    pod('a', 'pending', { labels: { app: 'web' } }),
    // addresses nft lists with their last 32 bits dotted
    pod('b', 'mapped', { labels: { app: 'client' }, ips: ['::ffff:10.32.9.9', '::a20:909', '0:0::1:a20:909'], node: 'n2' }),
  ];
  const namespaces = [ns('a', { team: 'x' }), ns('b', { team: 'y' })];
  const m = (...policies: Parameters<typeof model>[0]) => model(policies, pods, namespaces);
  return [
    ['no policy', m()],
    ['default deny ingress and egress', m(policy('a', 'deny', { ingress: true, egress: true }))],
    ['allow all', m(policy('a', 'allow', { ingress: true, egress: true, ingressRules: [rule()], egressRules: [rule()] }))],
    [
      'pods by podSelector, namespaceSelector (each operator), both',
      m(
        policy('a', 'sel', {
          podSelector: labels({ app: 'web' }),
          ingress: true,
          ingressRules: [
            rule([podsPeer(labels({ app: 'client' }))]),
            rule([podsPeer(undefined, labels({}, expr('team', 'In', 'y')))]),
            rule([podsPeer(undefined, labels({}, expr('team', 'NotIn', 'y'), expr('team', 'Exists'), expr('gone', 'DoesNotExist')))]),
            rule([podsPeer(labels({ role: 'x' }), all())]),
          ],
        }),
      ),
    ],
    [
      'ipBlock with except, both families, with pods in one rule',
      m(policy('a', 'blocks', { ingress: true, egress: true, ingressRules: [rule([blockPeer('10.0.0.0/8', '10.32.1.0/24', '10.32.2.0/25'), blockPeer('fd00::/8', 'fd00::1:0/112'), blockPeer('::ffff:0:0/96', '::ffff:10.0.0.0/104'), podsPeer(all())])], egressRules: [rule([blockPeer('0.0.0.0/0', '169.254.0.0/16')])] })),
    ],
    [
      'ports: TCP, UDP, SCTP, numeric, endPort, protocol only, named',
      m(
        policy('a', 'ports', {
          ingress: true,
          egress: true,
          ingressRules: [rule([], [port(80), port(53, 'UDP'), port(9, 'SCTP'), port(32000, 'TCP', 32768), port(undefined, 'UDP'), port('http'), port('dns', 'UDP'), port('assoc', 'SCTP')])],
          egressRules: [rule([podsPeer(undefined, labels({ team: 'y' }))], [port('http'), port(443)]), rule([], [port('http')])],
        }),
      ),
    ],
    [
      'several policies on one pod',
      m(policy('a', 'p1', { podSelector: labels({ app: 'web' }), ingress: true, ingressRules: [rule([], [port(80)])] }), policy('a', 'p2', { ingress: true, egress: true, ingressRules: [rule([podsPeer(all())])] }), policy('b', 'p3', { ingress: true })),
    ],
  ];
}

describe.skipIf(!isRoot)('compiled policy tables on the real kernel (nft -f)', () => {
  let prefix: string | undefined;
  let netns = '';
  let hostTablesBefore = '';

  const load = (script: string) => execIn(netns, ['nft', '-f', '-'], { input: script });
  async function listed(): Promise<{ counters: Map<string, { packets: number; bytes: number }>; items: unknown[] }> {
    const out = JSON.parse((await execIn(netns, ['nft', '-j', 'list', 'table', 'inet', 'weft-policy'])).stdout) as { nftables: Record<string, unknown>[] };
    const items = out.nftables.filter((i) => !('metainfo' in i));
    const counters = new Map<string, { packets: number; bytes: number }>();
    for (const i of items) {
      if ('counter' in i) {
        const c = i.counter as { name: string; packets: number; bytes: number };
        counters.set(c.name, { packets: c.packets, bytes: c.bytes });
      }
    }
    return { counters, items };
  }
  /** The kernel holds every set compiled, with exactly its elements (read back into the compiler's text). */
  async function expectSets(c: CompiledPolicy): Promise<void> {
    const kernel = readPolicySets((await listed()).items);
    expect([...kernel.keys()].sort()).toEqual(c.sets.map((s) => s.name).sort());
    for (const s of c.sets) expect(kernel.get(s.name), `set ${s.name}`).toEqual([...s.elements].sort());
  }

  beforeAll(async () => {
    prefix = await claimPrefix(undefined);
    netns = `${prefix}-policy`;
    hostTablesBefore = await run('nft', ['list', 'tables']);
    await run('ip', ['netns', 'add', netns]);
  });

  afterAll(async () => {
    if (prefix === undefined) return;
    if (netns !== '') await deleteNamespace(netns);
    releasePrefix(prefix);
  });

  it.each(featureModels())('the kernel takes the table of: %s, with the elements compiled', async (_, m) => {
    const c = compilePolicy(m);
    await load(fullScript(c));
    await expectSets(c);
  });

  it('the kernel takes the table of random policies and worlds', async () => {
    await fc.assert(
      fc.asyncProperty(arbPolicies, arbWorld, async (policies, world) => {
        const c = compilePolicy(toModel(policies, world));
        await load(fullScript(c));
        await expectSets(c);
      }),
      { numRuns: 25 },
    );
  });

  it('counters start from the values given, and a rewrite given the values read keeps them', async () => {
    const [, m] = featureModels()[6]!;
    const c = compilePolicy(m);
    const p1 = c.policies[0]!;
    await load(fullScript(c, new Map([[p1.droppedCounter, { packets: 42, bytes: 4200 }], ['ingress_dropped', { packets: 7, bytes: 70 }]])));
    const first = (await listed()).counters;
    expect(first.get(p1.droppedCounter)).toEqual({ packets: 42, bytes: 4200 });
    expect(first.get('ingress_dropped')).toEqual({ packets: 7, bytes: 70 });
    expect(first.get(p1.allowedCounter)).toEqual({ packets: 0, bytes: 0 });
    await load(fullScript(c, first));
    expect((await listed()).counters).toEqual(first);
  });

  it('elementDiffScript leaves the table a full rewrite leaves, and the same diff runs again without error (random worlds)', async () => {
    await fc.assert(
      fc.asyncProperty(arbPolicies, fc.array(arbWorld, { minLength: 2, maxLength: 4 }), async (policies, worlds) => {
        const compiled = worlds.map((w) => compilePolicy(toModel(policies, w)));
        await load(fullScript(compiled[0]!));
        for (let i = 1; i < compiled.length; i++) {
          const diff = elementDiffScript(compiled[i - 1]!, compiled[i]!);
          if (diff !== '') {
            await load(diff);
            await load(diff);
          }
          const byDiff = normalize((await listed()).items);
          await load(fullScript(compiled[i]!));
          expect(byDiff).toEqual(normalize((await listed()).items));
        }
      }),
      { numRuns: 10 },
    );
  });

  it('changed nothing outside its namespace', async () => {
    expect(await run('nft', ['list', 'tables'])).toEqual(hostTablesBefore);
  });
});
