/**
 * GC (spec 1.1.0): releases the allocations, and deletes the host veths, of attachments the
 * runtime no longer lists in `cni.dev/valid-attachments`. The router's own allocations (container
 * id starting with `weft:`, e.g. the gateway) are never touched. Goes on past single failures and
 * reports them all at the end.
 */
import type { GrantedAttachment } from '../client.js';
import { CniCode, CniError } from '../errors.js';
import type { GcAttachment } from '../netconf.js';
import type { CommandContext } from '../skel.js';
import { hostVethName } from '../veth.js';
import { routerError } from './shared.js';

function key(containerId: string, ifName: string): string {
  return `${containerId}\0${ifName}`;
}

/** The allocations GC releases: not the router's own, not a valid attachment. */
export function staleAllocations(allocations: readonly GrantedAttachment[], valid: readonly GcAttachment[]): GrantedAttachment[] {
  const keep = new Set(valid.map((a) => key(a.containerID, a.ifname)));
  return allocations.filter((a) => !a.containerId.startsWith('weft:') && !keep.has(key(a.containerId, a.ifName)));
}

/** Host ends (by name) that no valid attachment derives. */
export function staleHostEnds(hostEnds: readonly string[], valid: readonly GcAttachment[]): string[] {
  const keep = new Set(valid.map((a) => hostVethName(a.containerID, a.ifname)));
  return hostEnds.filter((n) => !keep.has(n));
}

export async function cmdGc(ctx: CommandContext): Promise<void> {
  const valid = ctx.conf.validAttachments;
  if (valid === undefined) throw new CniError(CniCode.InvalidNetworkConfig, 'GC needs cni.dev/valid-attachments (the attachments to keep)');
  const daemon = ctx.deps.daemon(ctx.conf.socket);
  const failures: string[] = [];
  for (const name of staleHostEnds(await ctx.deps.links.hostEnds().catch(() => []), valid)) {
    await ctx.deps.links.removeHost(name).catch((err: unknown) => failures.push(`deleting ${name}: ${(err as Error).message}`));
  }
  const allocations = await daemon.allocations().catch((err: unknown) => {
    throw routerError(err, 'listing allocations');
  });
  for (const a of staleAllocations(allocations, valid)) {
    try {
      await daemon.release(a.containerId, a.ifName);
      ctx.log(`GC released ${a.addresses.join(', ')} of ${a.containerId}/${a.ifName}`);
    } catch (err) {
      failures.push(`releasing ${a.containerId}/${a.ifName}: ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) throw new CniError(CniCode.TryAgainLater, `GC left ${failures.length} stale resource(s): ${failures.join('; ')}`);
}
