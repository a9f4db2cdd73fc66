/**
 * How long each CNI command may take. The plugin binary (src/cni/shim/weft-cni.c, which has the
 * same numbers) gives the router `limitMs` from the moment it starts; the router gets a deadline
 * `ROUTER_MARGIN_MS` earlier (header `X-Weft-Deadline`, ms since the epoch), so that an ADD it cannot
 * finish is rolled back and answered (code 11) before the binary gives up. When the router does
 * not answer in time, the binary runs the Node plugin with `ROUTER_TIMEOUT_ENV` set: it never asks
 * the router again (DEL removes the host end and journals the release; ADD, CHECK and GC fail with
 * code 11; STATUS with 50).
 */
/** The CNI commands. */
export type Command = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

/** Per command, the binary's limit for the router's answer (ms). */
export const COMMAND_LIMIT_MS: Readonly<Record<Command, number>> = Object.freeze({
  ADD: 10_000,
  DEL: 5000,
  CHECK: 5000,
  STATUS: 3000,
  GC: 10_000,
  VERSION: 3000,
});

/** The router's deadline is this much before the binary's. */
export const ROUTER_MARGIN_MS = 1000;

/** Set (to the limit in seconds) by the binary when it gave up on the router. */
export const ROUTER_TIMEOUT_ENV = 'WEFT_CNI_ROUTER_TIMED_OUT';

/** The router's deadline for `command` started at `now` (ms since the epoch). */
export function routerDeadline(command: Command, now: number): number {
  return now + COMMAND_LIMIT_MS[command] - ROUTER_MARGIN_MS;
}

/** The deadline a call's X-Weft-Deadline header gives (undefined: none, or not a time). */
export function parseDeadlineHeader(v: unknown): number | undefined {
  if (typeof v !== 'string' || !/^\d{1,16}$/.test(v)) return undefined;
  return Number(v);
}
