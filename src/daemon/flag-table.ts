/**
 * README's table of `weft launch` flags, made from the rows of options.ts. `npm run docs:flags`
 * rewrites it between the markers; test/daemon/options.test.ts fails when README's differs.
 */
import { WeftError } from '../core/errors.js';
import { launchOptions, type LaunchOption } from './options.js';

export const FLAG_TABLE_BEGIN = '<!-- flags:begin (generated from src/daemon/options.ts by `npm run docs:flags`; edit there) -->';
export const FLAG_TABLE_END = '<!-- flags:end -->';

/** `--flag VALUE`, with an enum's values instead of its value name. */
function usage(row: LaunchOption): string {
  if (row.value === undefined) return `\`${row.flag}\``;
  const value = row.check.kind === 'enum' ? row.check.values.join('\\|') : row.value.toUpperCase();
  return `\`${row.flag} ${value}\``;
}

function defaultText(row: LaunchOption): string {
  if (row.readmeDefault !== undefined) return row.readmeDefault;
  if (typeof row.default === 'string') return `\`${row.default}\``;
  return 'none';
}

/** The Markdown table, one row per flag, in table order. */
export function flagTable(): string {
  const lines = ['| flag | default | meaning |', '|---|---|---|'];
  for (const [, row] of launchOptions()) lines.push(`| ${usage(row)} | ${defaultText(row)} | ${row.readme} |`);
  return lines.join('\n');
}

/** The table between the markers of `readme` (undefined when the markers are missing). */
export function readmeFlagTable(readme: string): string | undefined {
  const begin = readme.indexOf(FLAG_TABLE_BEGIN);
  const end = readme.indexOf(FLAG_TABLE_END);
  if (begin < 0 || end < begin) return undefined;
  return readme.slice(begin + FLAG_TABLE_BEGIN.length, end).trim();
}

/** `readme` with the table between the markers replaced by the generated one. */
export function withFlagTable(readme: string): string {
  const begin = readme.indexOf(FLAG_TABLE_BEGIN);
  const end = readme.indexOf(FLAG_TABLE_END);
  if (begin < 0 || end < begin) throw new WeftError('ERR_DOCS_MARKERS', `README has no flag table markers (${FLAG_TABLE_BEGIN} ... ${FLAG_TABLE_END})`);
  return `${readme.slice(0, begin + FLAG_TABLE_BEGIN.length)}\n${flagTable()}\n${readme.slice(end)}`;
}
