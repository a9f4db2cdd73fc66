/** What the commands share: error mapping (router, interfaces) and the release that falls back to the journal. */
import { isTransient } from '../../api/errors.js';
import { namespaceProblem, podNameProblem } from '../../api/pod-identity.js';
import type { CniPodIdentity } from '../../api/types.js';
import { RouterTimeoutError } from '../client.js';
import { CniCode, CniError } from '../errors.js';
import type { CommandContext } from '../skel.js';
import { LinkError } from '../veth.js';

/**
 * Maps the router's API errors to CNI codes, with the router's own message kept: unreachable, no
 * answer within the call's time limit, or not ready (503) is 11, try again later; no address left
 * is 100; any other refusal 101.
 */
export function routerError(err: unknown, doing: string): CniError {
  if (err instanceof CniError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof RouterTimeoutError) return new CniError(CniCode.TryAgainLater, `${doing}: the weft router did not answer in time: ${msg}`, { cause: err });
  if (code === 'ERR_API_UNREACHABLE') return new CniError(CniCode.TryAgainLater, `${doing}: the weft router is not reachable: ${msg}`, { cause: err });
  if (isTransient(err)) return new CniError(CniCode.TryAgainLater, `${doing}: the weft router is not ready: ${msg}`, { cause: err });
  if (code === 'ERR_IPAM_EXHAUSTED') return new CniError(CniCode.AddressesExhausted, `${doing}: no pod address left: ${msg}`, { cause: err });
  return new CniError(CniCode.RouterRefused, `${doing}: the weft router refused: ${msg}${typeof code === 'string' ? ` [${code}]` : ''}`, { cause: err });
}

/** Refuses (code 4) a CNI_NETNS that is the node's own network namespace, before anything changes. */
export function refuseOwnNetns(ctx: CommandContext): void {
  if (ctx.deps.links.isOwnNetns(ctx.netns)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS ${ctx.netns} is the node's own network namespace, not a pod's: refusing to touch ${ctx.ifName} there`);
  }
}

/** Maps interface failures: a bad netns path or a taken name is the caller's (code 4), the rest 102. */
export function linkError(err: unknown, ctx: CommandContext): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof LinkError) {
    if (err.kind === 'netns') return new CniError(CniCode.InvalidEnvironment, `CNI_NETNS: ${err.message}`, { cause: err });
    if (err.kind === 'exists') return new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME: ${err.message}`, { cause: err });
    return new CniError(CniCode.InterfaceFailure, err.message, { cause: err });
  }
  return new CniError(CniCode.InterfaceFailure, `${ctx.ifName} in ${ctx.netns}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/**
 * Releases the attachment's addresses; journals the release when the router is unreachable, not
 * ready, or does not answer in time (the daemon replays it, releasing only an allocation made
 * before the entry: not one a later ADD of the same attachment got).
 */
export async function releaseOrJournal(ctx: CommandContext, why: string): Promise<'released' | 'journaled'> {
  const { containerId, ifName, conf } = ctx;
  try {
    await ctx.deps.daemon(conf.socket).release(containerId, ifName);
    return 'released';
  } catch (err) {
    if (!isTransient(err)) throw routerError(err, `releasing ${containerId}/${ifName}`);
    try {
      ctx.deps.journal(conf.journalDir).record(containerId, ifName);
    } catch (jerr) {
      throw new CniError(CniCode.IoFailure, `releasing ${containerId}/${ifName}: the router is unreachable (${(err as Error).message}) and the release could not be journaled in ${conf.journalDir}: ${(jerr as Error).message}`, { cause: jerr });
    }
    ctx.log(`${why}: router unavailable (${(err as Error).message}); release of ${containerId}/${ifName} journaled in ${conf.journalDir}`);
    return 'journaled';
  }
}

/**
 * The pod's identity from CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME; the kubelet passes both), for
 * NetworkPolicy; undefined when the runtime passes no K8S_POD_NAMESPACE (not a Kubernetes pod:
 * podman passes K8S_POD_NAME alone). A namespace without a name, or a value that is no Kubernetes
 * name, is refused (code 4) naming the key.
 */
export function podIdentity(args: ReadonlyMap<string, string>): CniPodIdentity | undefined {
  const namespace = args.get('K8S_POD_NAMESPACE');
  const name = args.get('K8S_POD_NAME');
  // podman passes K8S_POD_NAME alone (the container's name, for its DNS plugin), never the
  // namespace: not a Kubernetes pod, and its name need not be a Kubernetes name.
  if (namespace === undefined) return undefined;
  if (name === undefined) throw new CniError(CniCode.InvalidEnvironment, 'CNI_ARGS has K8S_POD_NAMESPACE but no K8S_POD_NAME: give both or neither');
  const nsWhy = namespaceProblem(namespace);
  if (nsWhy !== undefined) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS K8S_POD_NAMESPACE: ${nsWhy}`);
  const nameWhy = podNameProblem(name);
  if (nameWhy !== undefined) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS K8S_POD_NAME: ${nameWhy}`);
  return { namespace, name };
}
