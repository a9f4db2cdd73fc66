/**
 * The STUN client (--stun, issue 18): asks each configured STUN server where it sees the sleeve
 * socket, and hands the distinct answers to the mesh's endpoints as candidates of kind 'stun'.
 * None is needed (peers observe our endpoint through the mesh); a server adds a candidate before
 * any peer has looked, and one more opinion of the NAT.
 *
 * Per server: resolve its host (each attempt: a name may move), send a Binding request from the
 * sleeve socket (`send`: Sleeve.stunRequest), then
 *   answered (`mapped`, from SleeveEvents.stunMapped)   state 'mapped'; next request in 5 min
 *   no answer in 3 s, or no address, or no send         state 'failed' with the reason; again
 *                                                       after a backoff of 3 s doubling to 5 min
 * The candidates are the mapped endpoints of the servers in state 'mapped', each once.
 */
import type { EndpointsStatus } from '../api/types.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { formatHostPort, type HostPort } from '../core/host-port.js';
import type { Logger } from '../core/logger.js';
import { formatEndpoint, type Endpoint } from '../core/net.js';

export type StunServerStatus = EndpointsStatus['stun'][number];

export interface StunClientComponents {
  clock: Clock;
  logger: Logger;
  /** A host name's addresses (the mesh's host resolver); rejects with the resolver's error. */
  resolve: (host: string) => Promise<readonly string[]>;
  /** Sends a Binding request from the sleeve socket: '' when sent, else why not. */
  send: (address: string, port: number) => string;
  /** The distinct mapped endpoints ("addr:port"), the whole list each time it changes. */
  setStun: (endpoints: readonly string[]) => void;
}

export interface StunClientInit {
  servers: readonly HostPort[];
  /** Between requests to a server that answers. Default 5 min. */
  intervalMs?: number;
  /** An answer not here by then counts as none. Default 3 s. */
  timeoutMs?: number;
  /** The first retry's delay, doubled each time up to `maxBackoffMs`. Default 3 s. */
  backoffMs?: number;
  /** Default 5 min. */
  maxBackoffMs?: number;
}

interface Server {
  server: string;
  host: HostPort;
  resolved: string;
  /** Where the pending request went ("addr:port", as the sleeve reports an answer), '' when none. */
  target: string;
  state: 'waiting' | 'mapped' | 'failed';
  mapped: string;
  lastError: string;
  requests: number;
  answers: number;
  backoffMs: number;
  /** The next request, or the pending request's timeout. */
  timer: TimerHandle | undefined;
  /** Increased by every attempt: a resolution that comes back late for an older one is ignored. */
  attempt: number;
}

export class StunClient {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly resolve: StunClientComponents['resolve'];
  private readonly send: StunClientComponents['send'];
  private readonly setStun: StunClientComponents['setStun'];
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly servers: Server[];
  private running = false;
  private handed = '';

  constructor(components: StunClientComponents, init: StunClientInit) {
    this.clock = components.clock;
    this.log = components.logger;
    this.resolve = components.resolve;
    this.send = components.send;
    this.setStun = components.setStun;
    this.intervalMs = init.intervalMs ?? 300_000;
    this.timeoutMs = init.timeoutMs ?? 3000;
    this.backoffMs = init.backoffMs ?? 3000;
    this.maxBackoffMs = init.maxBackoffMs ?? 300_000;
    this.servers = init.servers.map((host) => ({
      server: formatHostPort(host), host, resolved: '', target: '', state: 'waiting', mapped: '', lastError: '', requests: 0, answers: 0,
      backoffMs: this.backoffMs, timer: undefined, attempt: 0,
    }));
  }

  start(): void {
    this.running = true;
    for (const s of this.servers) void this.ask(s);
  }

  stop(): void {
    this.running = false;
    for (const s of this.servers) {
      s.timer?.cancel();
      s.timer = undefined;
    }
  }

  /** A server (`server`: where the request went, "addr:port") answered: it sees us at `mapped`. */
  mapped(server: string, mapped: Endpoint): void {
    const s = this.servers.find((x) => x.target !== '' && x.target === server);
    if (s === undefined || !this.running) return;
    const endpoint = formatEndpoint(mapped);
    s.answers++;
    s.target = '';
    s.timer?.cancel();
    if (s.state !== 'mapped' || s.mapped !== endpoint) this.log.info('STUN server answered', { server: s.server, resolved: s.resolved, mapped: endpoint });
    s.state = 'mapped';
    s.mapped = endpoint;
    s.lastError = '';
    s.backoffMs = this.backoffMs;
    s.timer = this.clock.setTimeout(() => void this.ask(s), this.intervalMs);
    this.hand();
  }

  status(): StunServerStatus[] {
    return this.servers.map((s) => ({ server: s.server, resolved: s.resolved, state: s.state, mapped: s.mapped, lastError: s.lastError, requests: s.requests, answers: s.answers }));
  }

  private async ask(s: Server): Promise<void> {
    s.timer?.cancel();
    s.timer = undefined;
    const attempt = ++s.attempt;
    let address = s.host.host;
    if (s.host.family === 0) {
      try {
        const all = await this.resolve(s.host.host);
        if (all.length === 0) throw new Error('no address');
        address = all[0]!;
      } catch (err) {
        if (!this.running || attempt !== s.attempt) return;
        this.fail(s, `cannot resolve ${s.host.host}: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      if (!this.running || attempt !== s.attempt) return;
    }
    s.resolved = address;
    const why = this.send(address, s.host.port);
    if (why !== '') {
      this.fail(s, `cannot send to ${formatEndpoint({ address, port: s.host.port })}: ${why}`);
      return;
    }
    s.requests++;
    s.target = formatEndpoint({ address, port: s.host.port });
    s.timer = this.clock.setTimeout(() => {
      s.target = '';
      this.fail(s, `no answer from ${formatEndpoint({ address, port: s.host.port })} in ${this.timeoutMs / 1000} s`);
    }, this.timeoutMs);
  }

  private fail(s: Server, reason: string): void {
    if (!this.running) return;
    if (s.state !== 'failed' || s.lastError !== reason) this.log.warn('STUN server failed', { server: s.server, reason, retryInMs: s.backoffMs });
    s.state = 'failed';
    s.lastError = reason;
    s.timer?.cancel();
    s.timer = this.clock.setTimeout(() => void this.ask(s), s.backoffMs);
    s.backoffMs = Math.min(this.maxBackoffMs, s.backoffMs * 2);
    this.hand();
  }

  /** Hands the mapped endpoints to the mesh when they changed. */
  private hand(): void {
    const list: string[] = [];
    for (const s of this.servers) if (s.state === 'mapped' && !list.includes(s.mapped)) list.push(s.mapped);
    const key = list.join(',');
    if (key === this.handed) return;
    this.handed = key;
    this.setStun(list);
  }
}
