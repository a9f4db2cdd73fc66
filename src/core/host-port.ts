/**
 * A dial target as an operator writes it: an IP address (`198.18.0.1:6784`, `[2001:2::1]:6784`)
 * or a host name (`node-1.example.net:6784`, RFC 1123), with an optional port. Names are kept
 * lowercase and resolved by whoever dials them; addresses are as `parseEndpoint` reads them.
 */
import { isHostName } from './dns-names.js';
import { formatEndpoint, parseEndpoint } from './net.js';

export interface HostPort {
  /** An IP address, or a host name (lowercase, no trailing '.'). */
  host: string;
  port: number;
  /** 4 or 6 for an address, 0 for a host name. */
  family: 0 | 4 | 6;
}

/** `text` as a host and port (the port defaults to `defaultPort`), or why it is not one. */
export function parseHostPort(text: string, defaultPort?: number): HostPort | string {
  const e = parseEndpoint(text, defaultPort);
  if (typeof e !== 'string') return { host: e.address, port: e.port, family: e.family };
  const m = /^([^:[\]]+)(?::(.*))?$/.exec(text);
  if (m === null || /^[\d.]+$/.test(m[1]!) || !isHostName(m[1]!)) {
    return `"${text}" is neither an IP address nor a host name with an optional port (use ADDR:PORT, [V6ADDR]:PORT or HOST:PORT)`;
  }
  const host = m[1]!.toLowerCase().replace(/\.$/, '');
  let port = defaultPort;
  const portText = m[2];
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return `"${text}" has an invalid port "${portText}"`;
    port = Number(portText);
  }
  if (port === undefined) return `"${text}" has no port`;
  if (port < 1 || port > 65535) return `"${text}" has port ${port} outside 1-65535`;
  return { host, port, family: 0 };
}

/** "addr:port", "[v6]:port" or "name:port". */
export function formatHostPort(h: { host: string; port: number }): string {
  return formatEndpoint({ address: h.host, port: h.port });
}
