/**
 * A fake weft daemon for the CNI plugin's tests: the local API's CNI and IPAM routes over HTTP on a
 * Unix socket (node:http), allocating from a small pool with the real semantics (idempotent per
 * containerId+ifName, release of one or every interface, `weft:` allocations of its own, the
 * allocation's network, adding until attached, conditional release), and recording which
 * attachments' ports it was asked to guard (attach, detach). `hang` makes it accept requests and
 * never answer (a stopped router).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeAllocation {
  containerId: string;
  ifName: string;
  addresses: { address: string; prefixLength: number; family: 4 | 6 }[];
  allocatedAt: string;
  /** The CNI network it was allocated for (absent: by hand). */
  network?: string;
  /** Allocated for a network and not attached yet. */
  adding?: true;
  /** ms since the epoch of the last allocate or attach. */
  touchedAt: number;
}

export interface FakeDaemonInit {
  /** '10.99.0' → 10.99.0.2-254/24, gateway .1; undefined: no IPv4. */
  v4Prefix?: string;
  /** 'fd00:99::' → fd00:99::2.../64, gateway ::1; undefined: no IPv6. */
  v6Prefix?: string;
  bridge?: string;
  mtu?: number;
  /** Pool size per family (default 253). */
  size?: number;
}

export class FakeDaemon {
  readonly dir: string;
  readonly socket: string;
  ready = true;
  reason = 'IPAM has not joined the ring yet';
  bridge: string;
  mtu: number;
  /** Forces an API error on a route: path → [status, code]. */
  readonly failures = new Map<string, [number, string]>();
  /** Why the pool is exhausted (GET /v1/cni/network `exhausted`). */
  exhausted: string | undefined = undefined;
  /** Accept requests and never answer them. */
  hang = false;
  readonly requests: { method: string; path: string; body: unknown }[] = [];
  readonly allocations = new Map<string, FakeAllocation>();
  /** Attachments whose port the router guards: containerId + '\0' + ifName → MAC. */
  readonly guarded = new Map<string, string>();
  /** The pod identity each attach carried (absent: none given): containerId + '\0' + ifName → pod. */
  readonly podOf = new Map<string, unknown>();
  private readonly v4: string | undefined;
  private readonly v6: string | undefined;
  private readonly size: number;
  private server: Server | undefined;

  constructor(init: FakeDaemonInit = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'weft-cni-'));
    this.socket = join(this.dir, 'weft.sock');
    this.v4 = init.v4Prefix;
    this.v6 = init.v6Prefix;
    this.bridge = init.bridge ?? 'weft';
    this.mtu = init.mtu ?? 1376;
    this.size = init.size ?? 253;
    this.allocations.set('weft:gateway\0weft', { containerId: 'weft:gateway', ifName: 'weft', addresses: this.gateways(), allocatedAt: new Date().toISOString(), touchedAt: Date.now() });
  }

  gateways(): { address: string; prefixLength: number; family: 4 | 6 }[] {
    return [
      ...(this.v4 === undefined ? [] : [{ address: `${this.v4}.1`, prefixLength: 24, family: 4 as const }]),
      ...(this.v6 === undefined ? [] : [{ address: `${this.v6}1`, prefixLength: 64, family: 6 as const }]),
    ];
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          body = text;
        }
        const path = req.url ?? '';
        this.requests.push({ method: req.method ?? '', path, body });
        if (this.hang) return;
        const [status, answer] = this.handle(req.method ?? '', path, body);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socket, () => resolve());
    });
    return this;
  }

  /** Stops listening (the socket file goes away): the router is unreachable. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Makes every allocation look made (and attached) `ms` earlier. */
  age(ms: number): void {
    for (const a of this.allocations.values()) a.touchedAt -= ms;
  }

  /** Addresses in use (without prefix). */
  used(): Set<string> {
    return new Set([...this.allocations.values()].flatMap((a) => a.addresses.map((x) => x.address)));
  }

  podAllocations(): FakeAllocation[] {
    return [...this.allocations.values()].filter((a) => !a.containerId.startsWith('weft:'));
  }

  private error(status: number, code: string, message: string): [number, unknown] {
    return [status, { error: { code, message } }];
  }

  private handle(method: string, path: string, body: unknown): [number, unknown] {
    const forced = this.failures.get(path);
    if (forced !== undefined) return this.error(forced[0], forced[1], `forced failure of ${path}`);
    const b = (body ?? {}) as { containerId?: unknown; ifName?: unknown; network?: unknown; before?: unknown };
    if (method === 'GET' && path === '/v1/cni/network') {
      return [
        200,
        { ready: this.ready, ...(this.ready ? {} : { reason: this.reason }), bridge: this.bridge, mtu: this.mtu, gateways: this.gateways(), ...(this.exhausted === undefined ? {} : { exhausted: this.exhausted }) },
      ];
    }
    if (method === 'GET' && path === '/v1/ipam/allocations') {
      return [200, { allocations: [...this.allocations.values()].map(({ touchedAt: _, ...a }) => ({ ...a, addresses: a.addresses.map((x) => x.address) })) }];
    }
    if (method === 'POST' && path === '/v1/ipam/allocate') {
      if (typeof b.containerId !== 'string' || typeof b.ifName !== 'string') return this.error(400, 'ERR_IPAM_BAD_REQUEST', 'containerId and ifName are required');
      if (!this.ready) return this.error(503, 'ERR_IPAM_NOT_READY', this.reason);
      const key = `${b.containerId}\0${b.ifName}`;
      const network = typeof b.network === 'string' ? b.network : undefined;
      const have = this.allocations.get(key);
      if (have !== undefined) {
        if (network !== undefined) Object.assign(have, { adding: true, touchedAt: Date.now() });
        return [200, { addresses: have.addresses, existing: true }];
      }
      const used = this.used();
      const addresses: FakeAllocation['addresses'] = [];
      if (this.v4 !== undefined) {
        let host = 2;
        while (host < 2 + this.size && used.has(`${this.v4}.${host}`)) host++;
        if (host >= 2 + this.size || host > 254) return this.error(507, 'ERR_IPAM_EXHAUSTED', `no free address in ${this.v4}.0/24`);
        addresses.push({ address: `${this.v4}.${host}`, prefixLength: 24, family: 4 });
      }
      if (this.v6 !== undefined) {
        let host = 2;
        while (host < 2 + this.size && used.has(`${this.v6}${host.toString(16)}`)) host++;
        if (host >= 2 + this.size) return this.error(507, 'ERR_IPAM_EXHAUSTED', `no free address in ${this.v6}/64`);
        addresses.push({ address: `${this.v6}${host.toString(16)}`, prefixLength: 64, family: 6 });
      }
      this.allocations.set(key, {
        containerId: b.containerId,
        ifName: b.ifName,
        addresses,
        allocatedAt: new Date().toISOString(),
        touchedAt: Date.now(),
        ...(network === undefined ? {} : { network, adding: true as const }),
      });
      return [200, { addresses }];
    }
    if (method === 'POST' && path === '/v1/ipam/release') {
      if (typeof b.containerId !== 'string' || (b.ifName !== undefined && typeof b.ifName !== 'string')) return this.error(400, 'ERR_IPAM_BAD_REQUEST', 'containerId is required');
      const released: string[] = [];
      const skipped: { containerId: string; ifName: string; reason: string }[] = [];
      const conditional = b.network !== undefined || b.before !== undefined;
      for (const [k, a] of this.allocations) {
        if (a.containerId === b.containerId && (b.ifName === undefined || a.ifName === b.ifName)) {
          const reason = !conditional
            ? undefined
            : b.network !== undefined && a.network !== b.network
              ? 'other-network'
              : a.adding === true
                ? 'adding'
                : typeof b.before === 'number' && a.touchedAt >= b.before
                  ? 'newer'
                  : undefined;
          if (reason !== undefined) {
            skipped.push({ containerId: a.containerId, ifName: a.ifName, reason });
            continue;
          }
          released.push(...a.addresses.map((x) => x.address));
          this.allocations.delete(k);
        }
      }
      return [200, skipped.length === 0 ? { released } : { released, skipped }];
    }
    if (method === 'POST' && path === '/v1/cni/attach') {
      const m = (body ?? {}) as { mac?: unknown };
      if (typeof b.containerId !== 'string' || typeof b.ifName !== 'string' || typeof m.mac !== 'string') return this.error(400, 'ERR_POD_BAD_REQUEST', 'containerId, ifName and mac are required');
      const a = this.allocations.get(`${b.containerId}\0${b.ifName}`);
      if (a === undefined) return this.error(409, 'ERR_POD_NOT_ALLOCATED', `no allocation for ${b.containerId}/${b.ifName}`);
      delete a.adding;
      a.touchedAt = Date.now();
      this.guarded.set(`${b.containerId}\0${b.ifName}`, m.mac);
      const pod = (body as { pod?: unknown }).pod;
      if (pod !== undefined) this.podOf.set(`${b.containerId}\0${b.ifName}`, pod);
      return [200, {}];
    }
    if (method === 'POST' && path === '/v1/cni/detach') {
      if (typeof b.containerId !== 'string' || typeof b.ifName !== 'string') return this.error(400, 'ERR_POD_BAD_REQUEST', 'containerId and ifName are required');
      return [200, { detached: this.guarded.delete(`${b.containerId}\0${b.ifName}`) }];
    }
    return this.error(404, 'ERR_NOT_FOUND', `no route ${method} ${path}`);
  }
}
