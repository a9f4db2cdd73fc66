/**
 * TCP's own view of a path's reordering, loss and duplicates, from `nstat` counters read in the
 * two endpoints' namespaces before and after a test (`nstat -asz`: absolute values, zeros too,
 * no history file written). The counters are per network namespace, so a pod namespace holds
 * exactly its own connections'. Which counters mean what (the data flows sender → receiver):
 *
 * - sent: the sender's TcpOutSegs (every segment, data and ACK; the scale the others are read on).
 * - retransmitted (loss, as TCP saw it): the sender's TcpRetransSegs. It includes spurious
 *   retransmissions caused by reordering (the duplicates below count those that arrived twice).
 * - reordering: the sender's TcpExtTCPSACKReorder + TcpExtTCPTSReorder + TcpExtTCPRenoReorder,
 *   the times it found that a segment it had taken for lost had only come late.
 * - out of order: the receiver's TcpExtTCPOFOQueue, segments that arrived after a hole (from
 *   reordering or from a loss) and waited in the out-of-order queue.
 * - duplicates: the receiver's TcpExtTCPDSACKOldSent + TcpExtTCPDSACKOfoSent, segments that
 *   arrived a second time (a spurious retransmission or a copy the path made), each answered
 *   with a D-SACK.
 */
import type { Lab } from '../lab/index.js';

/** Counter name → value, from `nstat` output. */
export type Counters = Map<string, number>;

/**
 * Parses `nstat` output ("#kernel" then "Name  value  rate" lines). Lines that are not a name
 * followed by a whole number are skipped; throws when no counter at all was read (nstat failed).
 */
export function parseNstat(text: string): Counters {
  const out: Counters = new Map();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][A-Za-z0-9_]*)\s+(\d+)(?:\s|$)/.exec(line.trim());
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  if (out.size === 0) throw new Error(`nstat: no counters in its output: ${JSON.stringify(text.slice(0, 200))}`);
  return out;
}

/** after − before for each counter of `names` (0 for a counter absent from either reading; never negative). */
export function delta(before: Counters, after: Counters, names: readonly string[]): number {
  let sum = 0;
  for (const n of names) sum += Math.max(0, (after.get(n) ?? 0) - (before.get(n) ?? 0));
  return sum;
}

export interface TcpQuality {
  sent: number;
  retransmitted: number;
  reordering: number;
  outOfOrder: number;
  duplicates: number;
}

export const SENT = ['TcpOutSegs'] as const;
export const RETRANSMITTED = ['TcpRetransSegs'] as const;
export const REORDERING = ['TcpExtTCPSACKReorder', 'TcpExtTCPTSReorder', 'TcpExtTCPRenoReorder'] as const;
export const OUT_OF_ORDER = ['TcpExtTCPOFOQueue'] as const;
export const DUPLICATES = ['TcpExtTCPDSACKOldSent', 'TcpExtTCPDSACKOfoSent'] as const;

/** The module comment's counts from the sender's and the receiver's readings before and after. */
export function tcpQuality(sender: { before: Counters; after: Counters }, receiver: { before: Counters; after: Counters }): TcpQuality {
  return {
    sent: delta(sender.before, sender.after, SENT),
    retransmitted: delta(sender.before, sender.after, RETRANSMITTED),
    reordering: delta(sender.before, sender.after, REORDERING),
    outOfOrder: delta(receiver.before, receiver.after, OUT_OF_ORDER),
    duplicates: delta(receiver.before, receiver.after, DUPLICATES),
  };
}

/** Reads every counter of `ns` (nstat -asz: absolute, with zeros, without updating nstat's history file). */
export async function readNstat(lab: Lab, ns: string): Promise<Counters> {
  const r = await lab.exec(ns, ['nstat', '-asz'], { timeoutMs: 10_000 });
  return parseNstat(r.stdout);
}

/** Runs `work` between readings of both namespaces and returns its result with the counts. */
export async function withTcpQuality<T>(lab: Lab, senderNs: string, receiverNs: string, work: () => Promise<T>): Promise<{ result: T; quality: TcpQuality }> {
  const [sb, rb] = await Promise.all([readNstat(lab, senderNs), readNstat(lab, receiverNs)]);
  const result = await work();
  const [sa, ra] = await Promise.all([readNstat(lab, senderNs), readNstat(lab, receiverNs)]);
  return { result, quality: tcpQuality({ before: sb, after: sa }, { before: rb, after: ra }) };
}
