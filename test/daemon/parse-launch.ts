/** `weft launch` arguments through the CLI's own parser (as src/cli/main.ts wires it), back to a raw config. */
import { Command } from 'commander';
import { addLaunchOptions, launchRawConfig } from '../../src/cli/launch-options.js';
import type { RawConfig } from '../../src/daemon/options.js';

/**
 * `argv` is the whole command line after `weft` (`['launch', ...]`); anything else throws. A
 * `--config FILE` is read with `read` (default: the file system), as `weft launch` reads it.
 */
export function parseLaunch(argv: string[], read?: (path: string) => string): RawConfig {
  let raw: RawConfig | undefined;
  const program = new Command('weft').exitOverride();
  addLaunchOptions(program.command('launch'))
    .allowUnknownOption()
    .allowExcessArguments()
    .action((opts: Record<string, unknown>, cmd: Command) => {
      raw = launchRawConfig(opts, cmd, read);
    });
  program.parse(argv, { from: 'user' });
  if (raw === undefined) throw new Error(`not a launch command: ${argv.join(' ')}`);
  return raw;
}
