/**
 * nftables fault rules for a node namespace. Every rule matches what a node receives from one peer
 * on the underlay, so installing the rule in both nodes of a pair cuts both directions, silently
 * (the sender's sendmsg still succeeds, as on a real network). The chain hooks prerouting below
 * the defragmenter (priority -450), so it sees each fragment as it arrived: a size limit acts like
 * a link MTU, and nothing reaches conntrack.
 */
import { isIP } from 'node:net';
import { LabError } from './errors.js';

/** Below NF_IP_PRI_CONNTRACK_DEFRAG (-400). */
export const FAULT_PRIORITY = -450;

function checkPeer(peer: string, v4Only = false): void {
  const family = isIP(peer);
  if (family === 0 || (v4Only && family !== 4)) throw new LabError(`fault rule peer "${peer}" is not an ${v4Only ? 'IPv4' : 'IP'} address`);
}

/** The nft match of packets from `peer` (IPv4 or IPv6); `clearFaultsBetween` finds a pair's rules by it. */
export function fromPeer(peer: string): string {
  return `${isIP(peer) === 6 ? 'ip6' : 'ip'} saddr ${peer}`;
}

function checkInt(what: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n) || n < min || n > max) throw new LabError(`${what} must be an integer in ${min}-${max}, not ${n}`);
}

/** Drops UDP from `peer` (only to or from `port` when given). */
export function blockUdpRules(peer: string, port?: number): string[] {
  checkPeer(peer);
  if (port === undefined) return [`${fromPeer(peer)} meta l4proto udp counter drop`];
  checkInt('port', port, 1, 65535);
  return [`${fromPeer(peer)} udp dport ${port} counter drop`, `${fromPeer(peer)} udp sport ${port} counter drop`];
}

/** Drops every packet from `peer` (IPv4 or IPv6): TCP, UDP and ICMP (a cut link, or a firewall between two sites). */
export function blockAllRules(peer: string): string[] {
  checkPeer(peer);
  return [`${fromPeer(peer)} counter drop`];
}

/** Drops UDP packets (and fragments) from `peer` (IPv4 only) whose IP total length exceeds `overBytes` (only to `port` when given). */
export function dropLargeUdpRules(peer: string, overBytes: number, port?: number): string[] {
  checkPeer(peer, true);
  checkInt('overBytes', overBytes, 20, 65535);
  if (port === undefined) return [`ip saddr ${peer} meta l4proto udp ip length > ${overBytes} counter drop`];
  checkInt('port', port, 1, 65535);
  return [`ip saddr ${peer} udp dport ${port} ip length > ${overBytes} counter drop`];
}

/** Drops a random `percent` of the UDP packets from `peer`. */
export function udpLossRules(peer: string, percent: number): string[] {
  checkPeer(peer);
  checkInt('percent', percent, 0, 100);
  return [`${fromPeer(peer)} meta l4proto udp numgen random mod 100 < ${percent} counter drop`];
}

/** An nft script that replaces `table` atomically with one chain holding `rules` (none: removes it). */
export function faultScript(table: string, rules: readonly string[]): string {
  if (!/^[a-z0-9_]{1,32}$/.test(table)) throw new LabError(`nft table name "${table}" must be 1-32 characters of a-z, 0-9 and _`);
  // Declaring the table first makes the delete succeed whether or not it existed.
  const lines = [`table inet ${table}`, `delete table inet ${table}`];
  if (rules.length > 0) {
    lines.push(
      `table inet ${table} {`,
      '  chain faults {',
      `    type filter hook prerouting priority ${FAULT_PRIORITY}; policy accept;`,
      ...rules.map((r) => `    ${r}`),
      '  }',
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}
