/**
 * The system resolver for --peer host names (getaddrinfo, so /etc/hosts counts): every address
 * of the family the mesh can use, in the resolver's order.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** The family a mesh listening on `listenAddress` can dial (0: both, for "::"). */
export function dialFamily(listenAddress: string): 0 | 4 | 6 {
  if (listenAddress === '::') return 0;
  return isIP(listenAddress) === 6 ? 6 : 4;
}

/** `host`'s addresses of `family` (0: both); rejects with the resolver's error (ENOTFOUND, ...). */
export async function resolveHost(host: string, family: 0 | 4 | 6): Promise<string[]> {
  const all = await lookup(host, { all: true, family, order: 'verbatim' });
  return all.map((a) => a.address);
}
