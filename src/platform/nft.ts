/**
 * nftables, as whole tables: a component owns one table and replaces it atomically (one
 * transaction: `add table`, `delete table`, `table { ... }`), so a restart never leaves half a
 * ruleset and never touches other tables. A named set of such a table can be refilled on its
 * own, also in one transaction, so rules that use it never see it half-filled. A component that
 * keeps state in its table (set elements, counters) piece by piece changes it with
 * `NftScripts.apply` (any script, one transaction) and reads it back with `listTable`.
 */
export type NftFamily = 'ip' | 'ip6' | 'inet' | 'bridge';

/** A named counter (`counter NAME { }` in a table). */
export interface NftCounter {
  family: string;
  table: string;
  name: string;
  packets: number;
  bytes: number;
}

export interface Nft {
  /** Replaces table `family name` with `body` (the text inside `table family name { ... }`). */
  replaceTable(family: NftFamily, name: string, body: string): Promise<void>;
  /** Removes the table; a missing one is not an error. */
  deleteTable(family: NftFamily, name: string): Promise<void>;
  /** Replaces every element of the named set (`flush set` and `add element` in one transaction); rejects when the set does not exist. */
  replaceSetElements(family: NftFamily, table: string, set: string, elements: readonly string[]): Promise<void>;
  /** The named counters of every table (one read for all). */
  counters(): Promise<NftCounter[]>;
}

/** Scripts and reads for a table whose contents change piece by piece (the pods' table). */
export interface NftScripts {
  /** Runs `script` (nft syntax, one command per line) as one transaction: all of it or nothing. */
  apply(script: string): Promise<void>;
  /** The table as `nft -j list table` gives it (the `nftables` array); undefined when it does not exist. */
  listTable(family: NftFamily, name: string): Promise<unknown[] | undefined>;
}
