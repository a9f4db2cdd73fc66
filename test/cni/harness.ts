/** Runs the plugin in-process with injected env/stdin/stdout, a FakeLinks and a real ReleaseJournal. */
import { ReleaseJournal } from '../../src/api/release-journal.js';
import { DaemonClient } from '../../src/cni/client.js';
import { handlers } from '../../src/cni/commands/index.js';
import { runPlugin } from '../../src/cni/skel.js';
import type { FakeLinks } from './fake-links.js';

export interface Invocation {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed (undefined when empty). */
  json: Record<string, unknown> | undefined;
}

export function invoke(links: FakeLinks, env: Record<string, string | undefined>, stdin: unknown): Promise<Invocation> {
  return invokeIo(links, env, stdin);
}

/** As invoke, with stdin that could not be read (`stdinError`) when given. */
export async function invokeIo(links: FakeLinks, env: Record<string, string | undefined>, stdin: unknown, stdinError?: Error): Promise<Invocation> {
  let stdout = '';
  let stderr = '';
  const code = await runPlugin(
    {
      env,
      stdin: typeof stdin === 'string' ? stdin : JSON.stringify(stdin),
      ...(stdinError === undefined ? {} : { stdinError }),
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
    },
    handlers,
    { links, daemon: (socket) => new DaemonClient({ socket, timeoutMs: 2000 }), journal: (dir) => new ReleaseJournal(dir) },
  );
  return { code, stdout, stderr, json: stdout.trim() === '' ? undefined : (JSON.parse(stdout) as Record<string, unknown>) };
}
