/**
 * Address arithmetic for the policy compiler: addresses as numbers (bigint), ipBlock `cidr` minus
 * its `except` as disjoint ranges, and ranges as nft interval set elements (a prefix when a range
 * is one, `a-b` otherwise). nftables refuses overlapping elements in an interval set, so every
 * list this file returns is sorted, disjoint and merged (adjacent ranges joined).
 *
 * Nothing is rejected here (objects.ts validates CIDRs); text that is no address or CIDR is
 * skipped (`undefined`), so it can never reach nft's input.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { addressToBigint, bigintToAddress } from '../core/net.js';

export type IpFamily = 4 | 6;

/** An inclusive range of addresses of one family. */
export interface AddressRange {
  start: bigint;
  end: bigint;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

export function familyBits(family: IpFamily): number {
  return BITS[family];
}

function maxOf(family: IpFamily): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
}

/** The family and value of an address (no prefix length), or undefined when it is none. */
export function parseAddress(text: string): { family: IpFamily; value: bigint } | undefined {
  if (isIPv4(text)) return { family: 4, value: addressToBigint(text, 4) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  return { family: 6, value: addressToBigint(text, 6) };
}

/**
 * The canonical text of an address: dotted IPv4, or IPv6 as RFC 5952 (core/net.ts) except that
 * `::ffff:a.b.c.d` and `::a.b.c.d` (not `::` or `::1`) keep the last 32 bits dotted: what
 * inet_ntop writes, so as nft lists it.
 */
export function formatAddress(family: IpFamily, value: bigint): string {
  if (family === 6 && value >> 48n === 0n && value > 0xffffn) {
    const mid = (value >> 32n) & 0xffffn;
    if (mid === 0xffffn) return `::ffff:${bigintToAddress(value & 0xffffffffn, 4)}`;
    if (mid === 0n) return `::${bigintToAddress(value, 4)}`;
  }
  return bigintToAddress(value, family);
}

/** An address in canonical form (see formatAddress), or undefined when the text is no address. */
export function canonicalAddress(text: string): { family: IpFamily; text: string; value: bigint } | undefined {
  const a = parseAddress(text);
  return a === undefined ? undefined : { ...a, text: formatAddress(a.family, a.value) };
}

/** The addresses of a CIDR (host bits ignored: "10.1.2.3/8" is 10.0.0.0-10.255.255.255), or undefined when it is none. */
export function parseCidr(text: string): { family: IpFamily; range: AddressRange } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const a = parseAddress(m[1]!);
  const len = Number(m[2]);
  if (a === undefined || len > BITS[a.family]) return undefined;
  const host = (1n << BigInt(BITS[a.family] - len)) - 1n;
  const start = a.value & (maxOf(a.family) ^ host);
  return { family: a.family, range: { start, end: start | host } };
}

/** Sorted, disjoint, adjacent ones joined. */
export function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: AddressRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end + 1n) {
      if (r.end > last.end) last.end = r.end;
    } else out.push({ start: r.start, end: r.end });
  }
  return out;
}

/** `ranges` without the addresses of `cut` (both any order; the result merged). */
export function subtractRanges(ranges: readonly AddressRange[], cut: readonly AddressRange[]): AddressRange[] {
  let rest = mergeRanges(ranges);
  for (const c of mergeRanges(cut)) {
    const next: AddressRange[] = [];
    for (const r of rest) {
      if (c.end < r.start || c.start > r.end) {
        next.push(r);
        continue;
      }
      if (c.start > r.start) next.push({ start: r.start, end: c.start - 1n });
      if (c.end < r.end) next.push({ start: c.end + 1n, end: r.end });
    }
    rest = next;
  }
  return rest;
}

/** An ipBlock's addresses: `cidr` minus every `except` of the same family; undefined when `cidr` is no CIDR. */
export function blockRanges(block: { cidr: string; except: readonly string[] }): { family: IpFamily; ranges: AddressRange[] } | undefined {
  const c = parseCidr(block.cidr);
  if (c === undefined) return undefined;
  const cut: AddressRange[] = [];
  for (const e of block.except) {
    const x = parseCidr(e);
    if (x !== undefined && x.family === c.family) cut.push(x.range);
  }
  return { family: c.family, ranges: subtractRanges([c.range], cut) };
}

/** The prefix length when `r` is exactly one prefix, else undefined. */
function prefixLength(family: IpFamily, r: AddressRange): number | undefined {
  const size = r.end - r.start + 1n;
  if ((size & (size - 1n)) !== 0n || (r.start & (size - 1n)) !== 0n) return undefined;
  return BITS[family] - (size.toString(2).length - 1);
}

/** nft interval elements of merged ranges: `10.0.0.1`, `10.0.0.0/8`, `10.0.0.0-10.0.0.5`. */
export function rangeElements(family: IpFamily, ranges: readonly AddressRange[]): string[] {
  return mergeRanges(ranges).map((r) => {
    const len = prefixLength(family, r);
    const start = formatAddress(family, r.start);
    if (len === BITS[family]) return start;
    if (len !== undefined) return `${start}/${len}`;
    return `${start}-${formatAddress(family, r.end)}`;
  });
}
