/**
 * The plugin's entry, executed by the container runtime (through the wrapper `install` writes).
 * It loads only cni/ and small parts of src/core and src/platform (never the router, gossip or
 * Kubernetes code), so it starts fast; it needs nothing from PATH.
 */
import { fstatSync, statSync } from 'node:fs';
import { ReleaseJournal } from '../api/release-journal.js';
import { DaemonClient } from './client.js';
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
    daemon: (socket) => new DaemonClient({ socket }),
    journal: (dir) => new ReleaseJournal(dir),
  },
);
