/**
 * `weft launch`'s options for commander, made from the rows of src/daemon/options.ts, and the
 * parsed options turned back into the daemon's raw config (checked by validateConfig).
 */
import { Option, type Command } from 'commander';
import { ConfigError } from '../core/errors.js';
import { mergeConfig, readConfig } from '../daemon/config-file.js';
import { launchOptions, optionRow, type LaunchOption, type OptionKey, type RawConfig } from '../daemon/options.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The commander option of a row: `--flag <value>`, its help, its default and how it repeats. */
export function commanderOption(row: LaunchOption): Option {
  const option = new Option(row.value === undefined ? row.flag : `${row.flag} <${row.value}>`, row.help);
  // A switch's default is implied by its form (--x: false, --no-x: true), as commander has it.
  if (row.check.kind === 'switch') return option;
  if (row.repeatable !== undefined) return option.argParser(collect).default([]);
  if (typeof row.default === 'string') option.default(row.default);
  return option;
}

/** Adds every launch option to `cmd`, in table order. */
export function addLaunchOptions(cmd: Command): Command {
  for (const [, row] of launchOptions()) cmd.addOption(commanderOption(row));
  return cmd;
}

/** The raw config of parsed launch options (`opts` as commander gives them) and the arguments it did not know. */
export function rawConfigFrom(opts: Record<string, unknown>, unknown: string[]): RawConfig {
  const raw: Record<string, unknown> = { unknown };
  for (const [key, row] of launchOptions()) {
    const value = opts[commanderOption(row).attributeName()];
    // A switch is a boolean whichever way it was written: --plaintext true, --no-vnet-hdr false.
    raw[key] = row.check.kind === 'switch' ? (row.default === true ? value !== false : value === true) : value;
  }
  return raw as RawConfig;
}

/**
 * The raw config of `weft launch` as parsed by commander (`cmd`): with `--config FILE`, the file's
 * options under the ones given on the command line (commander's value source says which were).
 */
export function launchRawConfig(opts: Record<string, unknown>, cmd: Command, read?: (path: string) => string): RawConfig {
  const cli = rawConfigFrom(opts, cmd.args);
  const file = cli.config;
  if (file === undefined) return cli;
  if (file === '') throw new ConfigError([`${optionRow('config').flag}: must name a file`], 'weft launch options');
  const given = (key: OptionKey): boolean => cmd.getOptionValueSource(commanderOption(optionRow(key)).attributeName()) === 'cli';
  return mergeConfig(readConfig(file, read), cli, given);
}
