/**
 * A plain UDP tool for checking the NAT lab itself (no weft): run in a lab namespace with
 * `ip netns exec`, it binds one socket, sends "hello" to each target, answers every datagram it
 * gets with the source it saw ("seen <address> <port>") when asked to echo, and prints one JSON
 * line per datagram received, then exits after --wait ms (0: runs until killed):
 *
 *   node dist/lab/nat-probe-main.js --bind 0.0.0.0:40001 [--to 198.18.0.1:7000 ...] [--echo] [--wait 1500]
 *     → {"from":"198.18.0.201","port":40001,"text":"hello"}
 *
 * Prints {"ready":true} first, once the socket is bound.
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';

interface Args {
  bind: { address: string; port: number };
  to: { address: string; port: number }[];
  echo: boolean;
  waitMs: number;
}

function endpoint(s: string): { address: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || isIP(m[1]!) === 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`"${s}" is not an endpoint (address:port or [v6]:port)`);
  }
  return { address: m[1]!, port };
}

function parseArgs(argv: string[]): Args {
  const out: Args = { bind: { address: '0.0.0.0', port: 0 }, to: [], echo: false, waitMs: 1500 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--echo') out.echo = true;
    else if (a === '--bind') out.bind = endpoint(argv[++i] ?? '');
    else if (a === '--to') out.to.push(endpoint(argv[++i] ?? ''));
    else if (a === '--wait') out.waitMs = Number(argv[++i]);
    else throw new Error(`unknown argument "${a}"`);
  }
  if (!Number.isInteger(out.waitMs) || out.waitMs < 0) throw new Error('--wait must be a whole number of ms');
  return out;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const v6 = isIP(args.bind.address) === 6;
  const sock = createSocket({ type: v6 ? 'udp6' : 'udp4' });
  // A dual-stack socket sees IPv4 sources as ::ffff:a.b.c.d; reported as a.b.c.d.
  const plain = (a: string) => a.replace(/^::ffff:(?=\d+\.)/, '');
  sock.on('message', (msg, rinfo) => {
    const from = plain(rinfo.address);
    process.stdout.write(`${JSON.stringify({ from, port: rinfo.port, text: msg.toString('utf8').slice(0, 200) })}\n`);
    if (args.echo) sock.send(`seen ${from} ${rinfo.port}`, rinfo.port, rinfo.address);
  });
  sock.on('error', (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  });
  sock.bind(args.bind.port, args.bind.address, () => {
    process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
    for (const t of args.to) sock.send('hello', t.port, v6 && isIP(t.address) === 4 ? `::ffff:${t.address}` : t.address);
    if (args.waitMs > 0) setTimeout(() => sock.close(), args.waitMs);
  });
}

main();
