import type { Nft, NftCounter, NftFamily } from '../nft.js';
import { run } from './run.js';

/** nftables through the `nft` command (`nft -f -`: one transaction per call). */
export class NftCli implements Nft {
  private readonly nft: string;

  constructor(init: { nftPath?: string } = {}) {
    this.nft = init.nftPath ?? 'nft';
  }

  async replaceTable(family: NftFamily, name: string, body: string): Promise<void> {
    // "add" first so that "delete" never fails on a missing table; both in one transaction.
    const script = `add table ${family} ${name}\ndelete table ${family} ${name}\ntable ${family} ${name} {\n${body}\n}\n`;
    await run(this.nft, ['-f', '-'], { input: script });
  }

  async deleteTable(family: NftFamily, name: string): Promise<void> {
    await run(this.nft, ['-f', '-'], { input: `add table ${family} ${name}\ndelete table ${family} ${name}\n` });
  }

  async replaceSetElements(family: NftFamily, table: string, set: string, elements: readonly string[]): Promise<void> {
    const add = elements.length === 0 ? '' : `add element ${family} ${table} ${set} { ${elements.join(', ')} }\n`;
    await run(this.nft, ['-f', '-'], { input: `flush set ${family} ${table} ${set}\n${add}` });
  }

  async counters(family: NftFamily, table: string): Promise<NftCounter[]> {
    let out: string;
    try {
      out = await run(this.nft, ['-j', 'list', 'counters', 'table', family, table]);
    } catch (err) {
      // a missing table is "no counters"; anything else (no nft, no permission) is an error
      if (/No such file or directory/.test(String((err as Error).message))) return [];
      throw err;
    }
    return parseCounters(out, family, table);
  }
}

/** The counters of `family table` in `nft -j list counters` output. */
export function parseCounters(json: string, family: string, table: string): NftCounter[] {
  const doc = JSON.parse(json) as { nftables?: { counter?: { family?: string; table?: string; name?: string; packets?: number; bytes?: number } }[] };
  const out: NftCounter[] = [];
  for (const item of doc.nftables ?? []) {
    const c = item.counter;
    if (c === undefined || c.family !== family || c.table !== table || typeof c.name !== 'string') continue;
    out.push({ name: c.name, packets: Number(c.packets ?? 0), bytes: Number(c.bytes ?? 0) });
  }
  return out;
}
