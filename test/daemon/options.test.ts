import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { addLaunchOptions } from '../../src/cli/launch-options.js';
import { parseLaunch } from './parse-launch.js';
import { isLogLevel, type LogLevel } from '../../src/core/logger.js';
import { validateConfig, type DaemonConfig } from '../../src/daemon/config.js';
import { flagTable, readmeFlagTable, withFlagTable } from '../../src/daemon/flag-table.js';
import { checkValue, fillDefaults, LAUNCH_OPTIONS, launchOptions, type RawConfig } from '../../src/daemon/options.js';

/** true when A and B are the same type, else false. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// The enums' values are exactly what the config's types take (checked by tsc, npm run lint).
export const enumsMatch = {
  logLevel: true satisfies Same<(typeof LAUNCH_OPTIONS.logLevel.check.values)[number], LogLevel>,
  fastpath: true satisfies Same<(typeof LAUNCH_OPTIONS.fastpath.check.values)[number], DaemonConfig['fastpath']>,
  aead: true satisfies Same<(typeof LAUNCH_OPTIONS.aead.check.values)[number], DaemonConfig['aead']>,
};


describe('the options table', () => {
  it("README's flag table is the one generated from it (npm run docs:flags rewrites it)", () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    expect(readmeFlagTable(readme)).toBe(flagTable());
    expect(withFlagTable(readme)).toBe(readme);
  });

  it.each(launchOptions().map(([key, row]) => [row.flag, key, row] as const))('%s: its default passes its own check', (_, key, row) => {
    const defaults = fillDefaults({});
    if (row.default === undefined) expect(defaults[key]).toBeUndefined();
    else if (row.check.kind !== 'switch') {
      for (const text of typeof row.default === 'string' ? [row.default] : (row.default as string[])) expect(checkValue(row.check, text)).toHaveProperty('value');
    }
  });

  it('every log level of --log-level is one the logger knows', () => {
    for (const level of LAUNCH_OPTIONS.logLevel.check.values) expect(isLogLevel(level)).toBe(true);
    expect(isLogLevel('loud')).toBe(false);
  });

  it('each flag appears once, and the README and the help name them all', () => {
    const flags = launchOptions().map(([, row]) => row.flag);
    expect(new Set(flags).size).toBe(flags.length);
    const help = new Command('launch');
    addLaunchOptions(help);
    const text = help.helpInformation();
    const table = flagTable();
    for (const f of flags) {
      expect(text).toContain(f);
      expect(table).toContain(`\`${f}`);
    }
  });

  it('the heartbeat default is 500 ms, in the table, the config and the help', () => {
    const good = { name: 'n1', secretFile: '/etc/weft/secret' };
    expect(validateConfig(good).heartbeatMs).toBe(500);
    expect(validateConfig({ ...parseLaunch(['launch']), ...good }).heartbeatMs).toBe(500);
    expect(flagTable()).toContain('| `--heartbeat-ms MS` | `500` |');
  });

  it.each([
    ['no flags: the defaults', [], { listen: '0.0.0.0:6784', peers: [], plaintext: false, vnetHdr: true, heartbeatMs: '500', apiSocket: '/run/weft/weft.sock', unknown: [] }],
    ['repeated and comma-separated options', ['--peer', '198.18.0.2', '--peer', '198.18.0.3:7000', '--ipam-seed', 'a,b', '--ipam-seed', 'c'], { peers: ['198.18.0.2', '198.18.0.3:7000'], ipamSeed: ['a,b', 'c'] }],
    ['switches', ['--plaintext', '--no-vnet-hdr'], { plaintext: true, vnetHdr: false }],
    ['values', ['--heartbeat-ms', '250', '--mtu', '1400', '--ipam-range', 'none'], { heartbeatMs: '250', mtu: '1400', ipamRange: 'none' }],
    ['unknown options and arguments are kept for the check', ['--frobnicate', 'extra'], { unknown: ['--frobnicate', 'extra'] }],
  ] as [string, string[], RawConfig][])('the CLI parses %s', (_, args, expected) => {
    expect(parseLaunch(['launch', ...args])).toMatchObject(expected);
  });

  it('the CLI and the config agree on every default: a launch with no flags but the required ones validates as the defaults do', () => {
    const required = { name: 'n1', secretFile: '/etc/weft/secret' };
    expect(validateConfig({ ...parseLaunch(['launch']), ...required })).toEqual(validateConfig(required));
  });

  it.each([
    [{ kind: 'int', min: 2, max: 10 }, '11', '"11" must be an integer from 2 to 10'],
    [{ kind: 'int', min: 2, max: 10 }, '2.5', '"2.5" must be an integer from 2 to 10'],
    [{ kind: 'enum', values: ['auto', 'off'] }, 'on', '"on" must be auto or off'],
    [{ kind: 'enum', values: ['a', 'b', 'c'] }, 'd', '"d" must be one of a, b, c'],
    [{ kind: 'absolute-path' }, 'x/y', '"x/y" must be an absolute path'],
    [{ kind: 'ifname' }, 'a-name-far-too-long', 'is not a valid interface name'],
    [{ kind: 'cidr', family: 6, maxPrefix: 124, problem: 'must be IPv6' }, '10.0.0.0/8', '"10.0.0.0/8" must be IPv6'],
    [{ kind: 'peer-name' }, 'node-2', '"node-2" is not a peer name'],
    [{ kind: 'endpoint' }, '1.2.3.4:0', 'outside 1-65535'],
  ] as const)('check %o refuses %j', (check, text, problem) => {
    const r = checkValue(check, text);
    expect(r).toHaveProperty('problem');
    expect((r as { problem: string }).problem).toContain(problem);
  });
});
