/**
 * ADD: veth pair (host end on the bridge, hairpin, container end named CNI_IFNAME in the pod's
 * netns), addresses from weft IPAM, routes (a default route per family via the node's gateway on
 * the bridge unless the netns has one already or the config says otherwise, and the config's
 * `routes`), and the router's anti-spoofing rules for the host end (the pod's MAC and addresses;
 * until they are in, the router drops everything from the port). A second attachment in the same
 * netns (another CNI_IFNAME, as Multus adds) gets its own address and routes. The node's own
 * netns is refused before anything changes. Any failure undoes everything done so far (veth
 * deleted, allocation released, rules removed) before reporting.
 */
import { CniCode, CniError } from '../errors.js';
import { buildAddResult, type CniResult } from '../result.js';
import type { CommandContext } from '../skel.js';
import { hostVethName, LinkError, randomMac, type CreatedPair } from '../veth.js';
import { linkError, podIdentity, refuseOwnNetns, releaseOrJournal, routerError } from './shared.js';

export async function cmdAdd(ctx: CommandContext): Promise<CniResult> {
  const { containerId, ifName, netns, conf } = ctx;
  const daemon = ctx.deps.daemon(conf.socket);
  const links = ctx.deps.links;
  refuseOwnNetns(ctx);
  const pod = podIdentity(ctx.args);
  const net = await daemon.network().catch((err: unknown) => {
    throw routerError(err, 'reading the pod network');
  });
  if (!net.ready) throw new CniError(CniCode.TryAgainLater, `the weft router is not ready for pods: ${net.reason ?? 'no reason given'}`);
  const mtu = conf.mtu ?? net.mtu;
  const noGateway = (conf.routes ?? []).map((r, i) => ({ r, i })).filter(({ r }) => r.gw === undefined && !net.gateways.some((g) => g.family === (r.dst.includes(':') ? 6 : 4)));
  if (noGateway.length > 0) {
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      `invalid network configuration: ${noGateway.map(({ r, i }) => `routes[${i}].dst ${r.dst} has no gw and the weft network has no IPv${r.dst.includes(':') ? 6 : 4} gateway`).join('; ')}`,
    );
  }
  const hostName = hostVethName(containerId, ifName);

  let pair: CreatedPair | undefined;
  let allocated = false;
  let guarded = false;
  let guarding: Promise<void> | undefined;
  try {
    // A release journaled by an earlier DEL of this very attachment must not be replayed now that
    // it is added again: the allocation (if the router still has it) becomes this one's.
    ctx.deps.journal(conf.journalDir).done({ containerId, ifName, at: 0 });
    // Three things at once: the veth pair; the allocation; and, as soon as the allocation is
    // made, the router's rules for the port (the pod's MAC is picked here, so they need not wait
    // for the pair). A failure of any undoes all below; an allocation the router already held (a
    // repeated ADD) is not released by that.
    const containerMac = randomMac();
    const allocating = daemon.allocate(containerId, ifName, conf.name).catch((err: unknown) => {
      // Unreachable may mean the request went through and only the answer was lost: undo it too.
      if ((err as { code?: unknown } | null)?.code === 'ERR_API_UNREACHABLE') allocated = true;
      throw routerError(err, `allocating an address for ${containerId}/${ifName}`);
    });
    const attachPort = async (): Promise<void> => {
      guarded = true;
      await daemon.attach(containerId, ifName, containerMac, pod).catch((err: unknown) => {
        throw routerError(err, `guarding the port of ${containerId}/${ifName}`);
      });
    };
    // An allocation the router already held (a repeated ADD) may be a live pod's: its rules
    // change only once this ADD has made its own pair (below), never for an ADD that fails first.
    guarding = allocating.then((got) => (got.existing ? undefined : attachPort()));
    guarding.catch(() => undefined); // settled below, or awaited by the rollback
    const [made, got] = await Promise.allSettled([links.createPair({ netns, ifName, hostName, bridge: net.bridge, mtu, containerMac }), allocating]);
    if (got.status === 'fulfilled') allocated = !got.value.existing;
    if (made.status === 'rejected') throw made.reason;
    pair = made.value;
    if (got.status === 'rejected') throw got.reason;
    const { addresses, durable } = got.value;
    const missing = addresses.filter((a) => !net.gateways.some((g) => g.family === a.family));
    if (missing.length > 0) {
      throw new CniError(CniCode.RouterRefused, `the router allocated ${missing.map((a) => a.address).join(', ')} but reports no IPv${missing[0]!.family} gateway on ${net.bridge}`);
    }
    // The pod's side, the rules (under way) and the router's disk write of the allocation do not
    // depend on each other; ADD reports only once all are done.
    const [configured, guard, persisted] = await Promise.allSettled([
      links.configure({
        netns,
        ifName,
        addresses,
        gateways: net.gateways,
        ...(conf.routes === undefined ? {} : { routes: conf.routes }),
        ...(conf.defaultRoute === undefined ? {} : { defaultRoute: conf.defaultRoute }),
      }),
      got.value.existing ? attachPort() : guarding,
      durable,
    ]);
    if (persisted.status === 'rejected') throw routerError(persisted.reason, `allocating an address for ${containerId}/${ifName}`);
    if (configured.status === 'rejected') throw configured.reason;
    if (guard.status === 'rejected') throw guard.reason;
    return buildAddResult({
      cniVersion: conf.cniVersion,
      bridge: net.bridge,
      bridgeMac: pair.bridgeMac,
      hostName,
      hostMac: pair.hostMac,
      ifName,
      containerMac: pair.containerMac,
      netns,
      mtu,
      addresses,
      gateways: net.gateways,
      routes: configured.value,
      ...(conf.dns === undefined ? {} : { dns: conf.dns }),
    });
  } catch (err) {
    const reported = err instanceof CniError ? err : linkError(err, ctx);
    // A pair that 'exists' was not made by us: leave it alone.
    const ours = pair !== undefined || !(err instanceof LinkError && err.kind === 'exists');
    if (ours) await links.removeHost(hostName).catch((e: unknown) => ctx.log(`rollback: deleting ${hostName}: ${(e as Error).message}`));
    await guarding?.catch(() => undefined); // an attach under way finishes before it is undone
    if (guarded) await daemon.detach(containerId, ifName).catch((e: unknown) => ctx.log(`rollback: removing the rules of ${containerId}/${ifName}: ${(e as Error).message}`));
    if (allocated) await releaseOrJournal(ctx, 'rollback').catch((e: unknown) => ctx.log(`rollback: releasing ${containerId}/${ifName}: ${(e as Error).message}`));
    throw reported;
  }
}
