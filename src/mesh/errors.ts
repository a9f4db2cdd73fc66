/**
 * Errors of the mesh's gossip layer. Each has a stable `code`; messages name the channel and what
 * was wrong (which record, which field).
 */
import { WeftError } from '../core/errors.js';

/**
 * A gossip payload was malformed (not msgpack, wrong shape or types, over a limit, a name that
 * does not match its public key...). The receiver's state is unchanged when this is thrown.
 */
export class GossipDecodeError extends WeftError {
  readonly channel: string;
  /** What was wrong, without the channel prefix (for counters and tests). */
  readonly reason: string;

  constructor(channel: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_GOSSIP_DECODE', `malformed ${channel} gossip: ${reason}`, options);
    this.name = 'GossipDecodeError';
    this.channel = channel;
    this.reason = reason;
  }
}

/** A local update of our own topology record was invalid (`problems` lists every one found). */
export class TopologyUpdateError extends WeftError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('ERR_TOPOLOGY_UPDATE', `invalid update of the local peer record:\n  - ${problems.join('\n  - ')}`);
    this.name = 'TopologyUpdateError';
    this.problems = problems;
  }
}
