/**
 * DEL: idempotent and independent of prevResult and of the netns (which may be gone): delete the
 * host end by its derived name (the container end goes with it), then release the allocation.
 * When the router cannot take the release now, it is journaled for the daemon to replay and DEL
 * still succeeds, so nothing leaks and the runtime is never stuck.
 */
import type { CommandContext } from '../skel.js';
import { hostVethName } from '../veth.js';
import { linkError, releaseOrJournal } from './shared.js';

export async function cmdDel(ctx: CommandContext): Promise<void> {
  const hostName = hostVethName(ctx.containerId, ctx.ifName);
  // The interface goes first: an address is never handed out again while still configured here.
  await ctx.deps.links.removeHost(hostName).catch((err: unknown) => {
    throw linkError(err, ctx);
  });
  await releaseOrJournal(ctx, 'DEL');
}
