/** Address helpers: endpoints (`ADDR:PORT`, `[V6]:PORT`) and CIDR prefixes, parsed without DNS. */
import { isIP } from 'node:net';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** Parses `198.18.0.1:6784` or `[fd00::1]:6784`; returns a reason string when it is not valid. */
export function parseEndpoint(text: string, defaultPort?: number): Endpoint | string {
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (v6 !== null) {
    host = v6[1]!;
    portText = v6[2];
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const i = text.indexOf(':');
    host = text.slice(0, i);
    portText = text.slice(i + 1);
  } else {
    host = text;
  }
  const family = isIP(host);
  if (family === 0) return `"${text}" is not an IP address with an optional port (use ADDR:PORT or [V6ADDR]:PORT)`;
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return `"${text}" has an invalid port "${portText}"`;
    port = Number(portText);
  }
  if (port === undefined) return `"${text}" has no port`;
  if (port < 1 || port > 65535) return `"${text}" has port ${port} outside 1-65535`;
  return { address: host, port, family: family as 4 | 6 };
}

export function formatEndpoint(e: { address: string; port: number }): string {
  return isIP(e.address) === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 4 | 6;
}

export function parseCidr(text: string): Cidr | string {
  const i = text.lastIndexOf('/');
  if (i < 0) return `"${text}" is not a CIDR prefix (ADDR/LEN)`;
  const address = text.slice(0, i);
  const family = isIP(address);
  if (family === 0) return `"${text}" does not start with an IP address`;
  const lenText = text.slice(i + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) return `"${text}" has an invalid prefix length (0-${max})`;
  return { address, prefix: Number(lenText), family: family as 4 | 6 };
}

/** An address (validated by `isIP` first) as an unsigned integer. */
export function addressToBigint(text: string, family: 4 | 6): bigint {
  if (family === 4) {
    let v = 0n;
    for (const part of text.split('.')) v = (v << 8n) | BigInt(Number(part));
    return v;
  }
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tailV4 = addressToBigint(text.slice(lastColon + 1), 4);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const l = left === '' || left === undefined ? [] : left.split(':');
  const r = right === undefined || right === '' ? [] : right.split(':');
  const groups = right === undefined ? l : [...l, ...Array<string>(8 - l.length - r.length).fill('0'), ...r];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Address text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed). */
export function bigintToAddress(v: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((v >> s) & 0xffn)).join('.');
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}
