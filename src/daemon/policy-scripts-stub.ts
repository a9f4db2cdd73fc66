/**
 * MERGE: a stand-in for `fullScript` and `elementDiffScript` of src/policy/script.ts (the compiler
 * helper's part). The daemon imports these until that exists; at merge, the daemon imports the
 * compiler's and this file goes (test/daemon/policy.test.ts then imports them from there too).
 */
import { POLICY_FAMILY, POLICY_TABLE, type CompiledPolicy } from '../policy/model.js';
import type { CounterValues } from './policy.js';

const T = `${POLICY_FAMILY} ${POLICY_TABLE}`;

/** The whole table in one transaction: add, delete, declare, fill; counters start from `counterValues`. */
export function fullScript(compiled: CompiledPolicy, counterValues?: CounterValues): string {
  const rules = compiled.rules.replace(/^(\s*)counter (\S+) \{\s*\}$/gm, (line, indent: string, name: string) => {
    const v = counterValues?.get(name);
    return v === undefined || (v.packets === 0 && v.bytes === 0) ? line : `${indent}counter ${name} { packets ${v.packets} bytes ${v.bytes} }`;
  });
  let out = `add table ${T}\ndelete table ${T}\ntable ${T} {\n${rules}\n}\n`;
  for (const s of compiled.sets) if (s.elements.length > 0) out += `add element ${T} ${s.name} { ${s.elements.join(', ')} }\n`;
  return out;
}

/** The element changes from `before` to `after` (same rules text); '' when none. */
export function elementDiffScript(before: CompiledPolicy, after: CompiledPolicy): string {
  const old = new Map(before.sets.map((s) => [s.name, new Set(s.elements)]));
  let out = '';
  for (const s of after.sets) {
    const had = old.get(s.name) ?? new Set<string>();
    const now = new Set(s.elements);
    const gone = [...had].filter((e) => !now.has(e));
    const added = s.elements.filter((e) => !had.has(e));
    if (gone.length > 0) out += `delete element ${T} ${s.name} { ${gone.join(', ')} }\n`;
    if (added.length > 0) out += `add element ${T} ${s.name} { ${added.join(', ')} }\n`;
  }
  return out;
}
