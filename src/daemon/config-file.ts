/**
 * `weft launch --config FILE`: the launch options from a YAML file. Keys are the flag names without
 * "--" (`heartbeat-ms`), values as the flag takes them: text, a list for a repeatable flag, true or
 * false for a switch. The file is read with js-yaml's FAILSAFE schema, so every value stays as
 * written (`007` is not 7, `no` is not false). Which keys exist and the shape of each value come
 * from the one schema made from the options table (config-schema.ts); each value then passes the
 * flag's own check (options.ts). Every problem is gathered, each as `FILE:LINE: key: message`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import type * as JsYaml from 'js-yaml';
import { didYouMean } from '../core/did-you-mean.js';
import { ConfigError, describeError } from '../core/errors.js';
import { configSchema, configKeyOf, fileOptions, type ValueShape } from './config-schema.js';
import { checkValue, optionRow, type OptionKey, type RawConfig } from './options.js';

let yaml: typeof JsYaml | undefined;

/**
 * js-yaml, loaded (synchronously, its CommonJS build) the first time a config file is read or
 * written: a router started without --config does not carry the parser and its schemas (about
 * 0.2 MB of source on its heap, 2026-12-04).
 */
function jsYaml(): typeof JsYaml {
  yaml ??= createRequire(import.meta.url)('js-yaml') as typeof JsYaml;
  return yaml;
}

/** A config file larger than this is refused unread (it is a few hundred bytes in practice). */
export const MAX_CONFIG_BYTES = 1 << 20;

/** What a config file gives: the options it sets (only those) and every problem found. */
export interface ParsedConfig {
  raw: RawConfig;
  problems: string[];
}

/** The 1-based line of each top-level key of a block mapping (the first, when repeated). */
function keyLines(lines: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const KEY = /^(?:"([^"]*)"|'([^']*)'|([^\s#'"{[\-?][^:#]*?|-[^\s:#][^:#]*?))[ \t]*:(?:\s|$)/;
  lines.forEach((line, i) => {
    const m = KEY.exec(line);
    if (m === null) return;
    const key = m[1] ?? m[2] ?? m[3]!;
    if (!out.has(key)) out.set(key, i + 1);
  });
  return out;
}

/**
 * The lines of the items of a block list under the key at `keyLine` (1-based), or undefined when
 * the list is not written one `- item` per line (a flow list `[a, b]`).
 */
function itemLines(lines: readonly string[], keyLine: number, count: number): number[] | undefined {
  const out: number[] = [];
  let indent: number | undefined;
  for (let i = keyLine; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\S/.test(line) && !line.startsWith('-') && !line.startsWith('#')) break;
    const m = /^(\s*)-(?:\s|$)/.exec(line);
    if (m === null) continue;
    indent ??= m[1]!.length;
    if (m[1]!.length === indent) out.push(i + 1);
  }
  return out.length === count ? out : undefined;
}

function describeYaml(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `"${String(value)}"`;
}

const SHAPE_TEXT: Record<ValueShape, string> = {
  switch: 'true or false',
  list: 'a list (one "- item" per line)',
  text: 'one value (text or a number)',
};

/**
 * Parses the text of config file `file` (named in every problem; relative file options resolve
 * against its directory). Never throws: what is wrong is in `problems`.
 */
export function parseConfig(text: string, file: string): ParsedConfig {
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  const { FAILSAFE_SCHEMA, YAMLException, load } = jsYaml();
  let doc: unknown;
  try {
    doc = load(text, { schema: FAILSAFE_SCHEMA, filename: file });
  } catch (err) {
    const line = err instanceof YAMLException ? err.mark.line + 1 : 1;
    const reason = err instanceof YAMLException ? err.reason : describeError(err);
    return { raw: {}, problems: [`${file}:${line}: not valid YAML: ${reason}`] };
  }
  if (doc === undefined || doc === null) {
    return { raw: {}, problems: [`${file}: the file is empty; it should be a mapping of launch options, e.g. "name: node-1"`] };
  }
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    return { raw: {}, problems: [`${file}:1: the top level is ${describeYaml(doc)}; it should be a mapping of launch options, e.g. "name: node-1"`] };
  }
  const lines = text.split(/\r?\n/);
  const lineOf = keyLines(lines);
  const schema = configSchema();
  const names = Object.keys(schema.properties);
  const baseDir = dirname(resolve(file));
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    const line = lineOf.get(name) ?? 1;
    const at = `${file}:${line}: ${name}`;
    const key = configKeyOf(name);
    if (key === undefined) {
      if (name === 'config') {
        problems.push(`${at}: a config file cannot name another one`);
        continue;
      }
      const guess = didYouMean(name, names);
      problems.push(`${at}: unknown option${guess === undefined ? ` (the options are those of "weft launch --help", without "--")` : `; did you mean "${guess}"?`}`);
      continue;
    }
    const shape = schema.properties[name]!['x-weft-shape'];
    const row = optionRow(key);
    if (shape === 'switch') {
      if (value !== 'true' && value !== 'false') {
        problems.push(`${at}: must be ${SHAPE_TEXT.switch}, not ${describeYaml(value)}`);
        continue;
      }
      // `no-vnet-hdr: true` turns vnet off, as the flag does.
      raw[key] = row.default === true ? value === 'false' : value === 'true';
      continue;
    }
    const items: unknown[] | undefined = shape === 'list' ? (Array.isArray(value) ? value : undefined) : typeof value === 'string' ? [value] : undefined;
    if (items === undefined) {
      problems.push(`${at}: must be ${SHAPE_TEXT[shape]}, not ${describeYaml(value)}`);
      continue;
    }
    const where = shape === 'list' ? itemLines(lines, line, items.length) : undefined;
    const texts: string[] = [];
    items.forEach((item, i) => {
      const label = shape === 'list' ? `${file}:${where?.[i] ?? line}: ${name} #${i + 1}` : at;
      if (typeof item !== 'string') {
        problems.push(`${label}: must be one value (text or a number), not ${describeYaml(item)}`);
        return;
      }
      const parts = row.repeatable === 'comma' ? item.split(',').map((t) => t.trim()).filter((t) => t !== '') : [item];
      for (const part of parts) {
        const r = checkValue(row.check, part);
        if ('problem' in r) problems.push(`${label}: ${r.problem}`);
        else if (part === '' && row.check.kind === 'file') problems.push(`${label}: must not be empty`);
      }
      texts.push(row.check.kind === 'file' && item !== '' && !isAbsolute(item) ? resolve(baseDir, item) : item);
    });
    raw[key] = shape === 'list' ? texts : texts[0];
  }
  return { raw: raw as RawConfig, problems };
}

/** Reads and parses config file `file`; throws one ConfigError with every problem. */
export function readConfig(file: string, read: (path: string) => string = (path) => readFileSync(path, 'utf8')): RawConfig {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the config file: ${describeError(err)}`], `config file ${file}`);
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new ConfigError([`${file}: larger than ${MAX_CONFIG_BYTES} bytes; not a config file`], `config file ${file}`);
  const parsed = parseConfig(text, file);
  if (parsed.problems.length > 0) throw new ConfigError(parsed.problems, `config file ${file}`);
  return parsed.raw;
}

/**
 * The options of a config file and of the command line together: an option given on the command
 * line (`given(key)`) wins, a list included (it replaces the file's list); otherwise the file's
 * value, otherwise the command line's (its default).
 */
export function mergeConfig(file: RawConfig, cli: RawConfig, given: (key: OptionKey) => boolean): RawConfig {
  const out: Record<string, unknown> = { ...cli };
  for (const [key, value] of Object.entries(file)) {
    if (key === 'unknown' || value === undefined || given(key as OptionKey)) continue;
    out[key] = value;
  }
  return out as RawConfig;
}

/** The config file (YAML) of the options set in `raw`; parseConfig of it gives `raw` back (absolute paths). */
export function configYaml(raw: RawConfig): string {
  const doc: Record<string, unknown> = {};
  for (const { name, key, row } of fileOptions()) {
    const value = raw[key];
    if (value === undefined) continue;
    doc[name] = row.check.kind === 'switch' && row.default === true ? value === false : value;
  }
  return jsYaml().dump(doc, { lineWidth: -1 });
}
