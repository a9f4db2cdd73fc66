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
import { DaemonClient, RouterTimeoutError, type DaemonApi } from '../cni/client.js';
import { CniCode } from '../cni/errors.js';
import { parseDeadlineHeader, ROUTER_MARGIN_MS } from '../cni/limits.js';
import { isSupportedVersion } from '../cni/versions.js';
import type { Ipam } from '../ipam/ipam.js';
import type { PodGuard } from './pod-guard.js';
import type { PolicyEngine } from './policy.js';
import { attachPolicy } from './policy-attach.js';
import type { PodNetwork } from './pod-network.js';
import { handlers } from '../cni/commands/index.js';
import { runPlugin } from '../cni/skel.js';
import { PodLinks } from '../cni/veth.js';
import type { RawApiHandler } from './api-server.js';

const VARS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;

/** Rejects with a RouterTimeoutError when `p` is not done by `deadline` (ms since the epoch). */
function bounded<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(new RouterTimeoutError(`the weft router could not ${what} within the call's time limit`));
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new RouterTimeoutError(`the weft router could not ${what} within the call's time limit`)), left);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/**
 * The router's API for a call running inside the router: the same answers as over the socket
 * (same error codes), without an HTTP round trip to ourselves, each bounded by the call's
 * deadline. A config naming another socket (another router) is served over that socket.
 */
function inProcess(ipam: Ipam, pods: PodNetwork, guard: PodGuard, policy: PolicyEngine | undefined, log: Logger, deadline: number): DaemonApi {
  return {
    network: () => Promise.resolve(pods.network()),
    allocate: async (containerId, ifName, network) => {
      // IPAM stops waiting for space before the deadline: no allocation is made after the ADD gave up.
      const timeoutMs = Math.max(0, deadline - Date.now() - 500);
      const r = await bounded(ipam.assign({ containerId, ifName, timeoutMs, ...(network === undefined ? {} : { network }) }), deadline, `allocate an address for ${containerId}/${ifName}`);
      // The pod is set up while the allocation is written to disk; ADD answers after both.
      const durable = bounded(r.durable, deadline, `persist the allocation of ${containerId}/${ifName}`);
      durable.catch(() => undefined); // an ADD that failed before waiting on it
      return { addresses: r.addresses, existing: r.existing === true, durable };
    },
    release: async (containerId, ifName, cond) => {
      // A release may be an ADD's rollback after its deadline: it gets half the margin more.
      const r = await bounded(ipam.release(containerId, ifName, cond), deadline + ROUTER_MARGIN_MS / 2, `release the addresses of ${containerId}/${ifName ?? '*'}`);
      return { released: r.released, skipped: r.skipped ?? [] };
    },
    allocations: () => Promise.resolve(ipam.list()),
    attach: async (containerId, ifName, mac, pod) => {
      const guarded = await bounded(guard.attach(containerId, ifName, mac), deadline, `guard the port of ${containerId}/${ifName}`);
      await attachPolicy(policy, log, { containerId, ifName, pod, guarded });
    },
    detach: async (containerId, ifName) => {
      policy?.podDetached(containerId, ifName);
      await bounded(guard.detach(containerId, ifName), deadline + ROUTER_MARGIN_MS / 2, `drop the rules of ${containerId}/${ifName}`);
    },
  };
}

/** The CNI error the router answers for a call that reached it after its deadline (nothing done). */
function lateAnswer(body: string, command: string | undefined): string {
  let version = '1.0.0';
  try {
    const v = (JSON.parse(body) as { cniVersion?: unknown } | null)?.cniVersion;
    if (isSupportedVersion(v)) version = v;
  } catch {
    // the version stays the default
  }
  const msg = `the ${command ?? 'CNI'} call reached the weft router after its time limit (the router was held up); nothing was done`;
  return `${JSON.stringify({ cniVersion: version, code: CniCode.TryAgainLater, msg })}\n`;
}

export function cniExecHandler(
  log: Logger,
  own: { socket: string; ipam: Ipam | undefined; pods: PodNetwork | undefined; guard: PodGuard | undefined; policy?: PolicyEngine | undefined },
): RawApiHandler {
  const links = new PodLinks({ pathEnv: process.env.PATH });
  const { ipam, pods, guard } = own;
  const daemon = (socket: string, deadline?: number): DaemonApi =>
    socket === own.socket && ipam !== undefined && pods !== undefined && guard !== undefined
      ? inProcess(ipam, pods, guard, own.policy, log, deadline ?? Date.now() + 60_000)
      : new DaemonClient({ socket, ...(deadline === undefined ? {} : { deadline }) });
  const deps = { links, daemon, journal: (dir: string) => new ReleaseJournal(dir) };
  return async (body, req) => {
    // The binary gives the router a deadline ahead of its own (src/cni/limits.ts). A call that
    // arrives after it (the router was stopped or starved) is not run: the binary has already
    // given up (and a DEL journaled its release, which the replay does).
    const deadline = parseDeadlineHeader(req.headers['x-weft-deadline']);
    const command = typeof req.headers['x-cni_command'] === 'string' ? req.headers['x-cni_command'] : undefined;
    if (deadline !== undefined && Date.now() >= deadline) {
      log.warn('a CNI call arrived after its deadline; refused', { command, containerId: req.headers['x-cni_containerid'], lateMs: Date.now() - deadline });
      return { headers: { 'x-cni-exit': '1' }, body: lateAnswer(body.toString('utf8'), command) };
    }
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
    const io = { env, stdin: body.toString('utf8'), stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) } };
    const code = await runPlugin(deadline === undefined ? io : { ...io, deadline }, handlers, deps);
    if (err !== '') log.info('CNI call said', { command: env.CNI_COMMAND, containerId: env.CNI_CONTAINERID, text: err.trim() });
    // An ADD that finished after the binary gave up (reporting failure) must not leave a pod behind.
    if (env.CNI_COMMAND === 'ADD' && code === 0 && deadline !== undefined && Date.now() >= deadline + ROUTER_MARGIN_MS) {
      log.warn('a CNI ADD finished after the plugin gave up waiting; undoing it', { containerId: env.CNI_CONTAINERID, ifName: env.CNI_IFNAME });
      let undo = '';
      await runPlugin({ ...io, env: { ...env, CNI_COMMAND: 'DEL' }, stdout: { write: (t: string) => (undo += t) }, stderr: { write: () => undefined } }, handlers, deps);
      if (undo !== '') log.warn('undoing the late ADD said', { text: undo.trim() });
    }
    // DEL and GC delete host ends: the guard drops the rules of ports that left the bridge.
    if (env.CNI_COMMAND === 'DEL' || env.CNI_COMMAND === 'GC') guard?.reconcileSoon();
    if (env.CNI_NETNS !== runtimePath && runtimePath !== undefined) out = out.split(JSON.stringify(env.CNI_NETNS).slice(1, -1)).join(JSON.stringify(runtimePath).slice(1, -1));
    return { headers: { 'x-cni-exit': String(code) }, body: out };
  };
}
