/**
 * GC (spec 1.1.0): releases the allocations, and deletes the host veths, of this network's
 * attachments that the runtime no longer lists in `cni.dev/valid-attachments`.
 *
 * Its scope: only allocations an ADD of this network (the config's `name`) made. Another
 * network's attachments on the same router, reservations made by hand (`weft ipam allocate`) and
 * the router's own (container id `weft:...`) are never touched. The release is conditional
 * (IpamReleaseRequest `network`, `before`): the router leaves alone an allocation whose ADD is
 * still in progress, or made or confirmed less than `GC_GRACE_MS` before this GC started (that
 * ADD's answer may still be on its way to the runtime, whose list then lacks it; the next GC takes
 * it if it is stale), so a GC racing an ADD never takes the address of the pod that ADD made. A host end is deleted only for an allocation GC
 * actually released (a `vw*` port with no allocation may be another network's or an ADD in
 * flight: it is left to the DEL or next ADD of its attachment). Goes on past single failures and
 * reports them all at the end.
 */
import type { GrantedAttachment } from '../client.js';
import { CniCode, CniError } from '../errors.js';
import type { GcAttachment } from '../netconf.js';
import type { CommandContext } from '../skel.js';
import { hostVethName } from '../veth.js';
import { routerError } from './shared.js';

/** Allocations made or confirmed this shortly before a GC are left to the next one. */
export const GC_GRACE_MS = 5000;

function key(containerId: string, ifName: string): string {
  return `${containerId}\0${ifName}`;
}

/** The allocations GC of `network` asks the router to release: that network's, not a valid attachment. */
export function staleAllocations(allocations: readonly GrantedAttachment[], valid: readonly GcAttachment[], network: string): GrantedAttachment[] {
  const keep = new Set(valid.map((a) => key(a.containerID, a.ifname)));
  return allocations.filter((a) => a.network === network && !a.containerId.startsWith('weft:') && !keep.has(key(a.containerId, a.ifName)));
}

export async function cmdGc(ctx: CommandContext): Promise<void> {
  const valid = ctx.conf.validAttachments;
  const network = ctx.conf.name;
  // Anything allocated or confirmed since then may belong to an ADD the runtime's list does not show yet.
  const before = Date.now() - GC_GRACE_MS;
  const daemon = ctx.deps.daemon(ctx.conf.socket);
  const failures: string[] = [];
  const allocations = await daemon.allocations().catch((err: unknown) => {
    throw routerError(err, 'listing allocations');
  });
  for (const a of staleAllocations(allocations, valid, network)) {
    let released: string[];
    try {
      const r = await daemon.release(a.containerId, a.ifName, { network, before });
      released = r.released;
      for (const s of r.skipped) ctx.log(`GC left ${s.containerId}/${s.ifName} alone (${s.reason === 'adding' ? 'its ADD is in progress' : s.reason === 'newer' ? 'allocated or confirmed just before GC started' : 'another network'})`);
    } catch (err) {
      failures.push(`releasing ${a.containerId}/${a.ifName}: ${(err as Error).message}`);
      continue;
    }
    if (released.length === 0) continue;
    ctx.log(`GC released ${released.join(', ')} of ${a.containerId}/${a.ifName}`);
    const host = hostVethName(a.containerId, a.ifName);
    await ctx.deps.links.removeHost(host).catch((err: unknown) => failures.push(`deleting ${host}: ${(err as Error).message}`));
  }
  if (failures.length > 0) throw new CniError(CniCode.TryAgainLater, `GC left ${failures.length} stale resource(s): ${failures.join('; ')}`);
}
