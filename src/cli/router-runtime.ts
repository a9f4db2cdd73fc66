/**
 * The runtime a router runs under: V8 and malloc settings that keep its memory small, applied by
 * running `weft launch` again in place (same PID, through the addon's execve) when the process was
 * started without them, whichever way it was started (`weft`, `node …/main.js`, systemd, a
 * container's command). Measured with bench/sleeve-probe.ts under one TCP stream (2026-12-04): a
 * router's RSS 82–89 MB without them, 71–73 MB with them, no change in throughput.
 *
 * - `--max-semi-space-size=1`: V8's young generation grows to 16 MB semi-spaces by default when
 *   traffic makes garbage; 1 MB keeps it at a few MB for more frequent (cheap) scavenges.
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread (libuv's pool, V8's workers) its own malloc arena.
 * - `MALLOC_TRIM_THRESHOLD_=131072`: glibc's own default, fixed. `MALLOC_MMAP_THRESHOLD_=32768`:
 *   blocks of 32 KiB and more are mapped on their own and unmapped when freed. Left unset, glibc
 *   raises both each time a large block it had mapped is freed (up to 32 MB and 64 MB), after
 *   which what V8's optimising compiler frees on its worker threads under load stays with the
 *   process. Fixed at glibc's defaults (128 KiB), a router's peak under one TCP stream was 2–3 MB
 *   lower (67–70 MB against 70–72, 2 A/B pairs, 2026-12-04). At 32 KiB the compiler's zone
 *   blocks (32 KiB each, several MB a second while it optimises the data path, perf on malloc)
 *   go back to the kernel as each compilation ends instead of waiting, between blocks that stay,
 *   for the next trim (src/daemon/memory-trim.ts): the largest RSS of the busier router under one
 *   TCP stream 66.8–67.7 MB against 68.2–69.9 (sleeve-probe, 3 runs each; 16 KiB: 67.1, not
 *   better). Nothing on the data path allocates that much per packet.
 *
 * An operator who sets any of these in NODE_OPTIONS, on node's command line or in the environment
 * keeps their own value (their setting wins); the others are still applied, and when none is
 * missing nothing is re-run. `WEFT_RUNTIME=off` turns this off; `WEFT_RUNTIME=set` marks the
 * re-run image so it never loops.
 */
import { loadNative } from '../platform/linux/native.js';

export const ROUTER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
export const ROUTER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072', MALLOC_MMAP_THRESHOLD_: '32768' };
const MARK = 'WEFT_RUNTIME';

export interface ProcessView {
  execPath: string;
  /** Node's own flags (process.execArgv). */
  execArgv: readonly string[];
  /** process.argv: node, the script, then its arguments. */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

export interface Reexec {
  path: string;
  argv: string[];
  env: string[];
}

function flagName(flag: string): string {
  return flag.split('=')[0]!.replace(/_/g, '-');
}

/** What to run instead of this process, or undefined to go on as it is (see the file comment). */
export function routerReexec(p: ProcessView): Reexec | undefined {
  const mark = p.env[MARK];
  if (mark === 'set' || mark === 'off') return undefined;
  const given = [...p.execArgv, ...(p.env['NODE_OPTIONS'] ?? '').split(/\s+/)].map(flagName);
  const flags = ROUTER_NODE_FLAGS.filter((f) => !given.includes(flagName(f)));
  const missing = Object.entries(ROUTER_ENV).filter(([k]) => p.env[k] === undefined);
  if (flags.length === 0 && missing.length === 0) return undefined;
  const env = { ...p.env, ...Object.fromEntries(missing), [MARK]: 'set' };
  return {
    path: p.execPath,
    argv: [p.execPath, ...p.execArgv, ...flags, ...p.argv.slice(1)],
    env: Object.entries(env)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => `${k}=${v}`),
  };
}

/**
 * Runs this router again under its runtime settings when it lacks them; returns when it has them,
 * was told not to, or the exec failed (logged by the caller through `onFailure`: the router then
 * runs as it is, with more memory, rather than not at all).
 */
export function applyRouterRuntime(onFailure: (err: unknown) => void): void {
  const r = routerReexec({ execPath: process.execPath, execArgv: process.execArgv, argv: process.argv, env: process.env });
  if (r === undefined) return;
  try {
    loadNative().execve(r.path, r.argv, r.env);
  } catch (err) {
    onFailure(err);
  }
}
