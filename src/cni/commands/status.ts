/** STATUS (spec 1.1.0): success (no output) when the router is ready to allocate, code 50 otherwise. */
import { CniCode, CniError } from '../errors.js';
import type { CommandContext } from '../skel.js';

export async function cmdStatus(ctx: CommandContext): Promise<void> {
  const socket = ctx.conf.socket;
  let net;
  try {
    net = await ctx.deps.daemon(socket).network();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    const why = code === 'ERR_API_UNREACHABLE' ? `router not reachable on ${socket}` : `router on ${socket} answered badly`;
    throw new CniError(CniCode.NotAvailable, `${why}: ${(err as Error).message}`, { cause: err });
  }
  if (!net.ready) throw new CniError(CniCode.NotAvailable, `router not ready to allocate pod addresses: ${net.reason ?? 'no reason given'}`);
}
