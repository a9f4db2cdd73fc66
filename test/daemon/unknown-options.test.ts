/**
 * Unknown `weft launch` arguments: a mistyped flag gets "did you mean", and its value is not a
 * second problem. Through the CLI's own parser (commander as src/cli/main.ts wires it), so the
 * order in which commander hands the leftovers over is part of what is tested.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/daemon/config.js';
import { launchFlags, unknownOptionProblems } from '../../src/daemon/unknown-options.js';
import { ConfigError } from '../../src/core/errors.js';
import { parseLaunch } from './parse-launch.js';

const GOOD = ['--name', 'n1', '--plaintext', '--listen', '198.18.0.1:6784'];

/** The problems of `weft launch ARGS` (with a valid base), as validateConfig lists them. */
function problemsOf(args: string[]): readonly string[] {
  try {
    validateConfig(parseLaunch(['launch', ...GOOD, ...args]), { env: {}, readFile: () => undefined, hostname: () => 'h' });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe('unknown launch options through the CLI parser', () => {
  it.each([
    ['a typo with a value', ['--nmae', 'foo'], ['unknown option "--nmae" (did you mean --name?)']],
    ['a typo with =value', ['--nmae=foo'], ['unknown option "--nmae" (did you mean --name?)']],
    ['a repeatable flag mistyped', ['--peeer', '198.18.0.2:6784'], ['unknown option "--peeer" (did you mean --peer?)']],
    ['camel case', ['--secretFile', '/x'], ['unknown option "--secretFile" (did you mean --secret-file?)']],
    ['two typos, each with its value', ['--ipam-rnage', '10.0.0.0/16', '--bridg', 'br0'], ['unknown option "--ipam-rnage" (did you mean --ipam-range?)', 'unknown option "--bridg" (did you mean --bridge?)']],
    ['nothing close', ['--frobnicate', 'x'], ['unknown option "--frobnicate"']],
    ['a switch typo: the next word is its own problem', ['--plaintxt', 'stray'], ['unknown option "--plaintxt" (did you mean --plaintext?)', 'unexpected argument "stray" (weft launch takes only options)']],
    ['a typo before a known flag', ['--nmae', '--log-level', 'debug'], ['unknown option "--nmae" (did you mean --name?)']],
    ['a stray argument', ['stray'], ['unexpected argument "stray" (weft launch takes only options)']],
    ['a negative number is a value', ['--spin-uss', '-5'], ['unknown option "--spin-uss" (did you mean --spin-us?)']],
  ])('%s: %j', (_what, args, expected) => {
    expect(problemsOf(args)).toEqual(expected);
  });

  it('the valid base has no problem', () => {
    expect(problemsOf([])).toEqual([]);
  });
});

describe('unknownOptionProblems', () => {
  const known = [
    { flag: '--name', takesValue: true },
    { flag: '--plaintext', takesValue: false },
  ];
  it.each([
    [[], []],
    [['--nam'], ['unknown option "--nam" (did you mean --name?)']],
    [['--nam', 'x', 'y'], ['unknown option "--nam" (did you mean --name?)', 'unexpected argument "y" (weft launch takes only options)']],
    [['-'], ['unexpected argument "-" (weft launch takes only options)']],
    [['--zzzzzzzz', '-'], ['unknown option "--zzzzzzzz"']],
    [['--plaintex=yes'], ['unknown option "--plaintex" (did you mean --plaintext?)']],
  ])('%j', (args, expected) => {
    expect(unknownOptionProblems(args, known)).toEqual(expected);
  });

  it('knows every flag of the table and --help', () => {
    const flags = launchFlags().map((f) => f.flag);
    expect(flags).toContain('--help');
    expect(flags).toContain('--ipam-init-peers');
    expect(launchFlags().find((f) => f.flag === '--plaintext')?.takesValue).toBe(false);
  });
});
