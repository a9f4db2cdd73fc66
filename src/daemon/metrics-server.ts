/**
 * The metrics and health endpoint (`--metrics-addr`), plain HTTP for Prometheus and the
 * kubelet's probes:
 *
 *   GET /metrics   200, Prometheus text format (metrics.ts), read from status at scrape time
 *   GET /healthz   200 "ok" while the process and its event loop run (liveness)
 *   GET /readyz    200 "ok" when every readiness check passes, else 503 with the reasons (readiness)
 *
 * HEAD answers the same status and headers without a body. Another path is 404, another method
 * on these paths 405 (with Allow). A request the HTTP parser refuses gets 400 and is closed;
 * nothing a client sends stops the server. Requests carry no body and nothing here changes
 * state, so the endpoint needs no authentication; bind it where only the scraper reaches it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeHttpServer } from './api-server.js';
import type { Socket } from 'node:net';
import { WeftError, describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { formatEndpoint, type Endpoint } from '../core/net.js';
import type { Startable } from '../core/startable.js';
import type { Readiness } from './readiness.js';

/** What /metrics serves: the text and its content type. */
export interface MetricsSource {
  readonly contentType: string;
  scrape(): Promise<string>;
}

const PATHS = new Set(['/metrics', '/healthz', '/readyz']);
const TEXT = 'text/plain; charset=utf-8';
/** Scrapers and probes are few; a client that opens more waits or is refused. */
const MAX_CONNECTIONS = 64;
const REQUEST_TIMEOUT_MS = 10_000;

export class MetricsServer implements Startable {
  private readonly log: Logger;
  private readonly metrics: MetricsSource;
  private readonly readiness: Readiness;
  private readonly endpoint: Endpoint;
  private server: Server | undefined = undefined;

  constructor(components: { logger: Logger; metrics: MetricsSource; readiness: Readiness }, init: { endpoint: Endpoint }) {
    this.log = components.logger;
    this.metrics = components.metrics;
    this.readiness = components.readiness;
    this.endpoint = init.endpoint;
  }

  /** The port listened on (the configured one, or the one the kernel chose for port 0); 0 before start. */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  async start(): Promise<void> {
    const where = formatEndpoint(this.endpoint);
    const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => void this.handle(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.on('clientError', (err, socket: Socket) => {
      this.log.debug('bad HTTP request on the metrics endpoint', { err: describeError(err) });
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the address is in use (another router, or another program, listens there)' : err.code === 'EADDRNOTAVAIL' ? 'no interface here has that address' : describeError(err);
        reject(new WeftError('ERR_METRICS_LISTEN', `--metrics-addr ${where}: cannot listen: ${why}`, { cause: err }));
      });
      server.listen(this.endpoint.port, this.endpoint.address, () => resolve());
    });
    server.on('error', (err) => this.log.error('metrics endpoint error', { err: describeError(err) }));
    this.server = server;
    this.log.info('serving /metrics, /healthz and /readyz', { address: formatEndpoint({ address: this.endpoint.address, port: this.port }) });
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s === undefined) return;
    await closeHttpServer(s);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0]!;
      const method = req.method ?? 'GET';
      if (!PATHS.has(path)) return this.answer(res, method, 404, TEXT, `not found: ${path} (try /metrics, /healthz or /readyz)\n`);
      if (method !== 'GET' && method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return this.answer(res, method, 405, TEXT, `method ${method} not allowed on ${path} (GET or HEAD)\n`);
      }
      if (path === '/healthz') return this.answer(res, method, 200, TEXT, 'ok\n');
      if (path === '/readyz') {
        const reasons = this.readiness.reasons();
        if (reasons.length === 0) return this.answer(res, method, 200, TEXT, 'ok\n');
        return this.answer(res, method, 503, TEXT, `not ready:\n${reasons.map((r) => `- ${r}\n`).join('')}`);
      }
      let text: string;
      try {
        text = await this.metrics.scrape();
      } catch (err) {
        this.log.warn('cannot collect metrics for a scrape', { err: describeError(err) });
        return this.answer(res, method, 500, TEXT, `cannot collect metrics: ${describeError(err)}\n`);
      }
      return this.answer(res, method, 200, this.metrics.contentType, text);
    } catch (err) {
      // Answering itself failed (the client went away): nothing to do but close.
      this.log.debug('metrics endpoint: cannot answer', { err: describeError(err) });
      res.destroy();
    }
  }

  private answer(res: ServerResponse, method: string, status: number, contentType: string, body: string): void {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(method === 'HEAD' ? undefined : body);
  }
}
