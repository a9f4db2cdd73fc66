import { CommandError } from '../errors.js';
import type { Nft, NftCounter, NftFamily, NftScripts } from '../nft.js';
import { deleteTableScript, MISSING, parseCounters, parseList, replaceSetScript, replaceTableScript } from './nft-text.js';
import { run } from './run.js';

export { parseCounters } from './nft-text.js';

/** nftables through the `nft` command (`nft -f -`: one transaction per call). */
export class NftCli implements Nft, NftScripts {
  private readonly nft: string;

  constructor(init: { nftPath?: string } = {}) {
    this.nft = init.nftPath ?? 'nft';
  }

  async replaceTable(family: NftFamily, name: string, body: string): Promise<void> {
    await run(this.nft, ['-f', '-'], { input: replaceTableScript(family, name, body) });
  }

  async deleteTable(family: NftFamily, name: string): Promise<void> {
    await run(this.nft, ['-f', '-'], { input: deleteTableScript(family, name) });
  }

  async replaceSetElements(family: NftFamily, table: string, set: string, elements: readonly string[]): Promise<void> {
    await run(this.nft, ['-f', '-'], { input: replaceSetScript(family, table, set, elements) });
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
      if (err instanceof CommandError && MISSING.test(err.stderr)) return undefined;
      throw err;
    }
    return parseList(text);
  }
}
