/**
 * The plugin's view of the daemon's local API (HTTP on a Unix socket, through core's callApi):
 * typed answers, each checked before use so a malformed reply is reported, never trusted.
 */
import { isIP } from 'node:net';
import { callApi } from '../api/client.js';
import type { AddressGrant, CniNetwork, IpamAllocateResponse, IpamAllocationsResponse, IpamReleaseResponse } from '../api/types.js';
import { WeftError } from '../core/errors.js';
import type { PodAddress } from './result.js';

/** What the plugin reads of an address grant: whose it is and the addresses. */
export type GrantedAttachment = Pick<AddressGrant, 'containerId' | 'ifName' | 'addresses'>;

/** What the commands need from the router; `DaemonClient` is the real one, tests may fake it. */
export interface DaemonApi {
  network(): Promise<CniNetwork>;
  /** `existing`: the router already held these addresses for this attachment. */
  allocate(containerId: string, ifName: string): Promise<{ addresses: PodAddress[]; existing: boolean }>;
  release(containerId: string, ifName?: string): Promise<string[]>;
  allocations(): Promise<GrantedAttachment[]>;
  /**
   * The router guards the attachment's port: frames from it must carry `mac` and the addresses
   * the router allocated to it (anti-spoofing rules). Resolves once the rules are in place.
   */
  attach(containerId: string, ifName: string, mac: string): Promise<void>;
  /** The router drops the attachment's rules (none is no error). */
  detach(containerId: string, ifName: string): Promise<void>;
}

export interface DaemonClientInit {
  socket: string;
  /** Per request; default 10 s for allocation, 5 s otherwise. */
  timeoutMs?: number;
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

  constructor(init: DaemonClientInit) {
    this.socket = init.socket;
    this.timeoutMs = init.timeoutMs;
  }

  async network(): Promise<CniNetwork> {
    const path = '/v1/cni/network';
    const r = (await callApi(this.socket, 'GET', path, undefined, this.timeoutMs ?? 5000)) as Partial<CniNetwork> | null;
    if (r === null || typeof r !== 'object' || typeof r.ready !== 'boolean') throw malformed(this.socket, path, 'no ready flag');
    if (typeof r.bridge !== 'string' || (r.ready && r.bridge === '')) throw malformed(this.socket, path, 'no bridge name');
    if (typeof r.mtu !== 'number' || !Number.isInteger(r.mtu) || r.mtu < 576) throw malformed(this.socket, path, `an invalid mtu ${JSON.stringify(r.mtu)}`);
    const gateways = addressList(this.socket, path, r.gateways ?? []);
    return { ready: r.ready, ...(typeof r.reason === 'string' ? { reason: r.reason } : {}), bridge: r.bridge, mtu: r.mtu, gateways };
  }

  async allocate(containerId: string, ifName: string): Promise<{ addresses: PodAddress[]; existing: boolean }> {
    const path = '/v1/ipam/allocate';
    const r = (await callApi(this.socket, 'POST', path, { containerId, ifName }, this.timeoutMs ?? 10_000)) as Partial<Record<keyof IpamAllocateResponse, unknown>> | null;
    const addresses = addressList(this.socket, path, r?.addresses);
    if (addresses.length === 0) throw malformed(this.socket, path, 'no address');
    return { addresses, existing: r?.existing === true };
  }

  async release(containerId: string, ifName?: string): Promise<string[]> {
    const path = '/v1/ipam/release';
    const body = ifName === undefined ? { containerId } : { containerId, ifName };
    const r = (await callApi(this.socket, 'POST', path, body, this.timeoutMs ?? 5000)) as Partial<Record<keyof IpamReleaseResponse, unknown>> | null;
    return Array.isArray(r?.released) ? r.released.filter((a): a is string => typeof a === 'string') : [];
  }

  async attach(containerId: string, ifName: string, mac: string): Promise<void> {
    await callApi(this.socket, 'POST', '/v1/cni/attach', { containerId, ifName, mac }, this.timeoutMs ?? 10_000);
  }

  async detach(containerId: string, ifName: string): Promise<void> {
    await callApi(this.socket, 'POST', '/v1/cni/detach', { containerId, ifName }, this.timeoutMs ?? 5000);
  }

  async allocations(): Promise<GrantedAttachment[]> {
    const path = '/v1/ipam/allocations';
    const r = (await callApi(this.socket, 'GET', path, undefined, this.timeoutMs ?? 5000)) as Partial<Record<keyof IpamAllocationsResponse, unknown>> | null;
    if (!Array.isArray(r?.allocations)) throw malformed(this.socket, path, 'no allocations array');
    return r.allocations.map((a: unknown, i) => {
      const o = a as Partial<AddressGrant> | null;
      if (o === null || typeof o !== 'object' || typeof o.containerId !== 'string' || typeof o.ifName !== 'string' || !Array.isArray(o.addresses)) {
        throw malformed(this.socket, path, `an invalid allocation at [${i}]: ${JSON.stringify(a)}`);
      }
      return { containerId: o.containerId, ifName: o.ifName, addresses: o.addresses.filter((x): x is string => typeof x === 'string') };
    });
  }
}
