/**
 * STATUS (spec 1.1.0): success (no output) when the router is ready to give a new pod an address;
 * code 50 with the reason otherwise: the router is unreachable or does not answer within the
 * STATUS time limit (src/cni/limits.ts), is not ready, or its pool is exhausted.
 */
import { RouterTimeoutError } from '../client.js';
import { CniCode, CniError } from '../errors.js';
import type { CommandContext } from '../skel.js';

export async function cmdStatus(ctx: CommandContext): Promise<void> {
  const socket = ctx.conf.socket;
  let net;
  try {
    net = await ctx.deps.daemon(socket).network();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    const why =
      err instanceof RouterTimeoutError ? `router on ${socket} did not answer in time` : code === 'ERR_API_UNREACHABLE' ? `router not reachable on ${socket}` : `router on ${socket} answered badly`;
    throw new CniError(CniCode.NotAvailable, `${why}: ${(err as Error).message}`, { cause: err });
  }
  if (!net.ready) throw new CniError(CniCode.NotAvailable, `router not ready to allocate pod addresses: ${net.reason ?? 'no reason given'}`);
  if (net.exhausted !== undefined) throw new CniError(CniCode.NotAvailable, `pod address pool exhausted: ${net.exhausted}`);
}
