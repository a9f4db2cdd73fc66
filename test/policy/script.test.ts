import { describe, expect, it } from 'vitest';
import { compilePolicy, policyId } from '../../src/policy/compile.js';
import type { CompiledPolicy } from '../../src/policy/model.js';
import { elementDiffScript, fullScript, readPolicySets } from '../../src/policy/script.js';
import { all, blockPeer, labels, model, pod, podsPeer, policy, port, rule } from './fixtures.js';

const P = policyId('a', 'p');
const web = pod('a', 'web', { labels: { app: 'web' }, ips: ['10.32.0.2', 'fd00::2'] });
const client = pod('a', 'client', { labels: { app: 'client' }, ips: ['10.32.1.3'], node: 'n2' });
const deny = policy('a', 'p', { podSelector: labels({ app: 'web' }), ingress: true, ingressRules: [rule([podsPeer(labels({ app: 'client' }))], [port(80)])] });

describe('fullScript', () => {
  it('replaces the table whole: add, delete, the rules, then the elements of every non-empty set', () => {
    const c = compilePolicy(model([deny], [web, client]));
    const s = fullScript(c);
    expect(s.startsWith(`add table inet weft-policy\ndelete table inet weft-policy\ntable inet weft-policy {\n${c.rules}}\n`)).toBe(true);
    expect(s.slice(s.indexOf('}\nadd element') + 2)).toBe(
      [
        'add element inet weft-policy self4 { 10.32.0.2 . 10.32.0.2 }',
        'add element inet weft-policy self6 { fd00::2 . fd00::2 }',
        'add element inet weft-policy isolated_in4 { 10.32.0.2 }',
        'add element inet weft-policy isolated_in6 { fd00::2 }',
        `add element inet weft-policy ${P}_sel4 { 10.32.0.2 }`,
        `add element inet weft-policy ${P}_sel6 { fd00::2 }`,
        `add element inet weft-policy ${P}_i0_pods4 { 10.32.1.3 }`,
        `add element inet weft-policy ${P}_i0_ports { tcp . 80 }`,
        '',
      ].join('\n'),
    );
  });

  it('declares the counters with the values given, the others from zero', () => {
    const c = compilePolicy(model([deny], [web]));
    const s = fullScript(
      c,
      new Map([
        [`${P}_dropped`, { packets: 12, bytes: 3400 }],
        ['ingress_dropped', { packets: 7, bytes: 700 }],
        ['gone_counter', { packets: 1, bytes: 1 }],
      ]),
    );
    expect(s).toContain(`  counter ${P}_dropped { packets 12 bytes 3400 }\n`);
    expect(s).toContain('  counter ingress_dropped { packets 7 bytes 700 }\n');
    expect(s).toContain(`  counter ${P}_allowed { }\n`);
    expect(s).toContain('  counter egress_dropped { }\n');
    expect(s).not.toContain('gone_counter');
  });

  it('a value that is no count starts from zero', () => {
    const c = compilePolicy(model([deny], [web]));
    const s = fullScript(c, new Map([[`${P}_allowed`, { packets: -1, bytes: Number.NaN }]]));
    expect(s).toContain(`  counter ${P}_allowed { packets 0 bytes 0 }\n`);
  });
});

describe('elementDiffScript', () => {
  const compile = (pods: ReturnType<typeof pod>[], policies = [deny]) => compilePolicy(model(policies, pods));

  it('nothing changed: an empty script', () => {
    expect(elementDiffScript(compile([web, client]), compile([client, web]))).toBe('');
  });

  it('a peer pod came: its address added to the peers set only', () => {
    const c2 = pod('a', 'client2', { labels: { app: 'client' }, ips: ['10.32.1.4'], node: 'n2' });
    expect(elementDiffScript(compile([web, client]), compile([web, client, c2]))).toBe(`add element inet weft-policy ${P}_i0_pods4 { 10.32.1.4 }\n`);
  });

  it('a local pod went: its elements deleted (each added first, so a missing one is no error)', () => {
    expect(elementDiffScript(compile([web, client]), compile([client]))).toBe(
      [
        'add element inet weft-policy self4 { 10.32.0.2 . 10.32.0.2 }',
        'delete element inet weft-policy self4 { 10.32.0.2 . 10.32.0.2 }',
        'add element inet weft-policy self6 { fd00::2 . fd00::2 }',
        'delete element inet weft-policy self6 { fd00::2 . fd00::2 }',
        'add element inet weft-policy isolated_in4 { 10.32.0.2 }',
        'delete element inet weft-policy isolated_in4 { 10.32.0.2 }',
        'add element inet weft-policy isolated_in6 { fd00::2 }',
        'delete element inet weft-policy isolated_in6 { fd00::2 }',
        `add element inet weft-policy ${P}_sel4 { 10.32.0.2 }`,
        `delete element inet weft-policy ${P}_sel4 { 10.32.0.2 }`,
        `add element inet weft-policy ${P}_sel6 { fd00::2 }`,
        `delete element inet weft-policy ${P}_sel6 { fd00::2 }`,
        '',
      ].join('\n'),
    );
  });

  it('a pod changed labels: deleted from one set, added to another, in one script', () => {
    const before = compile([web, client]);
    const after = compile([web, { ...client, labels: { app: 'other' } }]);
    expect(elementDiffScript(before, after)).toBe(`add element inet weft-policy ${P}_i0_pods4 { 10.32.1.3 }\ndelete element inet weft-policy ${P}_i0_pods4 { 10.32.1.3 }\n`);
  });

  it('an interval set whose elements changed is flushed and refilled whole', () => {
    const before: CompiledPolicy = compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule([blockPeer('10.0.0.0/8')])] })], [web]));
    const after: CompiledPolicy = { ...before, sets: before.sets.map((s) => (s.name === `${P}_i0_net4` ? { ...s, elements: ['10.0.0.0/9', '10.200.0.0/16'] } : s)) };
    expect(elementDiffScript(before, after)).toBe(`flush set inet weft-policy ${P}_i0_net4\nadd element inet weft-policy ${P}_i0_net4 { 10.0.0.0/9, 10.200.0.0/16 }\n`);
    const emptied: CompiledPolicy = { ...before, sets: before.sets.map((s) => (s.name === `${P}_i0_net4` ? { ...s, elements: [] } : s)) };
    expect(elementDiffScript(before, emptied)).toBe(`flush set inet weft-policy ${P}_i0_net4\n`);
  });

  it('refuses tables whose rules differ', () => {
    const other = compilePolicy(model([policy('a', 'p', { ingress: true, ingressRules: [rule([podsPeer(all())])] })], [web]));
    expect(() => elementDiffScript(compile([web]), other)).toThrow(expect.objectContaining({ code: 'ERR_POLICY_DIFF' }));
  });
});

describe('readPolicySets', () => {
  it("reads nft -j's sets into the compiler's element text, sorted; other tables and elements it does not understand left out", () => {
    const items = [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: 'weft-policy' } },
      { set: { family: 'inet', name: 'a4', table: 'weft-policy', type: 'ipv4_addr', elem: ['10.0.0.2', '10.0.0.1'] } },
      { set: { family: 'inet', name: 'empty', table: 'weft-policy', type: 'ipv4_addr' } },
      { set: { family: 'inet', name: 'net', table: 'weft-policy', type: 'ipv4_addr', flags: ['interval'], elem: [{ prefix: { addr: '10.0.0.0', len: 8 } }, { range: ['11.0.0.1', '11.0.0.5'] }, '12.0.0.1'] } },
      { set: { family: 'inet', name: 'ports', table: 'weft-policy', type: ['inet_proto', 'inet_service'], elem: [{ concat: ['udp', 53] }, { concat: ['tcp', { range: [80, 90] }] }, { concat: [132, 9] }] } },
      { set: { family: 'inet', name: 'named', table: 'weft-policy', type: ['ipv6_addr', 'inet_proto', 'inet_service'], elem: [{ concat: ['::ffff:1.2.3.4', 'tcp', 80] }, { elem: { val: { concat: ['fd00::1', 6, 8080] }, comment: 'x' } }, { weird: true }] } },
      { set: { family: 'inet', name: 'x', table: 'other', type: 'ipv4_addr', elem: ['1.1.1.1'] } },
    ];
    expect(readPolicySets(items)).toEqual(
      new Map([
        ['a4', ['10.0.0.1', '10.0.0.2']],
        ['empty', []],
        ['net', ['10.0.0.0/8', '11.0.0.1-11.0.0.5', '12.0.0.1']],
        ['ports', ['sctp . 9', 'tcp . 80-90', 'udp . 53']],
        ['named', ['::ffff:1.2.3.4 . tcp . 80', 'fd00::1 . tcp . 8080']],
      ]),
    );
  });
});
