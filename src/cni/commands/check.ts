/**
 * CHECK: the attachment still looks like prevResult says: the container interface exists in the
 * netns with its MTU, is up and holds the addresses; the routes of the result are there on it; the
 * host end is on the bridge; the router still holds the allocation. Every difference is named in
 * one error. prevResult may be of either shape weft has written (bridge, host veth, container
 * interface; or host veth, container interface): the container interface is the one named
 * CNI_IFNAME with a sandbox.
 */
import { CniCode, CniError } from '../errors.js';
import { containerInterfaceIndex, parsePrevResult } from '../result.js';
import type { CommandContext } from '../skel.js';
import { hostVethName, LinkError } from '../veth.js';
import { refuseOwnNetns, routerError } from './shared.js';

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export async function cmdCheck(ctx: CommandContext): Promise<void> {
  const { containerId, ifName, netns, conf } = ctx;
  if (conf.prevResult === undefined) throw new CniError(CniCode.InvalidNetworkConfig, 'prevResult is missing: CHECK needs the result of ADD');
  refuseOwnNetns(ctx);
  const prev = parsePrevResult(conf.prevResult);
  const interfaces = prev.interfaces ?? [];
  const mine = containerInterfaceIndex(prev, ifName);
  if (mine < 0) throw new CniError(CniCode.InvalidNetworkConfig, `prevResult.interfaces has no ${ifName} with a sandbox`);
  const expectedAddrs = (prev.ips ?? []).filter((ip) => ip.interface === mine).map((ip) => ip.address);

  let seen;
  try {
    seen = await ctx.deps.links.inspect(netns, ifName);
  } catch (err) {
    if (err instanceof LinkError && err.kind === 'netns') throw new CniError(CniCode.UnknownContainer, `network namespace ${netns} is gone: ${err.message}`, { cause: err });
    throw new CniError(CniCode.InterfaceFailure, (err as Error).message, { cause: err });
  }
  if (seen === undefined) throw new CniError(CniCode.UnknownContainer, `interface ${ifName} does not exist in ${netns}`);

  const diffs: string[] = [];
  const net = await ctx.deps.daemon(conf.socket).network().catch((err: unknown) => {
    throw routerError(err, 'reading the pod network');
  });
  const mtu = conf.mtu ?? net.mtu;
  if (seen.link.mtu !== mtu) diffs.push(`${ifName} has MTU ${seen.link.mtu}, expected ${mtu}`);
  if (!seen.link.up) diffs.push(`${ifName} is down`);
  const want = interfaces[mine]?.mac;
  if (want !== undefined && want.toLowerCase() !== seen.link.mac.toLowerCase()) diffs.push(`${ifName} has MAC ${seen.link.mac}, prevResult says ${want}`);
  for (const a of expectedAddrs) if (!seen.link.addresses.some((x) => sameAddress(x, a))) diffs.push(`${ifName} lacks address ${a}`);
  for (const r of prev.routes ?? []) {
    const on = (x: { dev?: string }): boolean => x.dev === undefined || x.dev === ifName;
    if (!seen.routes.some((x) => x.dst === r.dst && on(x) && (r.gw === undefined || (x.gw !== undefined && sameAddress(x.gw, r.gw))))) {
      diffs.push(`route ${r.dst}${r.gw === undefined ? '' : ` via ${r.gw}`} on ${ifName} is missing in ${netns}`);
    }
  }
  const hostName = hostVethName(containerId, ifName);
  const host = await ctx.deps.links.hostLink(hostName);
  if (host === undefined) diffs.push(`host end ${hostName} does not exist`);
  else {
    if (host.master !== net.bridge) diffs.push(`host end ${hostName} is on ${host.master ?? 'no bridge'}, not ${net.bridge}`);
    if (!host.up) diffs.push(`host end ${hostName} is down`);
  }
  const allocations = await ctx.deps.daemon(conf.socket).allocations().catch((err: unknown) => {
    throw routerError(err, 'listing allocations');
  });
  const held = allocations.find((a) => a.containerId === containerId && a.ifName === ifName);
  if (held === undefined) diffs.push(`the router holds no allocation for ${containerId}/${ifName}`);
  else {
    for (const a of expectedAddrs) {
      const bare = a.split('/')[0] ?? a;
      if (!held.addresses.some((x) => sameAddress(x.split('/')[0] ?? x, bare))) diffs.push(`the router does not hold ${bare} for ${containerId}/${ifName}`);
    }
  }
  if (diffs.length > 0) throw new CniError(CniCode.CheckMismatch, `CHECK ${containerId}/${ifName}: ${diffs.join('; ')}`);
}
