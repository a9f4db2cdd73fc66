/**
 * The local API's error codes, each with its one HTTP status. Every refusal is answered as
 * `{ error: { code, message } }` (ApiErrorBody); a WeftError of another code is answered 500 with
 * its own code, anything else 500 ERR_INTERNAL. "Not ready yet" is always 503: clients (the CNI
 * plugin: "try again later") may retry those, and only those.
 */
import { WeftError } from '../core/errors.js';

export const API_ERRORS = {
  /** The body is not JSON. */
  ERR_BAD_JSON: 400,
  /** A request the route cannot take (a field missing or wrong); the message names it. */
  ERR_BAD_REQUEST: 400,
  ERR_IPAM_BAD_REQUEST: 400,
  ERR_POD_BAD_REQUEST: 400,
  /** No such route, or no such peer. */
  ERR_NOT_FOUND: 404,
  /** forget: the peer is still reachable (use force). */
  ERR_PEER_REACHABLE: 409,
  /** attach: IPAM holds no allocation for the attachment (allocate first). */
  ERR_POD_NOT_ALLOCATED: 409,
  ERR_BODY_TOO_LARGE: 413,
  ERR_INTERNAL: 500,
  /** The router is still starting. */
  ERR_NOT_READY: 503,
  /** IPAM cannot allocate yet (bootstrap, ring, fenced), or is off on this router: no pods. */
  ERR_IPAM_NOT_READY: 503,
  /** The pods' anti-spoofing table cannot be programmed now (the router retries). */
  ERR_POD_GUARD: 503,
  /** No free address, and no peer donated any in time. */
  ERR_IPAM_EXHAUSTED: 507,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** The HTTP status of an error code (500 for a code the API does not list). */
export function apiStatusOf(code: string): number {
  return Object.hasOwn(API_ERRORS, code) ? API_ERRORS[code as ApiErrorCode] : 500;
}

/** A refusal the router's API answers with: its status comes from its code. */
export class ApiError extends WeftError {
  readonly status: number;

  constructor(code: ApiErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ApiError';
    this.status = API_ERRORS[code];
  }
}

/** A refusal as a client receives it: the router's code and message, and the HTTP status it came with. */
export class ApiRefusal extends WeftError {
  readonly status: number;

  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.name = 'ApiRefusal';
    this.status = status;
  }
}

/**
 * Whether the router could not take the request now and a retry may work: it cannot be reached,
 * or it answered 503 (or, for an error raised inside the router, its code is a 503 one).
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof ApiRefusal) return err.status === 503;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'ERR_API_UNREACHABLE' || apiStatusOf(code) === 503);
}
