import { describe, expect, it } from 'vitest';
import type { LabelSelector, PolicyPeer } from '../../src/policy/model.js';
import { NamespaceLabels, peerSelects, policySelects, selectorMatches } from '../../src/policy/selector.js';
import { all, expr, labels, ns, pod, policy, podsPeer } from './fixtures.js';

describe('label selectors', () => {
  const l = { app: 'web', tier: 'front', empty: '' };
  it.each<[string, LabelSelector, Record<string, string>, boolean]>([
    ['both parts empty select everything', all(), l, true],
    ['both parts empty select a pod without labels', all(), {}, true],
    ['matchLabels: equal', labels({ app: 'web' }), l, true],
    ['matchLabels: every pair must hold', labels({ app: 'web', tier: 'back' }), l, false],
    ['matchLabels: a missing key', labels({ role: 'x' }), l, false],
    ['matchLabels: an empty value matches an empty value', labels({ empty: '' }), l, true],
    ['matchLabels: an empty value does not match a missing label', labels({ role: '' }), l, false],
    ['In: one of the values', labels({}, expr('app', 'In', 'db', 'web')), l, true],
    ['In: none of the values', labels({}, expr('app', 'In', 'db')), l, false],
    ['In: the label missing', labels({}, expr('role', 'In', 'web')), l, false],
    ['NotIn: not one of the values', labels({}, expr('app', 'NotIn', 'db')), l, true],
    ['NotIn: one of the values', labels({}, expr('app', 'NotIn', 'web', 'db')), l, false],
    ['NotIn: the label missing matches', labels({}, expr('role', 'NotIn', 'web')), l, true],
    ['Exists: present', labels({}, expr('tier', 'Exists')), l, true],
    ['Exists: present with an empty value', labels({}, expr('empty', 'Exists')), l, true],
    ['Exists: missing', labels({}, expr('role', 'Exists')), l, false],
    ['DoesNotExist: missing', labels({}, expr('role', 'DoesNotExist')), l, true],
    ['DoesNotExist: present', labels({}, expr('app', 'DoesNotExist')), l, false],
    ['matchLabels and matchExpressions both hold', labels({ app: 'web' }, expr('tier', 'In', 'front')), l, true],
    ['matchLabels holds, an expression does not', labels({ app: 'web' }, expr('tier', 'NotIn', 'front')), l, false],
    ['an inherited property is no label', labels({}, expr('constructor', 'Exists')), {}, false],
  ])('%s', (_, selector, podLabels, expected) => {
    expect(selectorMatches(selector, podLabels)).toBe(expected);
  });
});

describe('what a policy and its peers select', () => {
  const namespaces = new NamespaceLabels([ns('a', { team: 'x' }), ns('b', { team: 'y' })]);
  const web = pod('a', 'web', { labels: { app: 'web' }, ips: ['10.0.0.1'] });
  const webB = pod('b', 'web', { labels: { app: 'web' }, ips: ['10.0.0.2'] });
  const dbB = pod('b', 'db', { labels: { app: 'db' }, ips: ['10.0.0.3'] });
  const webC = pod('c', 'web', { labels: { app: 'web' }, ips: ['10.0.0.4'] });

  it('a policy selects the pods of its namespace that its podSelector matches, never one without addresses or on the host network', () => {
    const p = policy('a', 'p', { podSelector: labels({ app: 'web' }) });
    expect(policySelects(p, web)).toBe(true);
    expect(policySelects(p, webB)).toBe(false);
    expect(policySelects(p, { ...web, ips: [] })).toBe(false);
    expect(policySelects(p, { ...web, hostNetwork: true })).toBe(false);
  });

  it.each<[string, PolicyPeer, boolean[]]>([
    ['podSelector only: pods of the policy namespace', podsPeer(labels({ app: 'web' })), [true, false, false, false]],
    ['namespaceSelector only: every pod of the matching namespaces', podsPeer(undefined, labels({ team: 'y' })), [false, true, true, false]],
    ['both: pods matching podSelector in matching namespaces', podsPeer(labels({ app: 'web' }), labels({ team: 'y' })), [false, true, false, false]],
    ['an empty namespaceSelector: every namespace, known or not', podsPeer(labels({ app: 'web' }), all()), [true, true, false, true]],
    ['an unknown namespace has its name label only', podsPeer(undefined, labels({ 'kubernetes.io/metadata.name': 'c' })), [false, false, false, true]],
    ['an unknown namespace has no other label', podsPeer(undefined, labels({}, expr('team', 'DoesNotExist'))), [false, false, false, true]],
    ['an ipBlock-only peer picks no pod', { podSelector: undefined, namespaceSelector: undefined, ipBlock: { cidr: '10.0.0.0/8', except: [] } }, [false, false, false, false]],
  ])('peer %s', (_, peer, expected) => {
    expect([web, webB, dbB, webC].map((p) => peerSelects(peer, 'a', p, namespaces))).toEqual(expected);
  });

  it('a peer never picks a pod without addresses or on the host network', () => {
    const peer = podsPeer(all(), all());
    expect(peerSelects(peer, 'a', { ...web, ips: [] }, namespaces)).toBe(false);
    expect(peerSelects(peer, 'a', { ...web, hostNetwork: true }, namespaces)).toBe(false);
    expect(peerSelects(peer, 'a', web, namespaces)).toBe(true);
  });

  it('a namespace always carries its name label, even when the source left it out', () => {
    const n = new NamespaceLabels([{ name: 'q', labels: { team: 'z' } }]);
    expect(n.of('q')).toEqual({ team: 'z', 'kubernetes.io/metadata.name': 'q' });
    expect(n.of('missing')).toEqual({ 'kubernetes.io/metadata.name': 'missing' });
  });
});
