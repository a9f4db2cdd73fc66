import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareText } from '../../src/core/compare.js';

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('compareText', () => {
  it('orders by UTF-16 code unit, whatever the locale', () => {
    expect(['b', 'a', 'B', 'n10', 'n2', 'é', 'e', ''].sort(compareText)).toEqual(['', 'B', 'a', 'b', 'e', 'n10', 'n2', 'é']);
    expect(compareText('x', 'x')).toBe(0);
    expect(compareText('a', 'b')).toBe(-1);
    expect(compareText('b', 'a')).toBe(1);
  });

  it('nothing under src/ calls localeCompare (it loads ICU collation data into every router)', () => {
    expect(tsFiles('src').filter((f) => /\.localeCompare\(/.test(readFileSync(f, 'utf8')))).toEqual([]);
  });
});
