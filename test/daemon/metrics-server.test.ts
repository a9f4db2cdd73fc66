/**
 * The metrics and health endpoint over loopback: paths, methods and status codes, readiness
 * reasons, a failing scrape, requests the HTTP parser refuses, and a port already in use.
 */
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsServer, type MetricsSource } from '../../src/daemon/metrics-server.js';
import { Readiness } from '../../src/daemon/readiness.js';
import { WeftMetrics } from '../../src/daemon/metrics.js';
import { WeftError } from '../../src/core/errors.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { parseExposition, valueOf } from './prom-text.js';
import { statusReport } from './status-fixture.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Raw bytes to the server; what it answers before closing. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(bytes));
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

async function serve(metrics?: MetricsSource, readiness = new Readiness()): Promise<{ server: MetricsServer; port: number; readiness: Readiness }> {
  const m = new WeftMetrics({ build: { version: '0.1.0', node: '20.19.0', meshProtocol: 3, meshProtocolMin: 2, meshProtocolMax: 3, sleeveProtocol: 2 }, processMetrics: false });
  const source = metrics ?? { contentType: m.contentType, scrape: () => m.scrape(statusReport()) };
  const server = new MetricsServer({ logger: recordingLogger().logger, metrics: source, readiness }, { endpoint: { address: '127.0.0.1', port: 0, family: 4 } });
  await server.start();
  servers.push(server);
  return { server, port: server.port, readiness };
}

describe('metrics server', () => {
  it('GET /metrics: 200, the Prometheus text content type, the report as metrics', async () => {
    const { port } = await serve();
    const r = await call(port, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const e = parseExposition(r.body);
    expect(e.problems).toEqual([]);
    expect(valueOf(e, 'weft_peer_sent_bytes_total', { nickname: 'n2' })).toBe(5000);
  });

  it.each<[string, string, number, string | RegExp]>([
    ['GET', '/healthz', 200, 'ok\n'],
    ['GET', '/readyz', 200, 'ok\n'],
    ['GET', '/metrics?name[]=x', 200, /weft_build_info/],
    ['GET', '/', 404, 'not found: / (try /metrics, /healthz or /readyz)\n'],
    ['GET', '/metricsx', 404, /not found/],
    ['PUT', '/elsewhere', 404, /not found/],
    ['POST', '/metrics', 405, 'method POST not allowed on /metrics (GET or HEAD)\n'],
    ['DELETE', '/readyz', 405, /not allowed/],
    ['OPTIONS', '/healthz', 405, /not allowed/],
  ])('%s %s → %d', async (method, path, status, body) => {
    const { port } = await serve();
    const r = await call(port, method, path);
    expect(r.status).toBe(status);
    if (typeof body === 'string') expect(r.body).toBe(body);
    else expect(r.body).toMatch(body);
    if (status === 405) expect(r.headers.allow).toBe('GET, HEAD');
  });

  it.each([['/metrics'], ['/healthz'], ['/readyz']])('HEAD %s: the same status and length as GET, no body', async (path) => {
    const { port } = await serve();
    const get = await call(port, 'GET', path);
    const head = await call(port, 'HEAD', path);
    expect(head.status).toBe(get.status);
    expect(head.body).toBe('');
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    // /metrics is collected again for the HEAD; the report is the same, so is the length.
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(get.body)));
  });

  it('/readyz: 503 with every failing check\'s reason, in order, until they pass; a throwing check fails with its error', async () => {
    const readiness = new Readiness();
    let ipam: string | undefined = 'waiting for 1 more peer (--ipam-init-peers 2)';
    readiness.add('router', () => undefined);
    readiness.add('ipam', () => ipam);
    readiness.add('kubernetes', () => {
      throw new Error('no API client');
    });
    const { port } = await serve(undefined, readiness);
    const a = await call(port, 'GET', '/readyz');
    expect(a.status).toBe(503);
    expect(a.body).toBe('not ready:\n- ipam: waiting for 1 more peer (--ipam-init-peers 2)\n- kubernetes: the check failed: no API client\n');
    readiness.add('kubernetes', () => undefined);
    expect((await call(port, 'GET', '/readyz')).body).toBe('not ready:\n- ipam: waiting for 1 more peer (--ipam-init-peers 2)\n');
    ipam = undefined;
    expect(await call(port, 'GET', '/readyz')).toMatchObject({ status: 200, body: 'ok\n' });
    // /healthz never depends on readiness.
    ipam = 'again';
    expect((await call(port, 'GET', '/healthz')).status).toBe(200);
  });

  it('a scrape that fails answers 500 with the error, and the next one works', async () => {
    let fail = true;
    const source: MetricsSource = {
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      scrape: async () => {
        if (fail) throw new WeftError('ERR_NFT', 'cannot read the nftables counters');
        return 'weft_x 1\n';
      },
    };
    const { port } = await serve(source);
    const r = await call(port, 'GET', '/metrics');
    expect(r).toMatchObject({ status: 500, body: 'cannot collect metrics: cannot read the nftables counters [ERR_NFT]\n' });
    fail = false;
    expect(await call(port, 'GET', '/metrics')).toMatchObject({ status: 200, body: 'weft_x 1\n' });
  });

  it.each([
    ['garbage', 'this is not HTTP\r\n\r\n'],
    ['a bad method token', 'GE T /metrics HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a header without a colon', 'GET /metrics HTTP/1.1\r\nHost x\r\n\r\n'],
    ['a huge header', `GET /metrics HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`],
  ])('%s: 400, and the server goes on', async (_, bytes) => {
    const { port } = await serve();
    expect(await raw(port, bytes)).toMatch(/^HTTP\/1\.1 (400|431) /);
    expect((await call(port, 'GET', '/healthz')).status).toBe(200);
  });

  it('a port in use: a start error naming the flag, the address and why', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const s = new MetricsServer({ logger: recordingLogger().logger, metrics: { contentType: 'text/plain', scrape: async () => '' }, readiness: new Readiness() }, { endpoint: { address: '127.0.0.1', port, family: 4 } });
      const err = await s.start().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(WeftError);
      expect((err as WeftError).code).toBe('ERR_METRICS_LISTEN');
      expect((err as WeftError).message).toBe(`--metrics-addr 127.0.0.1:${port}: cannot listen: the address is in use (another router, or another program, listens there)`);
    } finally {
      blocker.close();
    }
  });

  it('after stop nothing listens', async () => {
    const { server, port } = await serve();
    await server.stop();
    await expect(call(port, 'GET', '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
