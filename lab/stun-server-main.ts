/**
 * A tiny STUN server for the lab (RFC 8489, Binding only; no authentication, no other methods):
 * each Binding request is answered with a Binding success response carrying the transaction id
 * and XOR-MAPPED-ADDRESS of the source the request came from. Anything else is ignored.
 *
 *   node dist/lab/stun-server-main.js --listen 198.18.0.1:3478
 *
 * Prints {"ready":true,"listen":"..."} once bound, then one JSON line per answer
 * ({"answered":"198.18.0.201:6784"}).
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';

const COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;

function listenArg(argv: string[]): { address: string; port: number } {
  if (argv.length !== 2 || argv[0] !== '--listen') throw new Error('usage: stun-server-main --listen addr:port');
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(argv[1]!);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || isIP(m[1]!) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`"${argv[1]}" is not addr:port`);
  return { address: m[1]!, port };
}

/** The 16 bytes of an IPv6 address (text, possibly with "::"). */
function v6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head === '' || head === undefined ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...new Array<string>(tail === undefined ? 0 : 8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

/** A Binding success response to `req` (a checked request) for a source at `address`:`port`. */
function answer(req: Buffer, address: string, port: number): Buffer {
  const v4 = isIP(address) === 4;
  const alen = v4 ? 8 : 20;
  const out = Buffer.alloc(20 + 4 + alen);
  out.writeUInt16BE(BINDING_SUCCESS, 0);
  out.writeUInt16BE(4 + alen, 2);
  out.writeUInt32BE(COOKIE, 4);
  req.copy(out, 8, 8, 20);
  out.writeUInt16BE(XOR_MAPPED_ADDRESS, 20);
  out.writeUInt16BE(alen, 22);
  out[24] = 0;
  out[25] = v4 ? 1 : 2;
  out.writeUInt16BE(port ^ (COOKIE >>> 16), 26);
  // XORed with the cookie (IPv4), or with the cookie then the transaction id (IPv6): bytes 4.. of the header.
  const raw = v4 ? Buffer.from(address.split('.').map(Number)) : v6Bytes(address);
  for (let i = 0; i < raw.length; i++) out[28 + i] = raw[i]! ^ out[4 + i]!;
  return out;
}

function main(): void {
  const listen = listenArg(process.argv.slice(2));
  const sock = createSocket({ type: isIP(listen.address) === 6 ? 'udp6' : 'udp4' });
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 20 || msg.readUInt16BE(0) !== BINDING_REQUEST || msg.readUInt32BE(4) !== COOKIE) return;
    const len = msg.readUInt16BE(2);
    if (len % 4 !== 0 || 20 + len > msg.length) return;
    const address = rinfo.address.replace(/^::ffff:(?=\d+\.)/, '');
    sock.send(answer(msg, address, rinfo.port), rinfo.port, rinfo.address);
    process.stdout.write(`${JSON.stringify({ answered: isIP(address) === 6 ? `[${address}]:${rinfo.port}` : `${address}:${rinfo.port}` })}\n`);
  });
  sock.on('error', (err) => {
    process.stderr.write(`stun server: ${err.message}\n`);
    process.exit(1);
  });
  sock.bind(listen.port, listen.address, () => process.stdout.write(`${JSON.stringify({ ready: true, listen: `${listen.address}:${listen.port}` })}\n`));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => sock.close(() => process.exit(0)));
}

main();
