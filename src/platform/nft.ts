/**
 * nftables, as whole tables: a component owns one table and replaces it atomically (one
 * transaction: `add table`, `delete table`, `table { ... }`), so a restart never leaves half a
 * ruleset and never touches other tables.
 */
export interface Nft {
  /** Replaces table `family name` with `body` (the text inside `table family name { ... }`). */
  replaceTable(family: 'ip' | 'ip6' | 'inet', name: string, body: string): Promise<void>;
  /** Removes the table; a missing one is not an error. */
  deleteTable(family: 'ip' | 'ip6' | 'inet', name: string): Promise<void>;
}
