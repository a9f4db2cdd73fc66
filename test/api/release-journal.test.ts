import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ReleaseJournal } from '../../src/api/release-journal.js';

describe('ReleaseJournal', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'weft-journal-'));
    dirs.push(d);
    return join(d, 'pending-releases');
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('records releases durably, one file each, lists them oldest first, and forgets each once done', () => {
    const dir = fresh();
    const j = new ReleaseJournal(dir);
    expect(j.pending()).toEqual([]);
    j.record('c2', 'eth0', 2000);
    j.record('c1', undefined, 1000);
    j.record('c2', 'eth0', 3000); // the same release again replaces the entry
    expect(j.pending()).toEqual([
      { containerId: 'c1', at: 1000 },
      { containerId: 'c2', ifName: 'eth0', at: 3000 },
    ]);
    const files = readdirSync(dir);
    expect(files).toHaveLength(2);
    expect(files.every((f) => f.endsWith('.release.json'))).toBe(true);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    const other = new ReleaseJournal(dir); // e.g. the daemon, after the plugin wrote
    other.done({ containerId: 'c1', at: 1000 });
    expect(other.pending()).toEqual([{ containerId: 'c2', ifName: 'eth0', at: 3000 }]);
    other.done({ containerId: 'c1', at: 1000 }); // twice: no error
  });

  it('skips an unreadable entry and names it, without losing the others', () => {
    const dir = fresh();
    const j = new ReleaseJournal(dir);
    j.record('c1', 'eth0', 1);
    writeFileSync(join(dir, 'garbage.release.json'), '{not json');
    writeFileSync(join(dir, 'shape.release.json'), JSON.stringify({ containerId: 7, at: 'x' }));
    expect(j.pending()).toEqual([{ containerId: 'c1', ifName: 'eth0', at: 1 }]);
    expect(j.unreadable.map((p) => p.slice(dir.length + 1)).sort()).toEqual(['garbage.release.json', 'shape.release.json']);
  });
});
