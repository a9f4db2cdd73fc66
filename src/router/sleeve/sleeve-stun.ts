/**
 * STUN Binding requests from the sleeve socket (issue 18: our public endpoint as a STUN server
 * sees it), and the reading of their answers.
 *
 * `request` sends a Binding request (stun.ts) with a random 12-byte transaction id, unsealed,
 * through the scratch destination slot, and remembers it (at most MAX_PENDING, the oldest goes
 * first). The receive path hands over every datagram that passes the codec's header check (type
 * 0x0101 and the magic cookie: a few byte compares, nothing allocated; a sleeve datagram with
 * that start would carry hops 1, which no direct one does): an answer from the endpoint a request
 * went to, with that request's transaction id, is decoded and reported (`stunMapped`); anything
 * else is counted (`stunUnmatched`, `stunMalformed`) and dropped. None reaches the sleeve parsing.
 */
import { randomFillSync } from 'node:crypto';
import { formatEndpoint, type Endpoint } from '../../core/net.js';
import { addressWords } from './peer.js';
import type { SleeveState } from './sleeve-state.js';
import { readBindingSuccess, sameTransaction, STUN_HEADER, writeBindingRequest } from './stun.js';

/** Transactions remembered at most. */
export const MAX_PENDING_STUN = 8;

interface PendingStun {
  txid: Buffer;
  server: string;
  port: number;
  family: 4 | 6;
  words: number[];
}

export class SleeveStun {
  readonly counters = { requests: 0, answers: 0 };
  private readonly state: SleeveState;
  private readonly pending: PendingStun[] = [];
  private readonly out = Buffer.alloc(STUN_HEADER);

  constructor(state: SleeveState) {
    this.state = state;
  }

  /** Sends a Binding request to `address`:`port`; '' when sent, else why not. */
  request(address: string, port: number): string {
    const family: 4 | 6 = address.includes(':') ? 6 : 4;
    const txid = randomFillSync(Buffer.alloc(12));
    writeBindingRequest(this.out, 0, txid);
    const why = this.state.tx.raw(address, port, this.out, STUN_HEADER);
    if (why !== '') return why;
    this.counters.requests++;
    this.pending.push({ txid, server: formatEndpoint({ address, port }), port, family, words: addressWords(address, family) });
    while (this.pending.length > MAX_PENDING_STUN) this.pending.shift();
    return '';
  }

  /** A datagram that passed `isStunBindingSuccess`: matched, decoded and reported, or counted. */
  received(buf: Buffer, off: number, len: number, m: number): void {
    const meta = this.state.udp.rxMeta;
    let at = -1;
    for (let i = 0; i < this.pending.length; i++) {
      const e = this.pending[i]!;
      const w = e.words;
      if (
        e.port === meta[m + 3] && e.family === meta[m + 4] && w[0] === meta[m + 5] && w[1] === meta[m + 6] && w[2] === meta[m + 7] &&
        w[3] === meta[m + 8] && sameTransaction(buf, off, e.txid)
      ) {
        at = i;
        break;
      }
    }
    if (at < 0) {
      this.state.drops.stunUnmatched++;
      return;
    }
    const mapped = readBindingSuccess(buf, off, len);
    if (typeof mapped === 'string') {
      this.state.drops.stunMalformed++;
      return;
    }
    const entry = this.pending.splice(at, 1)[0]!;
    this.counters.answers++;
    const endpoint: Endpoint = { address: mapped.address, port: mapped.port, family: mapped.family };
    this.state.events.stunMapped?.(entry.server, endpoint);
  }
}
