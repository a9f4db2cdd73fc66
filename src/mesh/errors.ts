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

/**
 * A channel registry was asked for a second channel under a name it has (`ERR_CHANNEL_DUPLICATE`),
 * or to send on a name it has none for (`ERR_CHANNEL_UNKNOWN`). Both are wiring mistakes.
 */
export class ChannelError extends WeftError {
  readonly channel: string;

  constructor(code: 'ERR_CHANNEL_DUPLICATE' | 'ERR_CHANNEL_UNKNOWN', channel: string) {
    super(
      code,
      code === 'ERR_CHANNEL_DUPLICATE'
        ? `gossip channel "${channel}" exists already: each channel has one gossiper`
        : `no gossip channel "${channel}": make it with newChannel before sending on it`,
    );
    this.name = 'ChannelError';
    this.channel = channel;
  }
}
