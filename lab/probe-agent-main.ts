/**
 * A probe agent run in a lab pod (one process per pod, `ip netns exec`): it serves TCP and UDP on
 * the ports given, answering each connection or datagram with the pod's name, an echo server
 * for long-lived connections, and takes probe requests from the test over a Unix socket (the
 * filesystem is shared across network namespaces, so the test in the host namespace reaches it):
 *
 *   node dist/lab/probe-agent-main.js --name x/a --control SOCKET --tcp 80,81 --udp 80,81 [--echo 7000]
 *
 * Control: one JSON request per line, one JSON answer per line, on any number of connections.
 *   {"op":"probe","host":"10.40.1.2","port":80,"proto":"tcp","timeoutMs":1500}
 *     → {"verdict":"allowed","peer":"x/b"} | {"verdict":"dropped"} | {"verdict":"refused"} | {"verdict":"error","error":"..."}
 *   {"op":"hold","id":"h1","host":...,"port":7000,"timeoutMs":1500} → {"ok":true} (a connection kept open)
 *   {"op":"echo","id":"h1","timeoutMs":1500} → {"ok":true} when a line sent over it came back
 *   {"op":"release","id":"h1"} → {"ok":true}
 * Prints "ready" on stderr once every server listens.
 *
 * A TCP probe is allowed when the connection opens and the server's name arrives; refused on
 * ECONNREFUSED (a RST: what a REJECT or a closed port gives); dropped when nothing came back
 * before the timeout. A UDP probe sends a datagram every 200 ms until an answer (allowed), an
 * ICMP port unreachable (refused, seen on the connected socket) or the timeout (dropped).
 */
import { createServer as createTcpServer, connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { createServer as createUnixServer } from 'node:net';
import { rmSync } from 'node:fs';

type ProbeVerdict = 'allowed' | 'dropped' | 'refused' | 'error';

interface Args {
  name: string;
  control: string;
  tcp: number[];
  udp: number[];
  echo: number | undefined;
}

function parseArgs(argv: string[]): Args {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) m.set(argv[i]!.replace(/^--/, ''), argv[i + 1] ?? '');
  const ports = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split(',').map(Number));
  const name = m.get('name');
  const control = m.get('control');
  if (name === undefined || control === undefined) {
    process.stderr.write('usage: probe-agent --name NAME --control SOCKET [--tcp P,P] [--udp P,P] [--echo P]\n');
    process.exit(2);
  }
  const echo = m.get('echo');
  return { name, control, tcp: ports(m.get('tcp')), udp: ports(m.get('udp')), echo: echo === undefined ? undefined : Number(echo) };
}

function listenTcp(port: number, onConn: (s: Socket) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createTcpServer(onConn);
    srv.once('error', reject);
    srv.listen({ host: '::', port, ipv6Only: false }, () => resolve());
  });
}

function listenUdp(port: number, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp6', ipv6Only: false });
    s.once('error', reject);
    s.on('message', (_m, r) => s.send(name, r.port, r.address));
    s.bind(port, '::', () => resolve());
  });
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<{ verdict: ProbeVerdict; peer?: string; error?: string }> {
  return new Promise((resolve) => {
    let got = '';
    let done = false;
    const s = connect({ host, port });
    const finish = (r: { verdict: ProbeVerdict; peer?: string; error?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish(got === '' ? { verdict: 'dropped' } : { verdict: 'error', error: `partial answer ${JSON.stringify(got)}` }), timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) finish({ verdict: 'allowed', peer: got.trim() });
    });
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? { verdict: 'refused' } : { verdict: 'error', error: `${e.code ?? ''} ${e.message}` }));
    s.on('end', () => finish(got === '' ? { verdict: 'error', error: 'closed without an answer' } : { verdict: 'allowed', peer: got.trim() }));
  });
}

function probeUdp(host: string, port: number, timeoutMs: number): Promise<{ verdict: ProbeVerdict; peer?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    let interval: NodeJS.Timeout | undefined;
    const finish = (r: { verdict: ProbeVerdict; peer?: string; error?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (interval !== undefined) clearInterval(interval);
      s.close();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ verdict: 'dropped' }), timeoutMs);
    s.on('message', (m) => finish({ verdict: 'allowed', peer: m.toString('utf8').trim() }));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? { verdict: 'refused' } : { verdict: 'error', error: `${e.code ?? ''} ${e.message}` }));
    // A source port of its own per probe: an allowed earlier probe's conntrack entry (UDP stays
    // "established" for 30 s or more) must not carry a later probe past a policy that denies it.
    s.bind(nextUdpPort(), () => s.connect(port, host, () => {
      const send = () => s.send('probe', (e) => {
        if (e !== null && e !== undefined) finish((e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? { verdict: 'refused' } : { verdict: 'error', error: e.message });
      });
      send();
      interval = setInterval(send, 200);
    }));
  });
}

/** UDP probes' source ports: 20,000 in turn from a random start, so no two probes within a run share one. */
const UDP_PORTS = { first: 40_000, count: 20_000 };
let udpTurn = Math.floor(Math.random() * UDP_PORTS.count);
function nextUdpPort(): number {
  udpTurn = (udpTurn + 1) % UDP_PORTS.count;
  return UDP_PORTS.first + udpTurn;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const held = new Map<string, { socket: Socket; buffer: string; waiter: (() => void) | undefined }>();
  for (const port of a.tcp) await listenTcp(port, (s) => { s.on('error', () => undefined); s.end(`${a.name}\n`); });
  for (const port of a.udp) await listenUdp(port, `${a.name}\n`);
  if (a.echo !== undefined) await listenTcp(a.echo, (s) => { s.on('error', () => undefined); s.pipe(s); });

  const handle = async (req: Record<string, unknown>): Promise<unknown> => {
    const timeoutMs = typeof req['timeoutMs'] === 'number' ? req['timeoutMs'] : 1500;
    const id = String(req['id'] ?? '');
    switch (req['op']) {
      case 'probe':
        return req['proto'] === 'udp' ? probeUdp(String(req['host']), Number(req['port']), timeoutMs) : probeTcp(String(req['host']), Number(req['port']), timeoutMs);
      case 'hold':
        return new Promise((resolve) => {
          const socket = connect({ host: String(req['host']), port: Number(req['port']) });
          const timer = setTimeout(() => { socket.destroy(); resolve({ ok: false, error: 'connect timed out' }); }, timeoutMs);
          socket.setEncoding('utf8');
          socket.once('connect', () => {
            clearTimeout(timer);
            const h = { socket, buffer: '', waiter: undefined as (() => void) | undefined };
            socket.on('data', (d: string) => { h.buffer += d; h.waiter?.(); });
            held.set(id, h);
            resolve({ ok: true });
          });
          socket.on('error', (e) => { clearTimeout(timer); resolve({ ok: false, error: e.message }); });
        });
      case 'echo': {
        const h = held.get(id);
        if (h === undefined || h.socket.destroyed) return { ok: false, error: `no open connection ${id}` };
        const token = `echo-${Date.now()}-${Math.random()}\n`;
        h.buffer = '';
        return new Promise((resolve) => {
          const timer = setTimeout(() => { h.waiter = undefined; resolve({ ok: false, error: `no echo within ${timeoutMs} ms` }); }, timeoutMs);
          h.waiter = () => {
            if (!h.buffer.includes(token)) return;
            clearTimeout(timer);
            h.waiter = undefined;
            resolve({ ok: true });
          };
          h.socket.write(token);
        });
      }
      case 'release':
        held.get(id)?.socket.destroy();
        held.delete(id);
        return { ok: true };
      default:
        return { verdict: 'error', error: `unknown op ${String(req['op'])}` };
    }
  };

  rmSync(a.control, { force: true });
  const control = createUnixServer((c) => {
    c.setEncoding('utf8');
    let buf = '';
    c.on('error', () => undefined);
    c.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: Record<string, unknown>;
        try {
          req = JSON.parse(line) as Record<string, unknown>;
        } catch {
          c.write(`${JSON.stringify({ verdict: 'error', error: 'not JSON' })}\n`);
          continue;
        }
        void handle(req).then((r) => c.write(`${JSON.stringify({ ...(r as object), seq: req['seq'] })}\n`));
      }
    });
  });
  await new Promise<void>((resolve) => control.listen(a.control, () => resolve()));
  process.on('SIGTERM', () => {
    control.close();
    rmSync(a.control, { force: true });
    process.exit(0);
  });
  process.stderr.write('ready\n');
}

void main().catch((err: unknown) => {
  process.stderr.write(`probe-agent: ${String(err)}\n`);
  process.exit(1);
});
