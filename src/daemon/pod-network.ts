/**
 * What pods on this node need from the router beyond L2 (issue 7): a gateway address per family on
 * the bridge, taken from the cluster IPAM (container id `weft:gateway`), forwarding on, and source
 * NAT for pod traffic that leaves the cluster's ranges (nftables table `inet weft-nat`; pod-to-pod
 * traffic never matches it). Set up once IPAM is ready, re-checked every few seconds (a restarted
 * router finds the same gateway: the allocation is idempotent). Serves GET /v1/cni/network.
 *
 * The bridge addresses, forwarding and the table stay when the router stops: pods keep working.
 */
import { writeFile } from 'node:fs/promises';
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import type { Netlink } from '../platform/netlink.js';
import type { Nft } from '../platform/nft.js';
import type { Ipam } from '../ipam/ipam.js';
import type { CniNetwork } from '../api/types.js';

export const GATEWAY_ID = 'weft:gateway';
export const NAT_TABLE = 'weft-nat';

/** The nftables body: masquerade what leaves the pod ranges for elsewhere. */
export function natRules(ranges: readonly string[]): string {
  const lines = ['  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;'];
  for (const r of ranges) {
    const ip = r.includes(':') ? 'ip6' : 'ip';
    lines.push(`    ${ip} saddr ${r} ${ip} daddr != ${r} masquerade`);
  }
  lines.push('  }');
  return lines.join('\n');
}

export class PodNetwork implements Startable {
  private readonly components: { ipam: Ipam; netlink: Netlink; nft: Nft; clock: Clock; logger: Logger; guard?: { notReady(): string | undefined } };
  private readonly init: { bridge: string; mtu: number; ranges: string[]; procSys?: string };
  private gateways: CniNetwork['gateways'] = [];
  private problem: string | undefined = 'waiting for IPAM';
  private timer: TimerHandle | undefined = undefined;
  private busy = false;

  constructor(components: PodNetwork['components'], init: PodNetwork['init']) {
    this.components = components;
    this.init = init;
  }

  start(): void {
    void this.reconcile();
    this.timer = this.components.clock.setInterval(() => void this.reconcile(), 2000);
  }

  stop(): void {
    this.timer?.cancel();
  }

  /**
   * Ready for pods: IPAM ready, the gateway set up, and the pods' anti-spoofing table programmable.
   * `exhausted` says why a new pod would get no address (ADD then fails with "exhausted", code 100).
   */
  network(): CniNetwork {
    const ipamReady = this.components.ipam.ready();
    const guard = this.components.guard?.notReady();
    const ready = ipamReady.ok && this.problem === undefined && guard === undefined && this.gateways.length > 0;
    const reason = !ipamReady.ok ? `IPAM not ready: ${ipamReady.reason ?? '?'}` : (this.problem ?? (guard === undefined ? undefined : `pods cannot be guarded: ${guard}`));
    const exhausted = ready ? this.components.ipam.exhausted() : undefined;
    return {
      ready,
      ...(ready ? {} : { reason: reason ?? 'starting' }),
      bridge: this.init.bridge,
      mtu: this.init.mtu,
      gateways: this.gateways,
      ...(exhausted === undefined ? {} : { exhausted }),
    };
  }

  private async reconcile(): Promise<void> {
    if (this.busy || !this.components.ipam.ready().ok) return;
    this.busy = true;
    try {
      const { addresses } = await this.components.ipam.allocate({ containerId: GATEWAY_ID, ifName: this.init.bridge });
      const have = await this.components.netlink.addresses(this.init.bridge);
      for (const a of addresses) {
        if (!have.some((h) => h.address === a.address && h.prefix === a.prefixLength)) {
          await this.components.netlink.ensureAddress(this.init.bridge, a.address, a.prefixLength);
          this.components.logger.info('gateway address on the bridge', { bridge: this.init.bridge, address: `${a.address}/${a.prefixLength}` });
        }
      }
      if (this.gateways.length === 0) {
        const sys = this.init.procSys ?? '/proc/sys';
        await writeFile(`${sys}/net/ipv4/ip_forward`, '1');
        if (addresses.some((a) => a.family === 6)) await writeFile(`${sys}/net/ipv6/conf/all/forwarding`, '1');
        await this.components.nft.replaceTable('inet', NAT_TABLE, natRules(this.init.ranges));
      }
      this.gateways = addresses;
      this.problem = undefined;
    } catch (err) {
      this.problem = `cannot set up the pod gateway on ${this.init.bridge}: ${describeError(err)}`;
      this.components.logger.warn('pod network setup failed; retrying', { err: describeError(err) });
    } finally {
      this.busy = false;
    }
  }
}
