import type { Nft } from '../nft.js';
import { run } from './run.js';

/** nftables through the `nft` command (`nft -f -`: one transaction per call). */
export class NftCli implements Nft {
  private readonly nft: string;

  constructor(init: { nftPath?: string } = {}) {
    this.nft = init.nftPath ?? 'nft';
  }

  async replaceTable(family: 'ip' | 'ip6' | 'inet', name: string, body: string): Promise<void> {
    // "add" first so that "delete" never fails on a missing table; both in one transaction.
    const script = `add table ${family} ${name}\ndelete table ${family} ${name}\ntable ${family} ${name} {\n${body}\n}\n`;
    await run(this.nft, ['-f', '-'], { input: script });
  }

  async deleteTable(family: 'ip' | 'ip6' | 'inet', name: string): Promise<void> {
    await run(this.nft, ['-f', '-'], { input: `add table ${family} ${name}\ndelete table ${family} ${name}\n` });
  }
}
