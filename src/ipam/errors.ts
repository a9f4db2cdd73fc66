/**
 * Errors of the cluster-wide IPAM. Each has a stable `code`; messages say what failed and on what
 * (which space, which field, which file).
 */
import { WeftError } from '../core/errors.js';
import type { PeerName } from '../mesh/contracts.js';

/** No free address in a space, and no peer donated any within `askTimeoutMs`. */
export class IpamExhaustedError extends WeftError {
  readonly space: string;

  constructor(space: string, detail: string) {
    super('ERR_IPAM_EXHAUSTED', `no free address in ${space}: ${detail}`);
    this.name = 'IpamExhaustedError';
    this.space = space;
  }
}

/** A request was invalid; `field` names the part that was wrong. */
export class IpamBadRequestError extends WeftError {
  readonly field: string;

  constructor(field: string, detail: string) {
    super('ERR_IPAM_BAD_REQUEST', `invalid IPAM request: ${field} ${detail}`);
    this.name = 'IpamBadRequestError';
    this.field = field;
  }
}

/** IPAM cannot allocate yet (bootstrap not agreed, ring not confirmed, peer fenced, not started). */
export class IpamNotReadyError extends WeftError {
  readonly reason: string;

  constructor(reason: string) {
    super('ERR_IPAM_NOT_READY', `IPAM is not ready: ${reason}`);
    this.name = 'IpamNotReadyError';
    this.reason = reason;
  }
}

/**
 * Two rings of the same space with different geneses met: two groups of peers bootstrapped
 * separately. They are never merged; the operator must pick one (see the message).
 */
export class IpamRingConflictError extends WeftError {
  readonly space: string;
  readonly ours: readonly PeerName[];
  readonly theirs: readonly PeerName[];

  constructor(space: string, ours: readonly PeerName[], theirs: readonly PeerName[], detail = '') {
    super(
      'ERR_IPAM_RING_CONFLICT',
      `IPAM ring conflict in ${space}: ours was seeded by [${ours.join(', ')}], the other by [${theirs.join(', ')}]${detail}; ` +
        'the rings are not merged: the peers of one group must be reset (state removed) and restarted with the seeds of the other',
    );
    this.name = 'IpamRingConflictError';
    this.space = space;
    this.ours = ours;
    this.theirs = theirs;
  }
}

/** The persisted state could not be used (unreadable, corrupt or foreign); never silently reset. */
export class IpamStateError extends WeftError {
  readonly path: string;

  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_IPAM_STATE', `IPAM state ${path}: ${detail}`, options);
    this.name = 'IpamStateError';
    this.path = path;
  }
}

/**
 * A local ring write the ring refuses: a range its writer does not own whole, a version or epoch
 * past the bound, a peer forgetting itself. The caller's mistake, never input from the network;
 * a RangeError with a code, as Node's own.
 */
export class IpamRingWriteError extends RangeError {
  readonly code = 'ERR_IPAM_RING_WRITE';

  constructor(message: string) {
    super(message);
    this.name = 'IpamRingWriteError';
  }
}

/**
 * A value an IPAM function cannot take from code that should have checked it first (a range that
 * does not parse, a genesis without seeds, bytes that are not a ring encoding); a TypeError with a
 * code, as Node's own.
 */
export class IpamArgumentError extends TypeError {
  readonly code = 'ERR_IPAM_INVALID_ARGUMENT';

  constructor(message: string) {
    super(message);
    this.name = 'IpamArgumentError';
  }
}
