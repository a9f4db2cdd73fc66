/**
 * The plugin's entry, executed by the container runtime (through the wrapper `install` writes).
 * It loads only cni/ and small parts of src/core and src/platform (never the router, gossip or
 * Kubernetes code), so it starts fast; it needs nothing from PATH.
 */
import { ReleaseJournal } from '../api/release-journal.js';
import { DaemonClient, SilentRouter } from './client.js';
import { ROUTER_TIMEOUT_ENV } from './limits.js';
import { handlers } from './commands/index.js';
import { runPlugin } from './skel.js';
import { PodLinks } from './veth.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const stdin = await readStdin().catch(() => '');
process.exitCode = await runPlugin(
  { env: process.env, stdin, stdout: process.stdout, stderr: process.stderr },
  handlers,
  {
    links: new PodLinks({ pathEnv: process.env.PATH }),
    // After the binary gave up waiting for the router, it is not asked again (limits.ts).
    daemon: (socket, deadline) => {
      const timedOut = process.env[ROUTER_TIMEOUT_ENV];
      return timedOut !== undefined && timedOut !== '' ? new SilentRouter(socket, timedOut) : new DaemonClient({ socket, ...(deadline === undefined ? {} : { deadline }) });
    },
    journal: (dir) => new ReleaseJournal(dir),
  },
);
