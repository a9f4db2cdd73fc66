/**
 * POST /v1/cni/exec: runs a CNI call in the router's process, for the plugin binary
 * (src/cni/shim/weft-cni.c), which forwards CNI_* as `X-CNI_*` headers and the network config as the
 * body. The same plugin code as the Node entry (cni/main.ts) runs here, so behaviour is identical;
 * only the process start-up is saved. The answer is the plugin's stdout, its exit code in
 * `X-Cni-Exit`. Interface work runs through rtnetlink on the thread pool: the data plane is not
 * held up.
 */
import type { Logger } from '../core/logger.js';
import { ReleaseJournal } from '../api/release-journal.js';
import { DaemonClient, type DaemonApi } from '../cni/client.js';
import type { Ipam } from '../ipam/ipam.js';
import type { PodGuard } from './pod-guard.js';
import type { PodNetwork } from './pod-network.js';
import { handlers } from '../cni/commands/index.js';
import { runPlugin } from '../cni/skel.js';
import { PodLinks } from '../cni/veth.js';
import type { RawApiHandler } from './api-server.js';

const VARS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;

/**
 * The router's API for a call running inside the router: the same answers as over the socket
 * (same error codes), without an HTTP round trip to ourselves. A config naming another socket
 * (another router) is served over that socket.
 */
function inProcess(ipam: Ipam, pods: PodNetwork, guard: PodGuard): DaemonApi {
  return {
    network: () => Promise.resolve(pods.network()),
    allocate: async (containerId, ifName) => {
      const r = await ipam.allocate({ containerId, ifName });
      return { addresses: r.addresses, existing: r.existing === true };
    },
    release: async (containerId, ifName) => (await ipam.release(containerId, ifName)).released,
    allocations: () => Promise.resolve(ipam.list()),
    attach: async (containerId, ifName, mac) => void (await guard.attach(containerId, ifName, mac)),
    detach: async (containerId, ifName) => void (await guard.detach(containerId, ifName)),
  };
}

export function cniExecHandler(
  log: Logger,
  own: { socket: string; ipam: Ipam | undefined; pods: PodNetwork | undefined; guard: PodGuard | undefined },
): RawApiHandler {
  const links = new PodLinks({ pathEnv: process.env.PATH });
  const { ipam, pods, guard } = own;
  const daemon = (socket: string): DaemonApi =>
    socket === own.socket && ipam !== undefined && pods !== undefined && guard !== undefined ? inProcess(ipam, pods, guard) : new DaemonClient({ socket });
  const deps = { links, daemon, journal: (dir: string) => new ReleaseJournal(dir) };
  return async (body, req) => {
    const env: Record<string, string> = {};
    for (const v of VARS) {
      const h = req.headers[`x-${v.toLowerCase()}`];
      if (typeof h === 'string') env[v] = h;
    }
    // The pod netns as the plugin binary holds it open (see src/cni/shim/weft-cni.c): reachable from
    // this mount namespace even where the runtime's path is not. Results name the runtime's path.
    const via = req.headers['x-weft-netns-via'];
    const runtimePath = env.CNI_NETNS;
    if (typeof via === 'string' && /^\/proc\/\d+\/fd\/\d+$/.test(via) && runtimePath !== undefined) env.CNI_NETNS = via;
    let out = '';
    let err = '';
    const code = await runPlugin(
      { env, stdin: body.toString('utf8'), stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) } },
      handlers,
      deps,
    );
    if (err !== '') log.info('CNI call said', { command: env.CNI_COMMAND, containerId: env.CNI_CONTAINERID, text: err.trim() });
    // DEL and GC delete host ends: the guard drops the rules of ports that left the bridge.
    if (env.CNI_COMMAND === 'DEL' || env.CNI_COMMAND === 'GC') guard?.reconcileSoon();
    if (env.CNI_NETNS !== runtimePath && runtimePath !== undefined) out = out.split(JSON.stringify(env.CNI_NETNS).slice(1, -1)).join(JSON.stringify(runtimePath).slice(1, -1));
    return { headers: { 'x-cni-exit': String(code) }, body: out };
  };
}
