/** MERGE: the stand-in scripts' test; it goes with src/daemon/policy-scripts-stub.ts. */
import { describe, expect, it } from 'vitest';
import { elementDiffScript, fullScript } from '../../src/daemon/policy-scripts-stub.js';
import type { CompiledPolicy } from '../../src/policy/model.js';

const compiled = (elements: string[]): CompiledPolicy => ({
  rules: 'set s { type ipv4_addr; }\ncounter c { }',
  sets: [{ name: 's', declaration: 'type ipv4_addr;', elements }],
  counters: ['c'],
  policies: [],
});

describe('the stand-in scripts (until src/policy/script.ts)', () => {
  it('a full script declares counters with the values carried over, then the elements', () => {
    const text = fullScript(compiled(['10.0.0.1']), new Map([['c', { packets: 7, bytes: 700 }]]));
    expect(text).toContain('counter c { packets 7 bytes 700 }');
    expect(text).toContain('add element inet weft-policy s { 10.0.0.1 }');
  });

  it('an element diff deletes what went and adds what came', () => {
    expect(elementDiffScript(compiled(['10.0.0.1', '10.0.0.2']), compiled(['10.0.0.2', '10.0.0.3']))).toBe(
      'delete element inet weft-policy s { 10.0.0.1 }\nadd element inet weft-policy s { 10.0.0.3 }\n',
    );
  });
});
