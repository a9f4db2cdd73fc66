/**
 * Runs the fake API server as a process (in a lab namespace):
 *   node dist/lab/kube-api-main.js --listen ADDR:PORT --control SOCKET [--token T] [--bookmark-ms N] [--history-limit N]
 * Prints one JSON line `{"url": ..., "control": ...}` on stdout once both listen; SIGTERM stops it.
 */
import { rmSync } from 'node:fs';
import { FakeKubeApi } from './kube-api.js';
import { serveKubeApiControl } from './kube-api-control.js';

function usage(problem: string): never {
  process.stderr.write(`kube-api-main: ${problem}\nusage: kube-api-main --listen ADDR:PORT --control SOCKET [--token T] [--bookmark-ms N] [--history-limit N]\n`);
  process.exit(2);
}

const args = new Map<string, string>();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const flag = argv[i]!;
  const value = argv[i + 1];
  if (!flag.startsWith('--') || value === undefined) usage(`bad argument ${flag}`);
  args.set(flag.slice(2), value);
}
const listen = args.get('listen') ?? usage('--listen is required');
const control = args.get('control') ?? usage('--control is required');
const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen) ?? usage(`--listen ${listen}: ADDR:PORT expected`);
const num = (name: string): number | undefined => {
  const v = args.get(name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) usage(`--${name} ${v}: a whole number expected`);
  return Number(v);
};
const token = args.get('token');
const bookmarkMs = num('bookmark-ms');
const historyLimit = num('history-limit');
const api = await FakeKubeApi.start({
  host: m[1]!,
  port: Number(m[2]),
  ...(token === undefined ? {} : { token }),
  ...(bookmarkMs === undefined ? {} : { bookmarkMs }),
  ...(historyLimit === undefined ? {} : { historyLimit }),
});
const server = await serveKubeApiControl(api, control);
process.stdout.write(`${JSON.stringify({ url: api.url, control })}\n`);
const shutdown = (): void => {
  server.close();
  rmSync(control, { force: true });
  void api.stop().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
