/**
 * The names weft writes in the Kubernetes API: annotations on each router's Node, the IPAM block
 * Leases and their labels. One place, so the router, the manifests (deploy/) and the tests agree.
 */

/** The prefix of every annotation and label weft owns. */
export const PREFIX = 'weft.dev';

/** On a Node, written by its router. */
export const NODE_ANNOTATIONS = {
  /** The router's peer name (16 hex digits, from its public key). */
  peer: `${PREFIX}/peer`,
  /** The router's public key (base64 of the 32 bytes): a peer name checked against it. */
  publicKey: `${PREFIX}/public-key`,
  /** Where the other routers dial this one: "addr:port" (the router's --advertise, else the Node's InternalIP and its port). */
  endpoint: `${PREFIX}/endpoint`,
  /** The router's release version (semver). */
  version: `${PREFIX}/version`,
} as const;

/**
 * On a Node, written by an operator (never by the router): the public endpoint of a node behind
 * NAT, "addr[:port]". Other routers dial it in preference to `weft.dev/endpoint`.
 */
export const PUBLIC_ENDPOINT_ANNOTATION = `${PREFIX}/public-endpoint`;

/** The Lease of an IPAM block: its labels, so one list finds them all. */
export const LEASE_LABELS = {
  /** Every weft IPAM Lease carries it, value "ipam-block". */
  component: `${PREFIX}/component`,
  /** The block's configured range, as a label value (`rangeLabel`: "10.32.0.0-12", "fd00-32---64"). */
  range: `${PREFIX}/range`,
} as const;

export const LEASE_COMPONENT = 'ipam-block';

/** On a block's Lease: its CIDR as text, and the Node of the holder when it claimed it. */
export const LEASE_ANNOTATIONS = {
  cidr: `${PREFIX}/cidr`,
  node: `${PREFIX}/node`,
} as const;

/**
 * The size of an IPAM block, as a prefix length: a router claims blocks of its ranges one at a
 * time (a range smaller than a block is one block).
 */
export const BLOCK_PREFIX = { 4: 26, 6: 122 } as const;

/**
 * The Lease name of a block, from its normalized CIDR: `weft-ipam-` then the CIDR with `.`, `:`
 * and `/` as `-` ("10.32.0.64/26" → "weft-ipam-10-32-0-64-26", "fd00::40/122" →
 * "weft-ipam-fd00--40-122"). A valid DNS subdomain (lowercase, at most 63 characters); one name
 * per block (an IPv4 CIDR has 5 parts, an IPv6 one `--` or 9 parts).
 */
export function leaseName(blockCidr: string): string {
  return `weft-ipam-${blockCidr.toLowerCase().replace(/[.:/]/g, '-')}`;
}

/** A range as a label value ("10.32.0.0/12" → "10.32.0.0-12", "fd00:32::/64" → "fd00-32---64"). */
export function rangeLabel(rangeCidr: string): string {
  const v = rangeCidr.toLowerCase().replace(/[:/]/g, '-');
  return v.startsWith('-') ? `0${v}` : v;
}
