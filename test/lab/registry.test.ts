/**
 * The names the lab deletes: every namespace a lab or a test makes under the lab's prefix, and
 * nothing shaped otherwise (a lab never deletes a namespace it could not have made).
 */
import { describe, expect, it } from 'vitest';
import { LAB_NS_NAME } from '../../lab/registry.js';

describe('LAB_NS_NAME', () => {
  it.each([
    ['wt1a2b-u', true],
    ['wt1a2b-n1', true],
    ['wt1a2b-n12p1042', true],
    ['wt1a2b-h1', true],
    ['wt1a2b-victim', true],
    ['wt1a2b-rawattacker', true],
    ['cni-0d3c2b1a-7f6e-4a5b-9c8d-1e2f3a4b5c6d', false],
    ['wt1a2b-n1-extra', false],
    ['wt1a2b-', false],
    ['wt1a2b-Victim', false],
    ['toolongprefix-u', false],
    ['wt1a2b-averyveryverylongword', false],
  ])('%s: %s', (name, lab) => {
    expect(LAB_NS_NAME.test(name)).toBe(lab);
  });
});
