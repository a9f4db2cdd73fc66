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
import { POLICY_TABLE, POLICY_TABLE_REF, type CompiledPolicy, type CompiledSet } from './model.js';

export { POLICY_TABLE_REF };

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

const PROTOCOL_NUMBERS: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** One element of `nft -j` in the compiler's text: `10.0.0.0/8`, `a-b`, `fd00::1 . tcp . 80`; undefined when not understood. */
function elementText(e: unknown): string | undefined {
  if (typeof e === 'string') return e;
  if (typeof e === 'number') return String(e);
  if (e === null || typeof e !== 'object') return undefined;
  const o = e as { prefix?: { addr?: unknown; len?: unknown }; range?: unknown; concat?: unknown; elem?: { val?: unknown } };
  if (o.elem !== undefined) return elementText(o.elem.val);
  if (o.prefix !== undefined) return typeof o.prefix.addr === 'string' && typeof o.prefix.len === 'number' ? `${o.prefix.addr}/${o.prefix.len}` : undefined;
  if (Array.isArray(o.range) && o.range.length === 2) {
    const [a, b] = o.range.map(elementText);
    return a === undefined || b === undefined ? undefined : `${a}-${b}`;
  }
  if (Array.isArray(o.concat)) {
    // the compiler's concatenations end in `protocol . port`: a protocol listed as a number gets its name
    const last = o.concat.length - 1;
    const parts = o.concat.map((x, i) => (i === last - 1 && typeof x === 'number' ? (PROTOCOL_NUMBERS[x] ?? String(x)) : elementText(x)));
    return parts.some((p) => p === undefined) ? undefined : parts.join(' . ');
  }
  return undefined;
}

/**
 * The sets of the policy table as `nft -j list table inet weft-policy` gives them (the
 * `nftables` array), their elements in the compiler's text (so they compare with a
 * CompiledPolicy's sets) and sorted; an element it does not understand is left out.
 */
export function readPolicySets(items: readonly unknown[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const item of items) {
    const set = (item as { set?: { name?: unknown; table?: unknown; elem?: unknown } } | null)?.set;
    if (set === undefined || typeof set.name !== 'string' || (set.table !== undefined && set.table !== POLICY_TABLE)) continue;
    const elems = Array.isArray(set.elem) ? set.elem.map(elementText).filter((e): e is string => e !== undefined) : [];
    out.set(set.name, elems.sort());
  }
  return out;
}
