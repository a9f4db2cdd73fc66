/**
 * nft scripts of a compiled policy table (compile.ts), each meant to run as one transaction
 * (`NftScripts.apply`):
 * - `fullScript`: the whole table rewritten (rules, sets, elements), its counters keeping the
 *   values they had (a rule change or the first load after a restart);
 * - `elementDiffScript`: only set elements, from one compiled table to the next with the same
 *   rules (a pod came, went or changed labels; a namespace changed labels).
 */
import { WeftError } from '../core/errors.js';
import { counterLine } from './compile.js';
import { POLICY_FAMILY, POLICY_TABLE, type CompiledPolicy, type CompiledSet } from './model.js';

export const POLICY_TABLE_REF = `${POLICY_FAMILY} ${POLICY_TABLE}`;

export interface CounterValue {
  packets: number;
  bytes: number;
}

function addElements(set: string, elements: readonly string[]): string[] {
  return elements.length === 0 ? [] : [`add element ${POLICY_TABLE_REF} ${set} { ${elements.join(', ')} }`];
}

const count = (n: number | undefined) => (n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : 0);

/**
 * The table replaced whole: `add table` (so `delete` never fails), `delete table`, the table
 * with its rules, then every set's elements. Counters named in `counterValues` start from those
 * values (the engine reads them from the kernel first), the others from zero.
 */
export function fullScript(compiled: CompiledPolicy, counterValues?: ReadonlyMap<string, CounterValue>): string {
  let rules = compiled.rules;
  if (counterValues !== undefined) {
    for (const name of compiled.counters) {
      const v = counterValues.get(name);
      if (v === undefined) continue;
      rules = rules.replace(`${counterLine(name)}\n`, `  counter ${name} { packets ${count(v.packets)} bytes ${count(v.bytes)} }\n`);
    }
  }
  const lines = [`add table ${POLICY_TABLE_REF}`, `delete table ${POLICY_TABLE_REF}`, `table ${POLICY_TABLE_REF} {`, rules.trimEnd(), '}'];
  for (const s of compiled.sets) lines.push(...addElements(s.name, s.elements));
  return `${lines.join('\n')}\n`;
}

const isInterval = (s: CompiledSet) => /\bflags\s+[^;]*\binterval\b/.test(s.declaration);

/**
 * The element changes from `before` (what the kernel holds) to `after`; '' when there are none.
 * Plain sets: the elements gone are deleted (each added first, so one the kernel lacks is no
 * error), the new ones added. Interval sets whose elements changed are flushed and refilled (an
 * interval set cannot take an element that overlaps one it holds). Throws ERR_POLICY_DIFF when the
 * rules differ: then only fullScript fits.
 */
export function elementDiffScript(before: CompiledPolicy, after: CompiledPolicy): string {
  if (before.rules !== after.rules) throw new WeftError('ERR_POLICY_DIFF', 'the compiled policy tables differ in their rules, not only in set elements: rewrite the table (fullScript)');
  const old = new Map(before.sets.map((s) => [s.name, s.elements]));
  const lines: string[] = [];
  for (const s of after.sets) {
    const was = old.get(s.name) ?? [];
    const wasSet = new Set(was);
    const nowSet = new Set(s.elements);
    const added = s.elements.filter((e) => !wasSet.has(e));
    const gone = was.filter((e) => !nowSet.has(e));
    if (added.length === 0 && gone.length === 0) continue;
    if (isInterval(s)) {
      lines.push(`flush set ${POLICY_TABLE_REF} ${s.name}`, ...addElements(s.name, s.elements));
      continue;
    }
    if (gone.length > 0) lines.push(...addElements(s.name, gone), `delete element ${POLICY_TABLE_REF} ${s.name} { ${gone.join(', ')} }`);
    lines.push(...addElements(s.name, added));
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
