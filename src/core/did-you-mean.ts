/**
 * "Did you mean" for mistyped names (flags, config keys, subcommands): the closest candidate by
 * edit distance, when it is close enough to be a likely typo rather than another word.
 */

/**
 * Edit distance with adjacent transpositions (optimal string alignment): insert, delete,
 * substitute and swapping two neighbours each cost 1, so the common typo `nmae` is one edit from
 * `name`. Three rows of memory.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let before = new Array<number>(b.length + 1).fill(0);
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a.charCodeAt(i - 1) === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === b.charCodeAt(j - 1)) d = Math.min(d, before[j - 2]! + 1);
      cur[j] = d;
    }
    [before, prev, cur] = [prev, cur, before];
  }
  return prev[b.length]!;
}

/** Case, leading dashes and the camelCase/snake_case/kebab-case spelling do not count as typos. */
function normalise(s: string): string {
  return s
    .replace(/^-+/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase();
}

/**
 * The candidate closest to `word`, or undefined when none is within a third of the word's length
 * (at least 1, at most 3 edits) after normalising both (see normalise). Ties go to the earlier
 * candidate, so callers list the common names first.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const w = normalise(word);
  if (w.length === 0) return undefined;
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, normalise(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
