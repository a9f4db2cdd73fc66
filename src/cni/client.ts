/**
 * The plugin's view of the daemon's local API (HTTP on a Unix socket, through core's callApi):
 * typed answers, each checked before use so a malformed reply is reported, never trusted.
 */
import { isIP } from 'node:net';
import { callApi } from '../api/client.js';
import type { AddressGrant, CniNetwork, CniPodIdentity, IpamAllocateResponse, IpamAllocationsResponse, IpamReleaseRequest, IpamReleaseResponse } from '../api/types.js';
import { WeftError } from '../core/errors.js';
import type { PodAddress } from './result.js';

/** What the plugin reads of an address grant: whose it is, the addresses, and the CNI network it is for. */
export type GrantedAttachment = Pick<AddressGrant, 'containerId' | 'ifName' | 'addresses' | 'network' | 'adding'>;

/** A conditional release (see IpamReleaseRequest): only what was made for `network` before `before`, and is not being added. */
export type ReleaseCondition = Pick<IpamReleaseRequest, 'network' | 'before'>;

export interface ReleaseOutcome {
  released: string[];
  /** What a conditional release left alone, and why. */
  skipped: NonNullable<IpamReleaseResponse['skipped']>;
}

/** What the commands need from the router; `DaemonClient` is the real one, tests may fake it. */
export interface DaemonApi {
  network(): Promise<CniNetwork>;
  /**
   * `existing`: the router already held these addresses for this attachment. `network`: the CNI
   * config's name (the allocation is then the ADD's: adding until `attach`, and GC's to release).
   * `durable`, when present, settles once the router has persisted the allocation (rejects when
   * it cannot): the addresses may be set up meanwhile, but not reported before it (absent:
   * already persisted).
   */
  allocate(containerId: string, ifName: string, network?: string): Promise<{ addresses: PodAddress[]; existing: boolean; durable?: Promise<void> }>;
  release(containerId: string, ifName?: string, cond?: ReleaseCondition): Promise<ReleaseOutcome>;
  allocations(): Promise<GrantedAttachment[]>;
  /**
   * The router guards the attachment's port: frames from it must carry `mac` and the addresses
   * the router allocated to it (anti-spoofing rules). Resolves once the rules are in place; the
   * allocation then stops being adding. `pod` (the Kubernetes pod, from CNI_ARGS): NetworkPolicy
   * selects the attachment as that pod, and attach resolves once its policy is in too (bounded).
   */
  attach(containerId: string, ifName: string, mac: string, pod?: CniPodIdentity): Promise<void>;
  /** The router drops the attachment's rules (none is no error). */
  detach(containerId: string, ifName: string): Promise<void>;
}

/**
 * The router did not answer within the call's time limit. Its code is ERR_API_UNREACHABLE, as
 * for a router that is down: the same handling (DEL journals, ADD undoes what it may have got).
 */
export class RouterTimeoutError extends WeftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_API_UNREACHABLE', message, options);
    this.name = 'RouterTimeoutError';
  }
}

/**
 * The router as the Node plugin sees it after the binary gave up waiting for it: never asked
 * again, every call fails at once as a timeout (DEL then journals, STATUS says not ready).
 */
export class SilentRouter implements DaemonApi {
  private readonly why: string;

  constructor(socket: string, limitSeconds: string) {
    this.why = `the weft router at ${socket} accepted the call but did not answer within ${limitSeconds} s; it was not asked again`;
  }

  private fail(): Promise<never> {
    return Promise.reject(new RouterTimeoutError(this.why));
  }

  network(): Promise<CniNetwork> {
    return this.fail();
  }
  allocate(): Promise<{ addresses: PodAddress[]; existing: boolean }> {
    return this.fail();
  }
  release(): Promise<ReleaseOutcome> {
    return this.fail();
  }
  allocations(): Promise<GrantedAttachment[]> {
    return this.fail();
  }
  attach(): Promise<void> {
    return this.fail();
  }
  detach(): Promise<void> {
    return this.fail();
  }
}

export interface DaemonClientInit {
  socket: string;
  /** Per request; default 10 s for allocation, 5 s otherwise. */
  timeoutMs?: number;
  /** ms since the epoch: no request waits past it (the command's time limit). */
  deadline?: number;
}

/** The daemon sent something that is not the contract. */
function malformed(socket: string, path: string, why: string): WeftError {
  return new WeftError('ERR_API_RESPONSE', `daemon at ${socket} answered ${path} with ${why}`);
}

function isFamily(v: unknown): v is 4 | 6 {
  return v === 4 || v === 6;
}

function addressList(socket: string, path: string, v: unknown): PodAddress[] {
  if (!Array.isArray(v)) throw malformed(socket, path, 'no addresses array');
  return v.map((a: unknown, i) => {
    const o = a as Partial<PodAddress> | null;
    if (o === null || typeof o !== 'object' || typeof o.address !== 'string' || isIP(o.address) === 0 || !isFamily(o.family) || isIP(o.address) !== o.family) {
      throw malformed(socket, path, `an invalid address at [${i}]: ${JSON.stringify(a)}`);
    }
    const max = o.family === 4 ? 32 : 128;
    if (typeof o.prefixLength !== 'number' || !Number.isInteger(o.prefixLength) || o.prefixLength < 1 || o.prefixLength > max) {
      throw malformed(socket, path, `an invalid prefixLength at [${i}]: ${JSON.stringify(a)}`);
    }
    return { address: o.address, prefixLength: o.prefixLength, family: o.family };
  });
}

export class DaemonClient implements DaemonApi {
  readonly socket: string;
  private readonly timeoutMs: number | undefined;
  private readonly deadline: number | undefined;

  constructor(init: DaemonClientInit) {
    this.socket = init.socket;
    this.timeoutMs = init.timeoutMs;
    this.deadline = init.deadline;
  }

  /** One request, waiting at most its own limit and never past the deadline. */
  private async call(method: string, path: string, body: unknown, defaultMs: number): Promise<unknown> {
    const own = this.timeoutMs ?? defaultMs;
    const left = this.deadline === undefined ? own : this.deadline - Date.now();
    if (left <= 0) throw new RouterTimeoutError(`the call's time limit was reached before ${method} ${path} on ${this.socket}`);
    const limit = Math.min(own, left);
    try {
      return await callApi(this.socket, method, path, body, limit);
    } catch (err) {
      if ((err as { cause?: { code?: unknown } } | null)?.cause?.code === 'ERR_API_TIMEOUT') {
        throw new RouterTimeoutError(`the weft router at ${this.socket} did not answer ${method} ${path} within ${limit} ms`, { cause: err });
      }
      throw err;
    }
  }

  async network(): Promise<CniNetwork> {
    const path = '/v1/cni/network';
    const r = (await this.call('GET', path, undefined, 5000)) as Partial<CniNetwork> | null;
    if (r === null || typeof r !== 'object' || typeof r.ready !== 'boolean') throw malformed(this.socket, path, 'no ready flag');
    if (typeof r.bridge !== 'string' || (r.ready && r.bridge === '')) throw malformed(this.socket, path, 'no bridge name');
    if (typeof r.mtu !== 'number' || !Number.isInteger(r.mtu) || r.mtu < 576) throw malformed(this.socket, path, `an invalid mtu ${JSON.stringify(r.mtu)}`);
    const gateways = addressList(this.socket, path, r.gateways ?? []);
    return {
      ready: r.ready,
      ...(typeof r.reason === 'string' ? { reason: r.reason } : {}),
      bridge: r.bridge,
      mtu: r.mtu,
      gateways,
      ...(typeof r.exhausted === 'string' ? { exhausted: r.exhausted } : {}),
    };
  }

  async allocate(containerId: string, ifName: string, network?: string): Promise<{ addresses: PodAddress[]; existing: boolean }> {
    const path = '/v1/ipam/allocate';
    // The router stops waiting for space before we stop waiting for it: no allocation after we gave up.
    const waitMs = this.deadline === undefined ? undefined : Math.max(0, this.deadline - Date.now() - 500);
    const body = { containerId, ifName, ...(network === undefined ? {} : { network }), ...(waitMs === undefined ? {} : { timeoutMs: waitMs }) };
    const r = (await this.call('POST', path, body, 10_000)) as Partial<Record<keyof IpamAllocateResponse, unknown>> | null;
    const addresses = addressList(this.socket, path, r?.addresses);
    if (addresses.length === 0) throw malformed(this.socket, path, 'no address');
    return { addresses, existing: r?.existing === true };
  }

  async release(containerId: string, ifName?: string, cond?: ReleaseCondition): Promise<ReleaseOutcome> {
    const path = '/v1/ipam/release';
    const body = { containerId, ...(ifName === undefined ? {} : { ifName }), ...(cond?.network === undefined ? {} : { network: cond.network }), ...(cond?.before === undefined ? {} : { before: cond.before }) };
    const r = (await this.call('POST', path, body, 5000)) as Partial<Record<keyof IpamReleaseResponse, unknown>> | null;
    const released = Array.isArray(r?.released) ? r.released.filter((a): a is string => typeof a === 'string') : [];
    const skipped = Array.isArray(r?.skipped)
      ? (r.skipped as unknown[]).filter((x): x is ReleaseOutcome['skipped'][number] => {
          const o = x as Partial<ReleaseOutcome['skipped'][number]> | null;
          return o !== null && typeof o === 'object' && typeof o.containerId === 'string' && typeof o.ifName === 'string' && typeof o.reason === 'string';
        })
      : [];
    return { released, skipped };
  }

  async attach(containerId: string, ifName: string, mac: string, pod?: CniPodIdentity): Promise<void> {
    await this.call('POST', '/v1/cni/attach', pod === undefined ? { containerId, ifName, mac } : { containerId, ifName, mac, pod }, 10_000);
  }

  async detach(containerId: string, ifName: string): Promise<void> {
    await this.call('POST', '/v1/cni/detach', { containerId, ifName }, 5000);
  }

  async allocations(): Promise<GrantedAttachment[]> {
    const path = '/v1/ipam/allocations';
    const r = (await this.call('GET', path, undefined, 5000)) as Partial<Record<keyof IpamAllocationsResponse, unknown>> | null;
    if (!Array.isArray(r?.allocations)) throw malformed(this.socket, path, 'no allocations array');
    return r.allocations.map((a: unknown, i) => {
      const o = a as Partial<AddressGrant> | null;
      if (o === null || typeof o !== 'object' || typeof o.containerId !== 'string' || typeof o.ifName !== 'string' || !Array.isArray(o.addresses)) {
        throw malformed(this.socket, path, `an invalid allocation at [${i}]: ${JSON.stringify(a)}`);
      }
      return {
        containerId: o.containerId,
        ifName: o.ifName,
        addresses: o.addresses.filter((x): x is string => typeof x === 'string'),
        ...(typeof o.network === 'string' ? { network: o.network } : {}),
        ...(o.adding === true ? { adding: true as const } : {}),
      };
    });
  }
}
