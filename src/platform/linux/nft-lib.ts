/**
 * nftables in-process: the same transactions as NftCli, run by libnftables inside the router
 * (native/nft.c, on the thread pool) instead of an `nft` process per change (~3.6 ms each, on the
 * CNI ADD path). One call at a time, in the order made: each call is one transaction, as with
 * `nft -f -`. `openNft` picks it when the library can be used, else the command.
 */
import type { Logger } from '../../core/logger.js';
import { describeError } from '../../core/errors.js';
import { NftError } from '../errors.js';
import type { Nft, NftCounter, NftFamily, NftScripts } from '../nft.js';
import { loadNative } from './native.js';
import { NftCli } from './nft-cli.js';
import { deleteTableScript, MISSING, parseCounters, parseList, replaceSetScript, replaceTableScript } from './nft-text.js';

/** What native/nft.c answers. */
export interface NftRunResult {
  /** false: the library or its context could not be had (`error` says why). */
  loaded: boolean;
  ok: boolean;
  rc: number;
  output: string;
  error: string;
}

export interface NftNative {
  nftRun(script: string, json: boolean, cb: (r: NftRunResult) => void): void;
}

export interface NftLibComponents {
  /** The addon's nftRun (default: the built addon). */
  native?: NftNative;
}

export class NftLib implements Nft, NftScripts {
  private readonly native: NftNative | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(components: NftLibComponents = {}) {
    this.native = components.native;
  }

  async replaceTable(family: NftFamily, name: string, body: string): Promise<void> {
    await this.run(replaceTableScript(family, name, body), false, `replacing table ${family} ${name}`);
  }

  async deleteTable(family: NftFamily, name: string): Promise<void> {
    await this.run(deleteTableScript(family, name), false, `deleting table ${family} ${name}`);
  }

  async replaceSetElements(family: NftFamily, table: string, set: string, elements: readonly string[]): Promise<void> {
    await this.run(replaceSetScript(family, table, set, elements), false, `refilling set ${family} ${table} ${set}`);
  }

  async counters(): Promise<NftCounter[]> {
    return parseCounters(await this.run('list counters', true, 'listing the counters'));
  }

  async apply(script: string): Promise<void> {
    await this.run(script, false, 'nftables refused the transaction');
  }

  async listTable(family: NftFamily, name: string): Promise<unknown[] | undefined> {
    let text: string;
    try {
      text = await this.run(`list table ${family} ${name}`, true, `listing table ${family} ${name}`);
    } catch (err) {
      if (err instanceof NftError && err.code === 'ERR_NFT' && MISSING.test(err.detail)) return undefined;
      throw err;
    }
    return parseList(text);
  }

  /**
   * Loads the library and makes its context (the first call does it anyway); rejects with
   * ERR_NFT_UNAVAILABLE saying why when it cannot be used.
   */
  async open(): Promise<void> {
    await this.run('', false, 'libnftables');
  }

  /** Runs `script` once every earlier call has finished; resolves with what it printed. */
  private run(script: string, json: boolean, what: string): Promise<string> {
    const next = this.tail.then(() => this.once(script, json, what));
    this.tail = next.catch(() => undefined);
    return next;
  }

  private once(script: string, json: boolean, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let native: NftNative;
      try {
        native = this.native ?? (loadNative() as unknown as NftNative);
      } catch (err) {
        reject(new NftError('ERR_NFT_UNAVAILABLE', describeError(err), 'libnftables cannot be used'));
        return;
      }
      native.nftRun(script, json, (r) => {
        if (!r.loaded) reject(new NftError('ERR_NFT_UNAVAILABLE', r.error, 'libnftables cannot be used'));
        else if (!r.ok) reject(new NftError('ERR_NFT', r.error === '' ? `nft returned ${r.rc} without a message` : r.error, what));
        else resolve(r.output);
      });
    });
  }
}

/** Which way nftables is driven. */
export type NftBackend = 'libnftables' | 'nft';

/**
 * nftables for the router: in-process through libnftables when it loads, else the `nft` command
 * (said once in the log, with why).
 */
export async function openNft(components: NftLibComponents & { logger: Logger }, init: { nftPath?: string } = {}): Promise<{ nft: Nft & NftScripts; backend: NftBackend }> {
  const lib = new NftLib(components);
  try {
    await lib.open();
    components.logger.info('nftables changes run in-process (libnftables)');
    return { nft: lib, backend: 'libnftables' };
  } catch (err) {
    components.logger.warn('libnftables cannot be used; nftables changes run the nft command', { err: describeError(err) });
    return { nft: new NftCli(init), backend: 'nft' };
  }
}
