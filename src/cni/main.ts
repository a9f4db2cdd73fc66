/**
 * The plugin's entry, executed by the container runtime (through the wrapper `install` writes).
 * It loads only cni/ and small parts of src/core and src/platform (never the router, gossip or
 * Kubernetes code), so it starts fast; it needs nothing from PATH.
 */
import { ReleaseJournal } from '../api/release-journal.js';
import { DaemonClient } from './client.js';
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
    daemon: (socket) => new DaemonClient({ socket }),
    journal: (dir) => new ReleaseJournal(dir),
  },
);
