import { describe, expect, it } from 'vitest';
import { LabError } from '../../lab/errors.js';
import { blockAllRules, blockUdpRules, dropLargeUdpRules, faultScript, udpLossRules } from '../../lab/faults.js';

describe('fault rules', () => {
  it('block all UDP from a peer, or only to and from one port', () => {
    expect(blockUdpRules('198.18.0.2')).toEqual(['ip saddr 198.18.0.2 meta l4proto udp counter drop']);
    expect(blockUdpRules('198.18.0.2', 6784)).toEqual([
      'ip saddr 198.18.0.2 udp dport 6784 counter drop',
      'ip saddr 198.18.0.2 udp sport 6784 counter drop',
    ]);
  });

  it('match an IPv6 peer with ip6 saddr', () => {
    expect(blockUdpRules('2001:2::3')).toEqual(['ip6 saddr 2001:2::3 meta l4proto udp counter drop']);
    expect(blockUdpRules('2001:2::3', 6784)).toEqual(['ip6 saddr 2001:2::3 udp dport 6784 counter drop', 'ip6 saddr 2001:2::3 udp sport 6784 counter drop']);
    expect(blockAllRules('2001:2::3')).toEqual(['ip6 saddr 2001:2::3 counter drop']);
    expect(udpLossRules('2001:2::3', 5)).toEqual(['ip6 saddr 2001:2::3 meta l4proto udp numgen random mod 100 < 5 counter drop']);
  });

  it('drop large packets and random loss', () => {
    expect(dropLargeUdpRules('198.18.0.1', 1400)).toEqual(['ip saddr 198.18.0.1 meta l4proto udp ip length > 1400 counter drop']);
    expect(udpLossRules('198.18.0.1', 5)).toEqual(['ip saddr 198.18.0.1 meta l4proto udp numgen random mod 100 < 5 counter drop']);
  });

  it.each([
    () => blockUdpRules('fd00::1]; flush ruleset'),
    () => blockAllRules('example.com'),
    () => dropLargeUdpRules('2001:2::3', 1400),
    () => blockUdpRules('198.18.0.2; flush ruleset'),
    () => blockUdpRules('198.18.0.2', 0),
    () => dropLargeUdpRules('198.18.0.2', 1.5),
    () => udpLossRules('198.18.0.2', 101),
    () => faultScript('Bad-Name', []),
  ])('rejects bad input (%#)', (fn) => {
    expect(fn).toThrow(LabError);
  });

  it('replace the table atomically, or only delete it when there are no rules', () => {
    expect(faultScript('wt1a2b_fault', [])).toBe('table inet wt1a2b_fault\ndelete table inet wt1a2b_fault\n');
    expect(faultScript('wt1a2b_fault', ['r1', 'r2'])).toBe(
      [
        'table inet wt1a2b_fault',
        'delete table inet wt1a2b_fault',
        'table inet wt1a2b_fault {',
        '  chain faults {',
        '    type filter hook prerouting priority -450; policy accept;',
        '    r1',
        '    r2',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });
});
