/**
 * The one schema of weft's config file, made from the rows of options.ts: which keys exist (the
 * flag names without "--", every launch option but --config) and the shape of each value. The
 * config file reader (config-file.ts) checks files against it; `weft config schema` and
 * docs/weft-config.schema.json give it to editors as JSON Schema; `weft config example` and
 * README's example are made from the same rows. `npm run docs:config` rewrites both files.
 */
import { WeftError } from '../core/errors.js';
import { launchOptions, type LaunchOption, type OptionKey } from './options.js';

/** How a value is written in the file: true/false, a list, or one text value. */
export type ValueShape = 'switch' | 'list' | 'text';

export interface ConfigOption {
  /** The key in the file: the flag without "--" (`heartbeat-ms`, `peer`, `no-vnet-hdr`). */
  name: string;
  key: OptionKey;
  row: LaunchOption;
}

/** The rows of the options table that are not read from a config file. */
const NOT_IN_FILE: ReadonlySet<OptionKey> = new Set<OptionKey>(['config']);

/** Every option a config file may set, in table order. */
export function fileOptions(): ConfigOption[] {
  return launchOptions()
    .filter(([key]) => !NOT_IN_FILE.has(key))
    .map(([key, row]) => ({ name: row.flag.replace(/^--/, ''), key, row }));
}

/** The option key of a config file key, or undefined when there is none. */
export function configKeyOf(name: string): OptionKey | undefined {
  return fileOptions().find((o) => o.name === name)?.key;
}

export function shapeOf(row: LaunchOption): ValueShape {
  return row.check.kind === 'switch' ? 'switch' : row.repeatable !== undefined ? 'list' : 'text';
}

/** One property of the JSON Schema (draft-07), with the shape weft checks under `x-weft-shape`. */
export interface PropertySchema {
  description: string;
  'x-weft-shape': ValueShape;
  type?: string | string[];
  items?: Record<string, unknown>;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  default?: unknown;
}

export interface ConfigSchema {
  $schema: string;
  $id: string;
  title: string;
  description: string;
  type: 'object';
  additionalProperties: false;
  properties: Record<string, PropertySchema>;
}

/** What one value is, as JSON Schema (YAML editors read `500` as a number, weft as the text "500"). */
function valueSchema(row: LaunchOption): Record<string, unknown> {
  const c = row.check;
  switch (c.kind) {
    case 'int':
      return { type: ['integer', 'string'], pattern: '^[0-9]+$', minimum: c.min, maximum: c.max };
    case 'enum':
      return { type: 'string', enum: [...c.values] };
    case 'nickname':
      return { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' };
    case 'ifname':
      return { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,15}$' };
    case 'peer-name':
      return row.repeatable === 'comma' ? { type: 'string', pattern: '^[0-9a-f]{16}(,[0-9a-f]{16})*$' } : { type: 'string', pattern: '^[0-9a-f]{16}$' };
    case 'absolute-path':
    case 'socket-path':
      return { type: 'string', pattern: '^/' };
    case 'dns-name':
      return { type: 'string', maxLength: c.max };
    default:
      return { type: 'string', minLength: 1 };
  }
}

function defaultOf(row: LaunchOption): unknown {
  if (row.default === undefined) return undefined;
  if (row.check.kind === 'switch') return row.default === true ? false : row.default;
  return Array.isArray(row.default) ? [...(row.default as readonly string[])] : row.default;
}

/** The schema of a config file. */
export function configSchema(): ConfigSchema {
  const properties: Record<string, PropertySchema> = {};
  for (const { name, row } of fileOptions()) {
    const shape = shapeOf(row);
    const value = shape === 'switch' ? { type: 'boolean' } : shape === 'list' ? { type: 'array', items: valueSchema(row) } : valueSchema(row);
    const d = defaultOf(row);
    properties[name] = { description: `${row.flag}: ${row.help}`, 'x-weft-shape': shape, ...value, ...(d === undefined ? {} : { default: d }) };
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://github.com/weft/weft/docs/weft-config.schema.json',
    title: 'weft launch config file',
    description: 'The options of "weft launch" (keys: the flag names without "--"); flags on the command line override the file. Generated from src/daemon/options.ts by `npm run docs:config`.',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}

/** The schema as docs/weft-config.schema.json holds it. */
export function configSchemaJson(): string {
  return `${JSON.stringify(configSchema(), null, 2)}\n`;
}

/** Values for the example of the options that have no default (else the value name in capitals). */
const EXAMPLES: Partial<Record<OptionKey, string | string[]>> = {
  name: 'node-1',
  peers: ['198.18.0.1:6784', 'node-2.example.net:6784'],
  stun: ['stun.example.net:3478'],
  advertise: ['203.0.113.7:6784'],
  secretFile: '/etc/weft/secret',
  trustedSubnets: ['198.18.0.0/15'],
  underlayMtu: '1500',
  mtu: '1404',
  cryptoThreads: '2',
  ipamRange6: 'fd00:32::/64',
  ipamSeed: ['0123456789abcdef', '89abcdef01234567'],
  ipamInitPeers: '3',
  kubeconfig: '/etc/weft/kubeconfig',
  nodeName: 'node-1',
  kubeNamespace: 'kube-system',
  policyFile: 'policies.yaml',
  metricsAddr: '127.0.0.1:6782',
  secretFileAccept: ['/etc/weft/secret.new'],
  revocationPubkey: '/etc/weft/revocation.pub',
};

/** The options set (not commented out) in the example: what a router needs. */
const SET_IN_EXAMPLE: ReadonlySet<OptionKey> = new Set<OptionKey>(['name', 'listen', 'peers', 'secretFile']);

function yamlText(s: string): string {
  return /^[A-Za-z0-9_./@-][A-Za-z0-9_./:@[\]-]*$/.test(s) && !/^(true|false|yes|no|on|off|null|~)$/i.test(s) && !s.includes(': ') ? s : JSON.stringify(s);
}

/**
 * A complete config file: every option with its help as a comment; what a router needs is set,
 * the rest commented out, at its default or an example value.
 */
export function configExample(): string {
  const out = [
    '# weft launch --config /etc/weft/weft.yaml',
    '# Keys are the flags of "weft launch" without "--"; a flag on the command line overrides its key.',
    '# Relative file paths are relative to this file. Schema: docs/weft-config.schema.json',
  ];
  for (const { name, key, row } of fileOptions()) {
    out.push('', `# ${row.help}`);
    const set = SET_IN_EXAMPLE.has(key);
    const p = set ? '' : '# ';
    const example = EXAMPLES[key];
    const shape = shapeOf(row);
    if (shape === 'switch') {
      out.push(`${p}${name}: false`);
    } else if (shape === 'list') {
      const items = example === undefined ? [] : Array.isArray(example) ? example : [example];
      if (items.length === 0) out.push(`${p}${name}: []`);
      else out.push(`${p}${name}:`, ...items.map((i) => `${p}  - ${yamlText(i)}`));
    } else {
      const value = (typeof example === 'string' ? example : undefined) ?? (typeof row.default === 'string' ? row.default : `<${(row.value ?? 'value').toUpperCase()}>`);
      out.push(`${p}${name}: ${yamlText(value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

export const CONFIG_EXAMPLE_BEGIN = '<!-- config-example:begin (generated from src/daemon/options.ts by `npm run docs:config`; edit there) -->';
export const CONFIG_EXAMPLE_END = '<!-- config-example:end -->';

/** The example as README shows it, in a yaml code block. */
function readmeBlock(): string {
  return `\`\`\`yaml\n${configExample()}\`\`\``;
}

/** The example between README's markers (undefined when the markers are missing). */
export function readmeConfigExample(readme: string): string | undefined {
  const begin = readme.indexOf(CONFIG_EXAMPLE_BEGIN);
  const end = readme.indexOf(CONFIG_EXAMPLE_END);
  if (begin < 0 || end < begin) return undefined;
  return readme.slice(begin + CONFIG_EXAMPLE_BEGIN.length, end).trim();
}

/** The generated example block (what readmeConfigExample of an up-to-date README is). */
export function configExampleBlock(): string {
  return readmeBlock();
}

/** `readme` with the example between the markers replaced by the generated one. */
export function withConfigExample(readme: string): string {
  const begin = readme.indexOf(CONFIG_EXAMPLE_BEGIN);
  const end = readme.indexOf(CONFIG_EXAMPLE_END);
  if (begin < 0 || end < begin) throw new WeftError('ERR_DOCS_MARKERS', `README has no config example markers (${CONFIG_EXAMPLE_BEGIN} ... ${CONFIG_EXAMPLE_END})`);
  return `${readme.slice(0, begin + CONFIG_EXAMPLE_BEGIN.length)}\n${readmeBlock()}\n${readme.slice(end)}`;
}
