/**
 * Builds the gossip side of a router around its mesh: topology (channel "topology"), routes
 * from it, and the channel driver, wired into the mesh's transport. One place for the daemon
 * (and tests) to get them in the right order.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../core/atomic-file.js';
import { join } from 'node:path';
import { isoTime, type Clock } from '../core/clock.js';
import { WeftError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import type { PeerName } from '../mesh/contracts.js';
import type { Identity } from '../mesh/identity.js';
import type { Mesh, MeshTopology } from '../mesh/mesh.js';
import { Routes } from '../mesh/routes.js';
import { MAX_LIVE_VERSION, TOPOLOGY_CHANNEL, Topology, type TopologyClone } from '../mesh/topology.js';
import { MACS_CHANNEL, MacOwners } from '../mesh/mac-owners.js';

export interface MeshGossip extends Startable {
  topology: Topology;
  routes: Routes;
  /** Which router owns which pod MAC (the fast path programs the kernel from it). */
  macs: MacOwners;
  forget(name: PeerName): boolean;
  /**
   * Refused gossip by channel and reason, for status drops: records refused by themselves
   * ("topology.badSignature", "macs.versionBound", ...), whole messages ("topology.decodeErrors"),
   * and local MACs left out of our claim ("macs.localOverCap", a gauge).
   */
  drops(): Record<string, number>;
}

export function buildMeshGossip(
  components: { mesh: Mesh; clock: Clock; logger: Logger },
  init: {
    identity: Identity;
    endpoints: string[];
    stateDir: string;
    gossipIntervalMs?: number;
    goneAfterMs?: number;
    /** This router must stop (another one runs with its identity key and started first). */
    onFatal?: (err: WeftError) => void;
  },
): MeshGossip {
  const { mesh, clock, logger } = components;
  // Our record's last version survives restarts, so a clock that went back cannot make peers keep
  // an older record of us.
  const versionFile = join(init.stateDir, 'topology.version');
  let version: number | undefined;
  try {
    const v = Number(readFileSync(versionFile, 'utf8').trim());
    if (Number.isSafeInteger(v) && v > 0 && v < MAX_LIVE_VERSION) version = v;
    else logger.warn('ignoring a topology version file out of range', { file: versionFile, bound: MAX_LIVE_VERSION });
  } catch {
    version = undefined;
  }
  const saveVersion = (): void => {
    try {
      writeFileAtomicSync(versionFile, `${topology.self.version}\n`, 0o600);
    } catch (err) {
      logger.warn('cannot save the topology version', { file: versionFile, err: String(err) });
    }
  };
  const topology = new Topology(
    {
      clock,
      logger,
      onForgotten: (name) => mesh.forgotten(name),
      onConflict: (c) => logger.warn('two peers share a wire id; the later one is refused', { ...c }),
      signer: init.identity.signer,
      onClone: (c) => {
        if (c.action === 'stop') init.onFatal?.(cloneError(c));
      },
    },
    { publicKey: init.identity.publicKey, nickname: init.identity.nickname, endpoints: init.endpoints, goneAfterMs: init.goneAfterMs, version },
  );
  const routes = new Routes({ topology, clock, logger });
  const view: MeshTopology = {
    get: (name) => topology.get(name),
    names: () => topology.peers().map((r) => r.name),
    setConnections: (connections) => void topology.updateSelf({ connections }),
    onChange: (listener) => void topology.onChange(() => listener()),
  };
  mesh.attach(view, routes);
  const channel = mesh.newChannel(TOPOLOGY_CHANNEL, topology, { intervalMs: init.gossipIntervalMs ?? 30_000 });
  const macs = new MacOwners({ clock, logger: logger.child('macs'), signer: init.identity.signer }, { self: topology.name, publicKey: init.identity.publicKey });
  const macsChannel = mesh.newChannel(MACS_CHANNEL, macs, { intervalMs: init.gossipIntervalMs ?? 30_000 });
  // A peer that left the topology owns no MACs any more.
  topology.onChange(() => {
    const live = new Set(topology.peers().map((r) => r.name));
    for (const r of topology.records()) if (!live.has(r.name)) macs.removeOwner(r.name);
  });
  return {
    topology,
    routes,
    macs,
    forget: (name) => topology.forget(name),
    drops: () => {
      const t = topology.stats;
      const m = macs.stats;
      const out: Record<string, number> = { 'topology.decodeErrors': t.decodeErrors, 'macs.decodeErrors': m.decodeErrors, 'macs.localOverCap': m.localOverCap };
      for (const [k, v] of Object.entries(t.refused)) out[`topology.${k}`] = v;
      for (const [k, v] of Object.entries(m.refused)) out[`macs.${k}`] = v;
      return out;
    },
    start: () => {
      saveVersion();
      topology.start();
      routes.start();
      channel.start();
      macsChannel.start();
    },
    stop: () => {
      macsChannel.stop();
      channel.stop();
      routes.stop();
      topology.stop();
      saveVersion();
    },
  };
}

function where(endpoints: readonly string[]): string {
  return endpoints.length === 0 ? 'no advertised address' : endpoints.join(', ');
}

/** The message a router that must yield its identity stops with. */
function cloneError(c: TopologyClone): WeftError {
  return new WeftError(
    'ERR_IDENTITY_IN_USE',
    `another router runs with this identity key (peer ${c.name}, at ${where(c.other.endpoints)}, started ${isoTime(c.other.started)}); ` +
      `this one (at ${where(c.self.endpoints)}, started ${isoTime(c.self.started)}) started later and stops. ` +
      'Give each router its own state directory (the identity key must not be copied).',
  );
}
