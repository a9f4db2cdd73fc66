/** `weft config check|schema|example` through the built CLI (dist/, as `npm run build:ts` makes it). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configExample, configSchemaJson } from '../../src/daemon/config-schema.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');

function weft(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env['PATH'] } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('weft config', () => {
  it('schema prints docs/weft-config.schema.json, example the complete file', () => {
    expect(weft(['config', 'schema'])).toEqual({ code: 0, out: configSchemaJson(), err: '' });
    expect(weft(['config', 'example'])).toEqual({ code: 0, out: configExample(), err: '' });
  });

  it('check: the example is valid; a bad file gets every problem with its line, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-config-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, configExample());
    expect(weft(['config', 'check', good])).toEqual({ code: 0, out: `${good}: valid (router "node-1", listening on 0.0.0.0:6784, 2 peer(s))\n`, err: '' });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: n1\nipamRange: none\nmtu: 10\n');
    const r = weft(['config', 'check', bad]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `weft: invalid config file ${bad}:\n  - ${bad}:2: ipamRange: unknown option; did you mean "ipam-range"?\n  - ${bad}:3: mtu: "10" must be an integer from 576 to 65000\n`,
    );
    const launch = weft(['launch', '--config', '']);
    expect(launch.code).toBe(2);
    expect(launch.err).toContain('--config: must name a file');
  });
});
