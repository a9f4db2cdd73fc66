/**
 * CNI errors: a `WeftError` carrying the spec's numeric code, written by the skeleton as the spec's
 * error JSON `{ cniVersion, code, msg, details }` on stdout. Codes 1-99 are the spec's; 100 and up
 * are weft's own (the spec leaves them to plugins).
 */
import { WeftError } from '../core/errors.js';

export const CniCode = {
  /** 1: the config's cniVersion is not one the plugin speaks (or the command needs a newer one). */
  IncompatibleVersion: 1,
  /** 2: a field the plugin refuses (e.g. `ipam`: weft allocates from its own IPAM). */
  UnsupportedField: 2,
  /** 3: the container (netns or its interface) does not exist. */
  UnknownContainer: 3,
  /** 4: a CNI_* environment variable is missing or invalid. */
  InvalidEnvironment: 4,
  /** 5: reading input or writing state (the release journal) failed. */
  IoFailure: 5,
  /** 6: stdin is not the JSON object expected. */
  DecodeFailure: 6,
  /** 7: the network configuration is invalid; the message names the field. */
  InvalidNetworkConfig: 7,
  /** 11: transient (router unreachable or not ready): try again later. */
  TryAgainLater: 11,
  /** 50: STATUS: the plugin cannot serve ADD now. */
  NotAvailable: 50,
  /** 51: STATUS: limited connectivity. */
  LimitedConnectivity: 51,
  /** 100: the router's address space is exhausted. */
  AddressesExhausted: 100,
  /** 101: the router refused the request. */
  RouterRefused: 101,
  /** 102: creating, configuring or deleting an interface failed. */
  InterfaceFailure: 102,
  /** 103: CHECK found the attachment different from prevResult. */
  CheckMismatch: 103,
  /** 999: a failure the plugin did not expect (a bug); the message says what. */
  Internal: 999,
} as const;

export type CniCodeValue = (typeof CniCode)[keyof typeof CniCode];

export class CniError extends WeftError {
  readonly cniCode: number;
  readonly details: string;

  constructor(cniCode: number, message: string, options?: { details?: string; cause?: unknown }) {
    super(`ERR_CNI_${cniCode}`, message, options);
    this.name = 'CniError';
    this.cniCode = cniCode;
    this.details = options?.details ?? '';
  }
}

/** The spec's error object. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}
