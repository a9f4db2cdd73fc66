/**
 * `weft config`: check a config file as `weft launch --config FILE` would read it, print the
 * config file's JSON Schema, or print a complete example (both made from the options table).
 */
import type { Command } from 'commander';
import { ConfigError } from '../core/errors.js';
import { validateConfig, type ConfigEnvironment } from '../daemon/config.js';
import { readConfig } from '../daemon/config-file.js';
import { configExample, configSchemaJson } from '../daemon/config-schema.js';

/**
 * Checks config file `file` as `weft launch --config FILE` with no other flag would: every problem
 * of the file (with its line), then the rules between options. Returns the line to print.
 */
export function checkConfigFile(file: string, options: { read?: (path: string) => string; environment?: ConfigEnvironment } = {}): string {
  const raw = readConfig(file, options.read);
  try {
    const config = validateConfig({ ...raw, unknown: [] }, ...(options.environment === undefined ? [] : [options.environment]));
    return `${file}: valid (router "${config.name}", listening on ${config.listen.address}:${config.listen.port}, ${config.peers.length} peer(s))`;
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.problems.map((p) => `${file}: ${p}`), `config file ${file} (as "weft launch --config ${file}")`);
    throw err;
  }
}

/** Adds `weft config check|schema|example` to `program`. */
export function addConfigCommand(program: Command, out: (text: string) => void = (t) => process.stdout.write(t)): Command {
  const config = program.command('config').description('the config file of "weft launch --config FILE" (YAML; keys: the flag names without "--")');
  config
    .command('check')
    .description('check a config file as "weft launch --config FILE" reads it (exit 2 with every problem, each with its line)')
    .argument('<file>', 'the YAML file')
    .action((file: string) => out(`${checkConfigFile(file)}\n`));
  config
    .command('schema')
    .description("print the config file's JSON Schema (for editors; docs/weft-config.schema.json)")
    .action(() => out(configSchemaJson()));
  config
    .command('example')
    .description('print a complete config file: every option with its help, the ones a router needs set')
    .action(() => out(configExample()));
  return config;
}
