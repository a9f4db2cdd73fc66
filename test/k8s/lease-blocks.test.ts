/** LeaseBlocks over the in-memory Lease store (the API server's 409/404 rules), and the names it writes. */
import { describe, expect, it } from 'vitest';
import { leaseName, rangeLabel } from '../../src/k8s/names.js';
import { MemoryLeases } from '../fakes/memory-leases.js';
import { leaseBlocksSuite, NS } from './lease-blocks-suite.js';

leaseBlocksSuite('LeaseBlocks (in-memory Leases)', async () => {
  const m = new MemoryLeases();
  return {
    leases: m,
    put: async (ns, lease) => m.put(ns, lease),
    get: async (ns, name) => m.objects.get(`${ns}/${name}`),
    remove: async (ns, name) => void m.objects.delete(`${ns}/${name}`),
    setDown: async (down) => void (m.down = down),
    close: async () => undefined,
  };
});

describe('Lease names', () => {
  const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
  it.each([
    ['10.32.0.64/26', 'weft-ipam-10-32-0-64-26'],
    ['10.32.0.0/26', 'weft-ipam-10-32-0-0-26'],
    ['fd00::40/122', 'weft-ipam-fd00--40-122'],
    ['fd00:1234:5678:9abc:def0:1234:5678:9a00/122', 'weft-ipam-fd00-1234-5678-9abc-def0-1234-5678-9a00-122'],
    ['::/122', 'weft-ipam----122'],
  ])('%s → %s, a DNS subdomain of at most 63 characters', (cidr, name) => {
    expect(leaseName(cidr)).toBe(name);
    expect(name).toMatch(DNS_SUBDOMAIN);
    expect(name.length).toBeLessThanOrEqual(63);
  });
  it.each([
    ['10.32.0.0/12', '10.32.0.0-12'],
    ['fd00:32::/64', 'fd00-32---64'],
    ['::/64', '0---64'],
  ])('range %s labels as %s, a valid label value', (cidr, label) => {
    expect(rangeLabel(cidr)).toBe(label);
    expect(label).toMatch(LABEL_VALUE);
  });
  it('the namespace of the suite is kube-system', () => expect(NS).toBe('kube-system'));
});
