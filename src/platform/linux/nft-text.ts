/**
 * The nft scripts behind the `Nft` operations and the readers of nft's JSON output, shared by the
 * two ways of running them (NftCli: the `nft` command; NftLib: libnftables in-process), so that
 * both send the same transactions and read the same answers.
 */
import type { NftCounter, NftFamily } from '../nft.js';

/** `add` first so that `delete` never fails on a missing table; all of it one transaction. */
export function replaceTableScript(family: NftFamily, name: string, body: string): string {
  return `add table ${family} ${name}\ndelete table ${family} ${name}\ntable ${family} ${name} {\n${body}\n}\n`;
}

export function deleteTableScript(family: NftFamily, name: string): string {
  return `add table ${family} ${name}\ndelete table ${family} ${name}\n`;
}

export function replaceSetScript(family: NftFamily, table: string, set: string, elements: readonly string[]): string {
  const add = elements.length === 0 ? '' : `add element ${family} ${table} ${set} { ${elements.join(', ')} }\n`;
  return `flush set ${family} ${table} ${set}\n${add}`;
}

/** nft's words for a table (or other object) that does not exist. */
export const MISSING = /No such file or directory/;

/** The `nftables` array of `nft -j list ...` output (empty when there is none). */
export function parseList(json: string): unknown[] {
  const parsed = JSON.parse(json) as { nftables?: unknown };
  return Array.isArray(parsed.nftables) ? parsed.nftables : [];
}

/** The named counters in `nft -j list counters` output. */
export function parseCounters(json: string): NftCounter[] {
  const doc = JSON.parse(json) as { nftables?: { counter?: { family?: unknown; table?: unknown; name?: unknown; packets?: unknown; bytes?: unknown } }[] };
  const out: NftCounter[] = [];
  for (const item of doc.nftables ?? []) {
    const c = item.counter;
    if (c === undefined || typeof c.family !== 'string' || typeof c.table !== 'string' || typeof c.name !== 'string') continue;
    out.push({ family: c.family, table: c.table, name: c.name, packets: Number(c.packets ?? 0), bytes: Number(c.bytes ?? 0) });
  }
  return out;
}
