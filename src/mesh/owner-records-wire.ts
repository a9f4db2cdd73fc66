/**
 * The frame shared by the signed per-owner gossip channels ("macs", "reports"): a message is
 *
 *   [format, [record, ...]]   msgpack, records strictly ascending by owner (each record's first field)
 *
 * and each record is decoded by its channel. A message that is not msgpack, not of that shape, of
 * another format, over its byte or record bound, or out of owner order is refused whole
 * (GossipDecodeError, nothing of it is used); a record its decoder refuses (`RecordRefused`) is
 * refused by itself and the rest of the message stands.
 */
import type { Unpackr } from 'msgpackr/unpack';
import { arrayHeader } from './canonical-msgpack.js';
import type { PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';
import { isName } from './topology-record.js';

/** Thrown by a channel's record decoder for a record refused by itself. */
export class RecordRefused<R extends string> {
  readonly reason: R;
  readonly detail: string;
  constructor(reason: R, detail: string) {
    this.reason = reason;
    this.detail = detail;
  }
}

export interface OwnerRecordsFrame {
  /** The channel, named in GossipDecodeError. */
  readonly channel: string;
  readonly format: number;
  readonly maxMessageBytes: number;
  readonly maxRecords: number;
  /** What a record is called in messages ("record", "report"). */
  readonly noun: string;
}

export interface RefusedOwnerRecord<R extends string> {
  /** The record's owner when it could be read. */
  readonly owner: PeerName | undefined;
  readonly reason: R;
  readonly detail: string;
}

/** Decodes a message's records with `decodeOne`; see the file comment for what is refused how. */
export function decodeOwnerRecords<E, R extends string>(
  data: Uint8Array,
  unpackr: Unpackr,
  frame: OwnerRecordsFrame,
  decodeOne: (raw: unknown, i: number) => E,
): { entries: E[]; refused: RefusedOwnerRecord<R>[] } {
  const fail = (reason: string, cause?: unknown): never => {
    throw new GossipDecodeError(frame.channel, reason, cause === undefined ? undefined : { cause });
  };
  if (!(data instanceof Uint8Array)) fail('payload is not bytes');
  if (data.length > frame.maxMessageBytes) fail(`message of ${data.length} bytes exceeds ${frame.maxMessageBytes}`);
  let v: unknown;
  try {
    v = unpackr.unpack(data);
  } catch (err) {
    fail('not msgpack', err);
  }
  if (!Array.isArray(v) || v.length !== 2 || !Array.isArray(v[1])) fail(`not a [format, [${frame.noun}s]] message`);
  const [format, raw] = v as [unknown, unknown[]];
  if (format !== frame.format) fail(`format ${JSON.stringify(format)} is not ${frame.format}`);
  if (raw.length > frame.maxRecords) fail(`${raw.length} ${frame.noun}s exceed ${frame.maxRecords}`);
  const entries: E[] = [];
  const refused: RefusedOwnerRecord<R>[] = [];
  let prev = '';
  raw.forEach((r, i) => {
    const owner = Array.isArray(r) && typeof r[0] === 'string' && isName(r[0]) ? r[0] : undefined;
    if (owner !== undefined) {
      if (owner <= prev) fail(`${frame.noun} ${i}: owners not strictly ascending`);
      prev = owner;
    }
    try {
      entries.push(decodeOne(r, i));
    } catch (err) {
      if (!(err instanceof RecordRefused)) throw err;
      refused.push({ owner, reason: (err as RecordRefused<R>).reason, detail: err.detail });
    }
  });
  return { entries, refused };
}

/** A whole message of `format` from records' canonical bytes, already ascending by owner. */
export function encodeOwnerRecords(format: number, records: readonly Uint8Array[]): Uint8Array {
  const header = arrayHeader(records.length);
  let size = 2 + header.length;
  for (const b of records) size += b.length;
  const out = new Uint8Array(size);
  out[0] = 0x92;
  out[1] = format;
  out.set(header, 2);
  let at = 2 + header.length;
  for (const b of records) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
