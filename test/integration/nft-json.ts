/**
 * nftables JSON made comparable across runs (shared by the nft integration tests).
 */
export const byJson = (a: unknown, b: unknown): number => JSON.stringify(a).localeCompare(JSON.stringify(b));

/**
 * What must be the same whichever way the steps ran: set elements in a stable order (a hash set
 * lists them in its own order), without handles, and named counters in name order (transactions
 * run at once commit in either order, and the counters' handles and places follow that order;
 * rules keep their order within their chain).
 */
export function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'handle') continue;
    if (k === 'elem' && Array.isArray(x)) out[k] = x.map(normalize).sort(byJson);
    else if (k === 'nftables' && Array.isArray(x)) {
      const items = x.map(normalize) as Record<string, unknown>[];
      out[k] = [...items.filter((i) => !('counter' in i)), ...items.filter((i) => 'counter' in i).sort(byJson)];
    } else out[k] = normalize(x);
  }
  return out;
}

