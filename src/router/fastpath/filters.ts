/**
 * The fast path's nftables tables (each replaced whole, atomically; other components' tables are
 * never touched):
 *
 *   inet weft-vxlan   UDP to the VXLAN port is accepted only from the underlay addresses in the
 *                     set `peers` (the current fast-path peers) and dropped, counted (`refused`),
 *                     from anyone else, IPv6 included. In the input hook, after reassembly, so
 *                     fragments cannot slip past. The set is refilled in one transaction as peers
 *                     come and go.
 *   bridge weft-probe frames that enter the bridge from any port but the sleeve's TAP, the VXLAN
 *                     device and the probe TAP (so: from pods) are dropped, counted (`pods`), when
 *                     they are addressed to or from a probe MAC (02:77:...) or carry the probe
 *                     ethertype: a pod can neither reach the probe device nor pass for one.
 *                     In prerouting, before the bridge learns the source.
 *
 * Like the VXLAN device, the tables outlive the router (the kernel keeps carrying the pods'
 * traffic while it restarts, and the port must stay closed to others meanwhile); a restarted
 * router rewrites them with the peers it adopts from the kernel.
 */
import { isIPv4 } from 'node:net';
import type { Clock } from '../../core/clock.js';
import { WeftError, describeError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Nft, NftFamily } from '../../platform/nft.js';
import type { VxlanPortReport } from '../../api/types.js';

export type { VxlanPortReport };

export const VXLAN_TABLE = 'weft-vxlan';
export const PROBE_TABLE = 'weft-probe';
/** Every table the fast path writes (a router started without the fast path removes them). */
export const FAST_PATH_TABLES: readonly (readonly [NftFamily, string])[] = [
  ['inet', VXLAN_TABLE],
  ['bridge', PROBE_TABLE],
];
const PEER_SET = 'peers';
const REFUSED = 'refused';
const POD_PROBES = 'pods';
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
/** Counters are read at most this often (each read runs `nft`). */
const COUNTER_MIN_AGE_MS = 1000;

export interface FastPathFiltersComponents {
  nft: Nft;
  clock: Clock;
  logger: Logger;
}

export interface FastPathFiltersInit {
  /** The VXLAN device's UDP port. */
  port: number;
  /** The bridge ports that are not pods': the sleeve's TAP, the VXLAN device, the probe TAP. */
  overlayPorts: readonly string[];
}

/** The body of `table inet weft-vxlan`. */
export function vxlanTableBody(port: number, peers: readonly string[]): string {
  const elements = peers.length === 0 ? '' : `\n    elements = { ${peers.join(', ')} }`;
  return [
    `  set ${PEER_SET} {`,
    `    type ipv4_addr${elements}`,
    '  }',
    `  counter ${REFUSED} { }`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    udp dport ${port} ip saddr @${PEER_SET} accept`,
    `    udp dport ${port} counter name "${REFUSED}" drop`,
    '  }',
  ].join('\n');
}

/** The body of `table bridge weft-probe`. */
export function probeTableBody(overlayPorts: readonly string[]): string {
  const mask = 'ff:ff:00:00:00:00';
  const prefix = '02:77:00:00:00:00';
  return [
    `  counter ${POD_PROBES} { }`,
    '  chain prerouting {',
    '    type filter hook prerouting priority filter; policy accept;',
    `    iifname { ${overlayPorts.map((p) => `"${p}"`).join(', ')} } accept`,
    `    ether daddr & ${mask} == ${prefix} counter name "${POD_PROBES}" drop`,
    `    ether saddr & ${mask} == ${prefix} counter name "${POD_PROBES}" drop`,
    `    ether type 0x88b5 counter name "${POD_PROBES}" drop`,
    '  }',
  ].join('\n');
}

export class FastPathFilters {
  private readonly components: FastPathFiltersComponents;
  private readonly port: number;
  private readonly overlayPorts: readonly string[];
  private peers: string[] = [];
  private refused = { packets: 0, bytes: 0 };
  private podProbes = { packets: 0, bytes: 0 };
  private readAt = -Infinity;
  private reading: Promise<void> | undefined = undefined;
  private loggedRefused = false;
  private loggedPods = false;

  constructor(components: FastPathFiltersComponents, init: FastPathFiltersInit) {
    this.components = components;
    if (!Number.isInteger(init.port) || init.port < 1 || init.port > 65535) throw new WeftError('ERR_FASTPATH_FILTER', `VXLAN port ${init.port} is not a UDP port`);
    this.port = init.port;
    for (const p of init.overlayPorts) if (!IFNAME.test(p)) throw new WeftError('ERR_FASTPATH_FILTER', `"${p}" is not an interface name`);
    this.overlayPorts = [...init.overlayPorts];
  }

  /** Writes the tables with `peers` allowed (before the VXLAN device is up, or to take over after a restart). */
  async install(peers: readonly string[]): Promise<void> {
    const allowed = checked(peers);
    const tables: [NftFamily, string, string][] = [
      ['inet', VXLAN_TABLE, vxlanTableBody(this.port, allowed)],
      ['bridge', PROBE_TABLE, probeTableBody(this.overlayPorts)],
    ];
    for (const [family, name, body] of tables) {
      try {
        await this.components.nft.replaceTable(family, name, body);
      } catch (err) {
        throw new WeftError(
          'ERR_FASTPATH_FILTER',
          `cannot install the fast path's filter (nftables table ${family} ${name}): ${describeError(err)}; install nftables, or run with --fastpath off`,
          { cause: err },
        );
      }
    }
    this.peers = allowed;
    this.refused = { packets: 0, bytes: 0 };
    this.podProbes = { packets: 0, bytes: 0 };
  }

  /** Allows exactly `peers` (one transaction); a table that went missing is written again. */
  async setPeers(peers: readonly string[]): Promise<void> {
    const allowed = checked(peers);
    if (same(allowed, this.peers)) return;
    try {
      await this.components.nft.replaceSetElements('inet', VXLAN_TABLE, PEER_SET, allowed);
    } catch (err) {
      this.components.logger.warn('the VXLAN port filter could not be updated; writing its table again', { err: describeError(err) });
      await this.install(allowed);
    }
    this.peers = allowed;
  }

  /** Reads the drop counters again unless they were read within the last second; never throws. */
  refresh(): Promise<void> {
    if (this.components.clock.now() - this.readAt < COUNTER_MIN_AGE_MS) return Promise.resolve();
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  report(): VxlanPortReport {
    return { table: `inet ${VXLAN_TABLE}`, port: this.port, peers: [...this.peers], refused: { ...this.refused }, podProbes: { ...this.podProbes } };
  }

  private async read(): Promise<void> {
    try {
      const all = await this.components.nft.counters();
      const r = all.find((x) => x.family === 'inet' && x.table === VXLAN_TABLE && x.name === REFUSED);
      if (r !== undefined) this.refused = { packets: r.packets, bytes: r.bytes };
      const p = all.find((x) => x.family === 'bridge' && x.table === PROBE_TABLE && x.name === POD_PROBES);
      if (p !== undefined) this.podProbes = { packets: p.packets, bytes: p.bytes };
      this.readAt = this.components.clock.now();
    } catch (err) {
      this.components.logger.debug('cannot read the fast path filter counters', { err: describeError(err) });
      return;
    }
    if (this.podProbes.packets > 0 && !this.loggedPods) {
      this.loggedPods = true;
      this.components.logger.warn('frames from pods to the fast path\'s probe addresses were dropped on the bridge (logged once; counts in status)', {
        packets: this.podProbes.packets,
      });
    }
    if (this.refused.packets > 0 && !this.loggedRefused) {
      this.loggedRefused = true;
      this.components.logger.warn('VXLAN datagrams from addresses that are not fast-path peers were dropped (logged once; counts in status)', {
        packets: this.refused.packets,
      });
    }
  }
}

/** IPv4 addresses only (they go into an nft script), sorted, without repeats. */
function checked(peers: readonly string[]): string[] {
  for (const p of peers) if (!isIPv4(p)) throw new WeftError('ERR_FASTPATH_FILTER', `"${p}" is not an IPv4 address; the VXLAN port filter takes only those`);
  return [...new Set(peers)].sort();
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
