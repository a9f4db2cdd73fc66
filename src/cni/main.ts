/**
 * The plugin's entry, executed by the container runtime (through the wrapper `install` writes).
 * It loads only cni/ and small parts of src/core and src/platform (never the router, gossip or
 * Kubernetes code), so it starts fast; it needs nothing from PATH.
 */
import { fstatSync, statSync } from 'node:fs';
import { ReleaseJournal } from '../api/release-journal.js';
import { DaemonClient, SilentRouter } from './client.js';
import { ROUTER_TIMEOUT_ENV } from './limits.js';
import { handlers } from './commands/index.js';
import { runPlugin } from './skel.js';
import { PodLinks } from './veth.js';

/**
 * All of stdin. Node replaces a closed fd 0 with /dev/null before any code runs, so "closed" is
 * recognised as /dev/null: a runtime hands the config through a pipe (or a file), never /dev/null.
 */
async function readStdin(): Promise<{ text: string } | { error: Error }> {
  try {
    const st = fstatSync(0);
    if (st.isCharacterDevice()) {
      const devNull = statSync('/dev/null');
      if (st.rdev === devNull.rdev) return { error: new Error('stdin is closed (or /dev/null)') };
    }
    if (st.isDirectory()) return { error: new Error('stdin is a directory (EISDIR)') };
    if (process.stdin.isTTY) return { text: '' };
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return { text: Buffer.concat(chunks).toString('utf8') };
  } catch (err) {
    return { error: err instanceof Error ? err : new Error(String(err)) };
  }
}

const input = await readStdin();
process.exitCode = await runPlugin(
  { env: process.env, stdin: 'text' in input ? input.text : '', ...('error' in input ? { stdinError: input.error } : {}), stdout: process.stdout, stderr: process.stderr },
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
