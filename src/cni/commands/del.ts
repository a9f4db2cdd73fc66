/**
 * DEL: idempotent and independent of prevResult and of the netns (which may be gone): delete the
 * host end by its derived name (the container end goes with it), then release the allocation and
 * have the router drop the port's anti-spoofing rules. When the router cannot take the release
 * now, it is journaled for the daemon to replay and DEL still succeeds, so nothing leaks and the
 * runtime is never stuck (a router that missed the DEL drops the rules of a port that left the
 * bridge by itself).
 */
import { isTransient } from '../../api/errors.js';
import type { CommandContext } from '../skel.js';
import { hostVethName } from '../veth.js';
import { linkError, releaseOrJournal } from './shared.js';

export async function cmdDel(ctx: CommandContext): Promise<void> {
  const hostName = hostVethName(ctx.containerId, ctx.ifName);
  // The interface goes first: an address is never handed out again while still configured here.
  await ctx.deps.links.removeHost(hostName).catch((err: unknown) => {
    throw linkError(err, ctx);
  });
  const unguard = ctx.deps
    .daemon(ctx.conf.socket)
    .detach(ctx.containerId, ctx.ifName)
    .catch((err: unknown) => {
      if (!isTransient(err)) ctx.log(`DEL: the router kept the rules of ${hostName} (${(err as Error).message}); it drops them once it sees the port gone`);
    });
  await Promise.all([unguard, releaseOrJournal(ctx, 'DEL')]);
}
