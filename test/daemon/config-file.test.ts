/** The config file of `weft launch --config FILE`: problems with their lines, precedence, round trips, the schema and README's example. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkConfigFile } from '../../src/cli/config-command.js';
import { ConfigError } from '../../src/core/errors.js';
import { configYaml, MAX_CONFIG_BYTES, mergeConfig, parseConfig, readConfig } from '../../src/daemon/config-file.js';
import { configExample, configExampleBlock, configSchema, configSchemaJson, fileOptions, readmeConfigExample, withConfigExample } from '../../src/daemon/config-schema.js';
import { validateConfig, type ConfigEnvironment } from '../../src/daemon/config.js';
import type { LaunchOption, RawConfig } from '../../src/daemon/options.js';
import { parseLaunch } from './parse-launch.js';

const F = '/etc/weft/weft.yaml';

/** `weft launch ...argv` through the CLI's parser, with config files read from `files`. */
function launchWith(argv: string[], files: Record<string, string>): RawConfig {
  return parseLaunch(['launch', ...argv], (path) => {
    const text = files[path];
    if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return text;
  });
}

const noPod: ConfigEnvironment = { env: {}, readFile: () => undefined, hostname: () => 'host-1' };

describe('config file: every problem, with file, line and key', () => {
  it.each([
    ['an empty file', '', [`${F}: the file is empty; it should be a mapping of launch options, e.g. "name: node-1"`]],
    ['only comments', '# nothing yet\n', [`${F}: the file is empty; it should be a mapping of launch options, e.g. "name: node-1"`]],
    ['a list at the top level', '- name: n1\n', [`${F}:1: the top level is a list; it should be a mapping of launch options, e.g. "name: node-1"`]],
    ['a scalar at the top level', 'node-1\n', [`${F}:1: the top level is "node-1"; it should be a mapping of launch options, e.g. "name: node-1"`]],
    ['bad YAML', 'name: n1\npeer: [a\n', [`${F}:3: not valid YAML: unexpected end of the stream within a flow collection`]],
    ['a key twice', 'name: n1\nmtu: 1400\nname: n2\n', [`${F}:3: not valid YAML: duplicated mapping key`]],
    ['a typo', 'name: n1\nhearbeat-ms: 300\n', [`${F}:2: hearbeat-ms: unknown option; did you mean "heartbeat-ms"?`]],
    ['camelCase', '# c\nipamRange: none\n', [`${F}:2: ipamRange: unknown option; did you mean "ipam-range"?`]],
    ['the flag with its dashes', '"--name": n1\n', [`${F}:1: --name: unknown option; did you mean "name"?`]],
    ['a plural', 'peers:\n  - 198.18.0.2\n', [`${F}:1: peers: unknown option; did you mean "peer"?`]],
    ['nothing like an option', 'colour: blue\n', [`${F}:1: colour: unknown option (the options are those of "weft launch --help", without "--")`]],
    ['config in a config file', 'config: other.yaml\n', [`${F}:1: config: a config file cannot name another one`]],
    ['a list for one value', 'mtu:\n  - 1400\n', [`${F}:1: mtu: must be one value (text or a number), not a list`]],
    ['a mapping for one value', 'listen:\n  addr: 1.2.3.4\n', [`${F}:1: listen: must be one value (text or a number), not a mapping`]],
    ['no value', 'name:\n', [`${F}:1: name: must be one value (text or a number), not nothing`]],
    ['one value for a list', 'peer: 198.18.0.2:6784\n', [`${F}:1: peer: must be a list (one "- item" per line), not "198.18.0.2:6784"`]],
    ['a switch as yes', 'plaintext: yes\n', [`${F}:1: plaintext: must be true or false, not "yes"`]],
    ['a switch as a list', 'no-vnet-hdr: [true]\n', [`${F}:1: no-vnet-hdr: must be true or false, not a list`]],
    ['a list item that is a list', 'stun:\n  - [a, b]\n', [`${F}:2: stun #1: must be one value (text or a number), not a list`]],
    ['out of range', 'name: n1\n\nheartbeat-ms: 5\n', [`${F}:3: heartbeat-ms: "5" must be an integer from 100 to 60000`]],
    ['an int as written (no YAML number rules)', 'mtu: 0x578\n', [`${F}:1: mtu: "0x578" must be an integer from 576 to 65000`]],
    ['an enum', 'fastpath: on\n', [`${F}:1: fastpath: "on" must be auto or off`]],
    ['the second peer, on its own line', 'peer:\n  - 198.18.0.2:6784\n  # a comment\n  - 198.18.0.3:99999\n', [`${F}:4: peer #2: "198.18.0.3:99999" is neither an IP address nor a host name with an optional port (use ADDR:PORT, [V6ADDR]:PORT or HOST:PORT)`]],
    ['a flow list: the key\'s line', 'name: n1\npeer: [198.18.0.2, "198.18.0.3:0"]\n', [`${F}:2: peer #2: "198.18.0.3:0" is neither an IP address nor a host name with an optional port (use ADDR:PORT, [V6ADDR]:PORT or HOST:PORT)`]],
    ['a comma list item', 'ipam-seed:\n  - 0123456789abcdef,node-2\n', [`${F}:2: ipam-seed #1: "node-2" is not a peer name (16 hex digits, as "weft identity" prints it)`]],
    ['an empty file path', 'secret-file: ""\n', [`${F}:1: secret-file: must not be empty`]],
    ['a relative state dir', 'state-dir: state\n', [`${F}:1: state-dir: "state" must be an absolute path`]],
    [
      'several problems at once, in file order',
      'name: -x\nlisten: nowhere\nmtu: big\nfrobnicate: 1\n',
      [
        `${F}:1: name: "-x" must be 1-63 characters of letters, digits, "_", "." or "-", starting with a letter or digit`,
        `${F}:2: listen: "nowhere" is not an IP address with an optional port (use ADDR:PORT or [V6ADDR]:PORT)`,
        `${F}:3: mtu: "big" must be an integer from 576 to 65000`,
        `${F}:4: frobnicate: unknown option (the options are those of "weft launch --help", without "--")`,
      ],
    ],
  ])('%s', (_, text, problems) => {
    expect(parseConfig(text, F).problems).toEqual(problems);
  });

  it('a good file gives the options it sets, values as written, relative files beside the file', () => {
    const text = [
      'name: node-1',
      "listen: '198.18.0.1:6784'",
      'peer:',
      '  - 198.18.0.2:6784',
      '  - node-3.example.net',
      'secret-file: secret',
      'policy-file: /etc/weft/../policy.yaml',
      'kubeconfig: ../kube/config',
      'heartbeat-ms: 0250',
      'plaintext: false',
      'no-vnet-hdr: true',
      'trusted-subnets: [198.18.0.0/15, "10.0.0.0/8,10.1.0.0/16"]',
      '',
    ].join('\n');
    const r = parseConfig(text, F);
    expect(r.problems).toEqual([]);
    expect(r.raw).toEqual({
      name: 'node-1',
      listen: '198.18.0.1:6784',
      peers: ['198.18.0.2:6784', 'node-3.example.net'],
      secretFile: '/etc/weft/secret',
      policyFile: '/etc/weft/../policy.yaml',
      kubeconfig: '/etc/kube/config',
      heartbeatMs: '0250',
      plaintext: false,
      vnetHdr: false,
      trustedSubnets: ['198.18.0.0/15', '10.0.0.0/8,10.1.0.0/16'],
    });
  });

  it('a file that cannot be read is named, one ConfigError', () => {
    expect(() => launchWith(['--config', '/nope.yaml'], {})).toThrow(ConfigError);
    expect(() => launchWith(['--config', '/nope.yaml'], {})).toThrow(`/nope.yaml: cannot read the config file: ENOENT`);
  });

  it('a file larger than MAX_CONFIG_BYTES is refused unparsed', () => {
    const huge = `name: n1\n${'# padding\n'.repeat(MAX_CONFIG_BYTES / 10 + 1)}`;
    expect(() => readConfig(F, () => huge)).toThrow(`${F}: larger than ${MAX_CONFIG_BYTES} bytes; not a config file`);
    expect(readConfig(F, () => 'name: n1\n# small\n')).toEqual({ name: 'n1' });
  });

  it('every problem of a file is in the one error launch stops with', () => {
    try {
      launchWith(['--config', F], { [F]: 'hearbeat-ms: 300\nmtu: big\n' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(2);
      expect((err as Error).message).toMatch(/^invalid config file \/etc\/weft\/weft\.yaml:\n {2}- \/etc\/weft\/weft\.yaml:1: hearbeat-ms/);
    }
  });
});

describe('config file and flags: flags win', () => {
  const file = 'name: from-file\nheartbeat-ms: 300\npeer:\n  - 198.18.0.2:6784\n  - 198.18.0.3:6784\nplaintext: true\nno-vnet-hdr: true\nmtu: 1400\n';

  it('the file alone sets what it names; the rest keeps its default', () => {
    const raw = launchWith(['--config', F], { [F]: file });
    expect(raw).toMatchObject({ name: 'from-file', heartbeatMs: '300', peers: ['198.18.0.2:6784', '198.18.0.3:6784'], plaintext: true, vnetHdr: false, mtu: '1400', listen: '0.0.0.0:6784', spinUs: '0' });
  });

  it.each([
    ['a value', ['--name', 'from-flag'], { name: 'from-flag', heartbeatMs: '300' }],
    ['a value equal to the default', ['--heartbeat-ms', '500'], { heartbeatMs: '500', name: 'from-file' }],
    ['a list: replaced, not merged', ['--peer', '198.18.0.9:6784'], { peers: ['198.18.0.9:6784'] }],
    ['an option the file does not set', ['--spin-us', '50'], { spinUs: '50', heartbeatMs: '300' }],
    ['flags before --config', ['--mtu', '1300', '--config', F], { mtu: '1300', name: 'from-file' }],
  ] as [string, string[], RawConfig][])('%s', (_, flags, expected) => {
    const argv = flags.includes('--config') ? flags : ['--config', F, ...flags];
    expect(launchWith(argv, { [F]: file })).toMatchObject(expected);
  });

  it('the merged options pass the same checks as flags (a cross-option rule still applies)', () => {
    const raw = launchWith(['--config', F, '--ipam-init-peers', '2'], { [F]: 'name: n1\nsecret-file: /s\nipam-seed: [0123456789abcdef]\n' });
    expect(() => validateConfig(raw, noPod)).toThrow('--ipam-seed and --ipam-init-peers: give one or the other');
  });

  it('mergeConfig: an absent or undefined file value keeps the command line value', () => {
    expect(mergeConfig({ mtu: undefined }, { mtu: '1400', unknown: [] }, () => false)).toEqual({ mtu: '1400', unknown: [] });
    expect(mergeConfig({ unknown: ['x'] }, { unknown: [] }, () => false)).toEqual({ unknown: [] });
  });
});

/** A valid value of each kind of option, as typed. */
function sample(row: LaunchOption): string | boolean {
  const c = row.check;
  switch (c.kind) {
    case 'switch':
      return row.default !== true;
    case 'int':
      return String(c.max);
    case 'enum':
      return c.values[c.values.length - 1]!;
    case 'endpoint':
      return '198.18.0.9:7000';
    case 'host-port':
      return 'node-9.example.net:7001';
    case 'file':
      return '/etc/weft/some-file';
    case 'absolute-path':
      return '/var/lib/weft-9';
    case 'socket-path':
      return '/run/weft-9/api.sock';
    case 'nickname':
      return 'node_9.x';
    case 'ifname':
      return 'br-9';
    case 'cidr':
      return c.family === 4 ? '10.96.0.0/16' : 'fd00:96::/64';
    case 'peer-name':
      return '0123456789abcdef';
    case 'dns-name':
      return 'node-9.example';
  }
}

describe('every option round-trips through the file, as the flag would give it', () => {
  it.each(fileOptions().map((o) => [o.name, o] as const))('%s', (name, o) => {
    const value = sample(o.row);
    const typed = typeof value === 'boolean' ? (value ? [o.row.flag] : []) : o.row.repeatable !== undefined ? [o.row.flag, value, o.row.flag, value] : [o.row.flag, value];
    const fromFlags = parseLaunch(['launch', ...typed]);
    const written = configYaml({ [o.key]: fromFlags[o.key] } as RawConfig);
    expect(written.startsWith(`${name}:`)).toBe(true);
    const back = parseConfig(written, F);
    expect(back.problems).toEqual([]);
    expect(back.raw).toEqual({ [o.key]: fromFlags[o.key] });
    expect(launchWith(['--config', F], { [F]: written })).toEqual({ ...fromFlags, config: F });
  });

  it('a file of every option at once round-trips', () => {
    const all: Record<string, unknown> = {};
    for (const o of fileOptions()) {
      const v = sample(o.row);
      all[o.key] = typeof v === 'boolean' ? (o.row.default === true ? !v : v) : o.row.repeatable !== undefined ? [v] : v;
    }
    expect(parseConfig(configYaml(all as RawConfig), F)).toEqual({ raw: all, problems: [] });
  });
});

describe('the schema, the example and README', () => {
  it('the schema has every launch option but --config, by flag name, and nothing else', () => {
    const s = configSchema();
    expect(Object.keys(s.properties)).toEqual(fileOptions().map((o) => o.name));
    expect(Object.keys(s.properties)).not.toContain('config');
    expect(s.additionalProperties).toBe(false);
    expect(s.properties['peer']).toMatchObject({ type: 'array', 'x-weft-shape': 'list' });
    expect(s.properties['plaintext']).toMatchObject({ type: 'boolean', default: false });
    expect(s.properties['no-vnet-hdr']).toMatchObject({ type: 'boolean', default: false });
    expect(s.properties['heartbeat-ms']).toMatchObject({ minimum: 100, maximum: 60_000, default: '500' });
    expect(s.properties['fastpath']).toMatchObject({ enum: ['auto', 'off'] });
  });

  it('docs/weft-config.schema.json is the generated schema (npm run docs:config rewrites it)', () => {
    expect(readFileSync(join(process.cwd(), 'docs', 'weft-config.schema.json'), 'utf8')).toBe(configSchemaJson());
  });

  it("README's example is the generated one (npm run docs:config rewrites it)", () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    expect(readmeConfigExample(readme)).toBe(configExampleBlock());
    expect(withConfigExample(readme)).toBe(readme);
  });

  it('the example names every option, is valid as it is, and with every line uncommented', () => {
    const example = configExample();
    for (const o of fileOptions()) expect(example).toMatch(new RegExp(`^(# )?${o.name}:`, 'm'));
    expect(parseConfig(example, F).problems).toEqual([]);
    const config = checkConfigFile(F, { read: () => example, environment: noPod });
    expect(config).toBe(`${F}: valid (router "node-1", listening on 0.0.0.0:6784, 2 peer(s))`);
    const keys = fileOptions().map((o) => o.name).join('|');
    const uncommented = example.replace(new RegExp(`^# ((?:${keys}):.*|  - .*)$`, 'gm'), '$1');
    const all = parseConfig(uncommented, F);
    expect(all.problems, 'an option without a default needs a value in EXAMPLES (src/daemon/config-schema.ts), then npm run docs:config').toEqual([]);
    expect(Object.keys(all.raw).sort()).toEqual(fileOptions().map((o) => o.key).sort());
  });

  it('weft config check: rules between options are named with the file', () => {
    const text = 'name: n1\nplaintext: false\n';
    expect(() => checkConfigFile(F, { read: () => text, environment: noPod })).toThrow(`${F}: --secret-file: required unless --plaintext is given`);
  });
});
