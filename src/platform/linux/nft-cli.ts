import { CommandError } from '../errors.js';
import type { Nft, NftCounter, NftFamily, NftScripts } from '../nft.js';
import { run } from './run.js';

/** nftables through the `nft` command (`nft -f -`: one transaction per call). */
export class NftCli implements Nft, NftScripts {
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

  async counters(): Promise<NftCounter[]> {
    return parseCounters(await run(this.nft, ['-j', 'list', 'counters']));
  }

  async apply(script: string): Promise<void> {
    await run(this.nft, ['-f', '-'], { input: script });
  }

  async listTable(family: NftFamily, name: string): Promise<unknown[] | undefined> {
    let text: string;
    try {
      text = await run(this.nft, ['-j', 'list', 'table', family, name]);
    } catch (err) {
      if (err instanceof CommandError && /No such file or directory/.test(err.stderr)) return undefined;
      throw err;
    }
    const parsed = JSON.parse(text) as { nftables?: unknown };
    return Array.isArray(parsed.nftables) ? parsed.nftables : [];
  }
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
