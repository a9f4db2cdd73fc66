/**
 * What `weft launch` says about the arguments commander did not know. Commander (with unknown
 * options allowed) hands them over in order: an unknown option, then what followed it, so a
 * mistyped `--nmae foo` arrives as ["--nmae", "foo"]. Here "foo" is that option's value and not a
 * second problem; the option gets "did you mean --name?" when a flag of the table is close. An
 * argument that follows no unknown option is an unexpected argument (launch takes none).
 */
import { didYouMean } from '../core/did-you-mean.js';
import { launchOptions } from './options.js';

/** A flag `weft launch` knows: its spelling and whether it takes a value (`--name NAME`) or is a switch. */
export interface KnownFlag {
  flag: string;
  takesValue: boolean;
}

/** One problem line per unknown option or stray argument, in the order given. */
export function unknownOptionProblems(args: readonly string[], known: readonly KnownFlag[]): string[] {
  const problems: string[] = [];
  const flags = known.map((k) => k.flag);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      problems.push(`unexpected argument "${arg}" (weft launch takes only options)`);
      continue;
    }
    const eq = arg.indexOf('=');
    const word = eq > 0 ? arg.slice(0, eq) : arg;
    const guess = didYouMean(word, flags);
    const guessed = guess === undefined ? undefined : known.find((k) => k.flag === guess);
    problems.push(`unknown option "${word}"${guess === undefined ? '' : ` (did you mean ${guess}?)`}`);
    // Its value: after "=", or the next argument when that is not an option. When the likely
    // flag is a switch, the next argument is not its value and is reported on its own.
    if (eq > 0 || guessed?.takesValue === false) continue;
    const next = args[i + 1];
    if (next !== undefined && (!next.startsWith('-') || next === '-' || /^-\d/.test(next))) i++;
  }
  return problems;
}

/** The flags of the options table (in its order), then --help. */
export function launchFlags(): KnownFlag[] {
  return [...launchOptions().map(([, row]) => ({ flag: row.flag, takesValue: row.value !== undefined })), { flag: '--help', takesValue: false }];
}
