/**
 * `weft version` (and `weft --version`, `-V`): the release, the git commit of the build when
 * known, Node's version and the protocol versions peers check. `--json` prints the same object
 * as the local API's GET /v1/version. Needs no router: it reads only the installed package.
 */
import type { Command } from 'commander';
import { describeError } from '../core/errors.js';
import { formatVersion, versionInfo } from '../daemon/version-info.js';

/** `weft --version`'s line; a package whose package.json cannot be read still runs its other commands. */
export function versionLine(): string {
  try {
    return formatVersion(versionInfo());
  } catch (err) {
    return `weft: ${describeError(err)}`;
  }
}

/** Adds `--version`/`-V` to the program and the `version` command. */
export function registerVersion(program: Command): void {
  program.version(versionLine(), '-V, --version', 'print the version (release, commit, Node, protocols) and exit');
  program
    .command('version')
    .description("print weft's release version and build commit, Node's, and the protocol versions peers check (peers of other releases mesh when these agree)")
    .option('--json', 'machine-readable output (as GET /v1/version)')
    .action((opts: { json?: boolean }) => {
      const v = versionInfo();
      process.stdout.write(opts.json === true ? `${JSON.stringify(v)}\n` : `${formatVersion(v)}\n`);
    });
}
