/**
 * The API server's client: which credentials (a kubeconfig file, the pod's service account, or
 * $KUBECONFIG / ~/.kube/config), the typed APIs weft calls, and errors that say which call failed
 * and how. The only place that builds a `KubeConfig`.
 */
import type { ApiException, CoordinationV1Api, CoreV1Api, KubeConfig, NetworkingV1Api } from '@kubernetes/client-node';
import { WeftError, describeError } from '../core/errors.js';
import { clientNode, clientNodeIfLoaded } from './client-node.js';

export interface KubeApis {
  readonly config: KubeConfig;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  readonly networking: NetworkingV1Api;
  /** The API server's URL, for logs and status. */
  readonly server: string;
}

/**
 * Loads the credentials: `kubeconfig` when given, else the pod's service account when running in
 * one (KUBERNETES_SERVICE_HOST), else the default locations. Throws `ERR_KUBE_CONFIG` naming the
 * file or the source that failed.
 */
export function openKube(kubeconfig: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): KubeApis {
  const { KubeConfig, CoreV1Api, CoordinationV1Api, NetworkingV1Api } = clientNode();
  const config = new KubeConfig();
  let source: string;
  try {
    if (kubeconfig !== undefined) {
      source = `the kubeconfig ${kubeconfig}`;
      config.loadFromFile(kubeconfig);
    } else if ((env['KUBERNETES_SERVICE_HOST'] ?? '') !== '') {
      source = "the pod's service account";
      config.loadFromCluster();
    } else {
      source = '$KUBECONFIG or ~/.kube/config';
      config.loadFromDefault();
    }
  } catch (err) {
    throw new WeftError('ERR_KUBE_CONFIG', `cannot load Kubernetes credentials from ${kubeconfig ?? 'the default places'}: ${describeError(err)}`, { cause: err });
  }
  const cluster = config.getCurrentCluster();
  if (cluster === null || cluster.server === '') throw new WeftError('ERR_KUBE_CONFIG', `${source} names no API server (no current cluster with a server URL)`);
  return { config, core: config.makeApiClient(CoreV1Api), coordination: config.makeApiClient(CoordinationV1Api), networking: config.makeApiClient(NetworkingV1Api), server: cluster.server };
}

/** The HTTP status of a failed API call (undefined: it did not get an answer). */
export function kubeStatus(err: unknown): number | undefined {
  return isApiException(err) ? err.code : undefined;
}

/** True for the library's failed-call error; false for anything when the library was never loaded. */
function isApiException(err: unknown): err is ApiException<unknown> {
  const lib = clientNodeIfLoaded();
  return lib !== undefined && err instanceof lib.ApiException;
}

/**
 * One line for a failed API call: `what` (e.g. "patching Node n1"), then the status and the
 * server's message, or the transport error.
 */
export function describeKubeError(what: string, err: unknown): string {
  if (isApiException(err)) {
    const e = err;
    const body = parseBody(e.body);
    const reason = typeof body?.['reason'] === 'string' ? ` ${body['reason']}` : '';
    const message = typeof body?.['message'] === 'string' ? `: ${body['message']}` : '';
    return `${what}: the API server answered ${e.code}${reason}${message}`;
  }
  return `${what}: ${describeError(err)}`;
}

function parseBody(body: unknown): Record<string, unknown> | undefined {
  if (typeof body === 'object' && body !== null) return body as Record<string, unknown>;
  if (typeof body !== 'string') return undefined;
  try {
    const v: unknown = JSON.parse(body);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
