/**
 * What kube-proxy's Services need from the pods' bridge (issue 16), set up by the router and
 * reported in status (`services`):
 *
 *   net.bridge.bridge-nf-call-iptables  = 1   a pod's packet to a ClusterIP is DNATed on its own
 *   net.bridge.bridge-nf-call-ip6tables = 1   node; the backend's reply comes back as a *bridged*
 *                                             frame (over the overlay, or from a port of the same
 *                                             bridge) and only bridge netfilter lets conntrack
 *                                             undo the DNAT on it
 *   net.ipv4.ip_forward = 1                   (and net.ipv6.conf.all.forwarding with an IPv6
 *                                             range): NodePort traffic is routed into the bridge
 *   hairpin on every veth port of the bridge  a pod that reaches itself through its Service: the
 *                                             DNATed frame is bridged back out the port it came in
 *                                             by (the TAP and the VXLAN device never: a frame
 *                                             reflected into the overlay would loop)
 *
 * New pods get hairpin from the CNI plugin at ADD (cni/veth.ts); the check here, at start and
 * every `reconcileMs`, covers ports plugged otherwise or before. A setting that cannot be made is
 * reported (status, one log line per new problem), never fatal: the router forwards without it.
 * With `enabled` false nothing is written and the same report says what the kernel has.
 *
 * Nothing here is undone at stop: pods keep their Services while the router restarts.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import type { Netlink } from '../platform/netlink.js';
import type { Sysctl } from '../platform/sysctl.js';
import type { ServiceBridgeStatus } from '../api/types.js';

export type { ServiceBridgeStatus };

export interface ServiceBridgeComponents {
  netlink: Pick<Netlink, 'bridgePorts' | 'setHairpin'>;
  sysctl: Sysctl;
  clock: Clock;
  logger: Logger;
}

export interface ServiceBridgeInit {
  bridge: string;
  /** Write the settings (--service-bridge; auto: in Kubernetes mode). Off: only report them. */
  enabled: boolean;
  /** An IPv6 pod range exists: IPv6 forwarding is wanted too. */
  ipv6: boolean;
  reconcileMs?: number;
}

/** Bridged frames cross the IPv4 and IPv6 netfilter hooks (Services here; NetworkPolicy needs them too). */
export const BRIDGE_NETFILTER: readonly { name: string; want: string }[] = [
  { name: 'net.bridge.bridge-nf-call-iptables', want: '1' },
  { name: 'net.bridge.bridge-nf-call-ip6tables', want: '1' },
];

/** The kernel parameters wanted, in the order they are set and reported. */
export function wantedSettings(ipv6: boolean): { name: string; want: string }[] {
  return [
    ...BRIDGE_NETFILTER,
    { name: 'net.ipv4.ip_forward', want: '1' },
    ...(ipv6 ? [{ name: 'net.ipv6.conf.all.forwarding', want: '1' }] : []),
  ];
}

/** Why a missing parameter is missing, in words an operator can act on. */
function missingWhy(name: string): string {
  return name.startsWith('net.bridge.') ? 'not in this kernel: br_netfilter is not loaded (modprobe br_netfilter)' : 'not in this kernel';
}

/**
 * Reads each kernel parameter of `wanted` and, with `write`, sets those that differ; returns what
 * each reads now and the problems (missing, not settable). `why` names the user in the log line.
 * Also used by NetworkPolicy for bridge netfilter (src/daemon/policy.ts).
 */
export async function ensureSettings(
  components: { sysctl: Sysctl; logger: Logger },
  init: { wanted: readonly { name: string; want: string }[]; write: boolean; why: string },
): Promise<{ settings: ServiceBridgeStatus['settings']; problems: string[] }> {
  const { sysctl } = components;
  const problems: string[] = [];
  const settings: ServiceBridgeStatus['settings'] = [];
  for (const s of init.wanted) {
    let value: string | undefined;
    try {
      value = await sysctl.read(s.name);
      if (value === undefined) problems.push(`${s.name}: ${missingWhy(s.name)}`);
      else if (value !== s.want && init.write) {
        await sysctl.write(s.name, s.want);
        value = await sysctl.read(s.name);
        components.logger.info(`kernel setting changed for ${init.why}`, { name: s.name, value });
        if (value !== s.want) problems.push(`${s.name}: set to ${s.want} but reads ${value ?? 'nothing'}`);
      }
    } catch (err) {
      problems.push(`${s.name}: ${describeError(err)}`);
    }
    settings.push({ ...s, value: value ?? null, ok: value === s.want });
  }
  return { settings, problems };
}

export class ServiceBridge implements Startable {
  private readonly components: ServiceBridgeComponents;
  private readonly init: Required<ServiceBridgeInit>;
  private report: ServiceBridgeStatus;
  private timer: TimerHandle | undefined = undefined;
  private running: Promise<void> | undefined = undefined;
  private readonly logged = new Set<string>();

  constructor(components: ServiceBridgeComponents, init: ServiceBridgeInit) {
    this.components = components;
    this.init = { reconcileMs: 10_000, ...init };
    this.report = {
      enabled: init.enabled,
      bridge: init.bridge,
      settings: wantedSettings(init.ipv6).map((s) => ({ ...s, value: null, ok: false })),
      hairpin: { ports: 0, on: [], off: [] },
      problems: ['not checked yet'],
      checkedAt: null,
    };
  }

  async start(): Promise<void> {
    await this.reconcile();
    this.timer = this.components.clock.setInterval(() => void this.reconcile(), this.init.reconcileMs);
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    await this.running;
  }

  status(): ServiceBridgeStatus {
    return this.report;
  }

  /** One check (and, when enabled, fix) at a time; a second caller shares the running one. */
  reconcile(): Promise<void> {
    this.running ??= this.doReconcile().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async doReconcile(): Promise<void> {
    const { sysctl, netlink } = this.components;
    const { settings, problems } = await ensureSettings({ sysctl, logger: this.components.logger }, { wanted: wantedSettings(this.init.ipv6), write: this.init.enabled, why: 'Services' });
    const hairpin: ServiceBridgeStatus['hairpin'] = { ports: 0, on: [], off: [] };
    try {
      const ports = (await netlink.bridgePorts(this.init.bridge)).filter((l) => l.kind === 'veth');
      hairpin.ports = ports.length;
      for (const p of ports) {
        let on = p.hairpin === true;
        if (!on && this.init.enabled) {
          try {
            await netlink.setHairpin(p.name, true);
            on = true;
            this.components.logger.debug('hairpin mode on', { port: p.name, bridge: this.init.bridge });
          } catch (err) {
            // A port that left the bridge meanwhile is no problem; the next check will not see it.
            problems.push(`hairpin on ${p.name}: ${describeError(err)}`);
          }
        }
        (on ? hairpin.on : hairpin.off).push(p.name);
      }
    } catch (err) {
      problems.push(`cannot list the ports of bridge ${this.init.bridge}: ${describeError(err)}`);
    }
    hairpin.on.sort();
    hairpin.off.sort();
    for (const p of this.logged) if (!problems.includes(p)) this.logged.delete(p);
    for (const p of this.init.enabled ? problems : []) {
      if (this.logged.has(p)) continue;
      this.logged.add(p);
      this.components.logger.warn('the bridge is not fully set up for Services', { problem: p });
    }
    // Off, what is missing is no problem of the router's: the settings and ports say what the kernel has.
    this.report = { enabled: this.init.enabled, bridge: this.init.bridge, settings, hairpin, problems: this.init.enabled ? problems : [], checkedAt: this.components.clock.now() };
  }
}
