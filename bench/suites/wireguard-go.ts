/**
 * The sleeve suite's optional peer: wireguard-go 0.0.20231211 (Debian trixie; TUN offloads and
 * UDP GSO/GRO) on the same lab as the other variants, set up as ../shared/notes/peers.md did:
 * routed (L3), each node's pod in its own /24 with the gateway on the node's bridge, the other
 * pod's /24 routed through the node's wg device, MTU 1420. scripts/bench-peers.sh fetches it;
 * when it cannot be had, `findWireguardGo` says why and the suite goes on without it.
 *
 *   <p>-n1p1 10.40.1.2/24 ─ weft bridge 10.40.1.1 @ <p>-n1 ─ <p>-wg1 ══ UDP 51820 ══ <p>-wg2 @ <p>-n2 ─ ... 10.40.2.2/24
 *
 * Each wireguard-go runs in the foreground in its node's namespace (a lab process, stopped by
 * PID at teardown). Its UAPI socket is /var/run/wireguard/<ifname>.sock, a path every namespace
 * shares, so the device names carry the lab's unique prefix.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packageRoot } from '../../src/core/paths.js';
import { Lab, type LabNode, type LabPod, type LabProcess } from '../../lab/index.js';
import type { Bed } from './sleeve-bed.js';

export interface WireguardGo {
  binary: string;
  /** Debian's package version (e.g. 0.0.20231211-1+b9) and what the binary prints (v0.0.20230223). */
  version: string;
}

/**
 * Runs scripts/bench-peers.sh (fetching what is missing; `script` replaces it in tests): the
 * binary, or why there is none. Never throws.
 */
export function findWireguardGo(script = join(packageRoot(import.meta.url), 'scripts', 'bench-peers.sh')): { found: WireguardGo } | { why: string } {
  const r = spawnSync(script, [], { encoding: 'utf8', timeout: 300_000 });
  if (r.error !== undefined) return { why: `${script}: ${r.error.message}` };
  if (r.status !== 0) return { why: `${script} exited ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}` };
  const binary = r.stdout.trim().split('\n').at(-1) ?? '';
  if (!existsSync(binary)) return { why: `${script} named ${JSON.stringify(binary)}, which does not exist` };
  let deb: string;
  try {
    deb = readFileSync(join(dirname(dirname(dirname(dirname(binary)))), 'VERSION'), 'utf8').trim();
  } catch (err) {
    return { why: `no VERSION beside ${binary}: ${(err as Error).message}` };
  }
  const v = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const printed = /v\d+\.\d+\.\d+/.exec(v.stdout ?? '')?.[0] ?? 'unknown';
  return { found: { binary, version: `${deb} (prints ${printed})` } };
}

/** The `ethtool -k` features that say the TUN offloads are on. */
export const WG_OFFLOADS = ['tx-checksumming', 'tcp-segmentation-offload', 'generic-segmentation-offload', 'generic-receive-offload'] as const;

/** "feature: on|off" from `ethtool -k` output, for the features of `names` present in it ("[fixed]" dropped). */
export function parseEthtoolFeatures(text: string, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z0-9-]+):\s+(on|off)\b/.exec(line);
    if (m !== null && names.includes(m[1]!)) out[m[1]!] = m[2]!;
  }
  return out;
}

const PORT = 51820;

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface WireguardGoBed extends Bed {
  /** `ethtool -k` of each node's wg device: feature → on/off. */
  offloads: Record<string, string>[];
}

export async function wireguardGoBed(o: { brNetfilter: boolean }, wg: WireguardGo): Promise<WireguardGoBed> {
  const lab = await Lab.create({ nodes: 2, brNetfilter: o.brNetfilter });
  const sockets: string[] = [];
  // `wg set ... private-key FILE` reads a file (not a pipe or socket on stdin): one of our own, mode 0600.
  const keyDir = mkdtempSync(join(tmpdir(), `${lab.prefix}-wgkeys-`));
  lab.onDestroy(async () => {
    rmSync(keyDir, { recursive: true, force: true });
    // wireguard-go removes its socket when stopped with SIGTERM; not when it is killed.
    for (const s of sockets) rmSync(s, { force: true });
  });
  try {
    const pods: LabPod[] = [];
    for (const node of lab.nodes) {
      const i = node.index + 1;
      pods.push(await lab.addPod(node, { ipv4: `10.40.${i}.2/24`, mtu: 1420 }));
      await lab.exec(node.ns, ['ip', 'addr', 'add', `10.40.${i}.1/24`, 'dev', lab.bridgeName]);
      await lab.exec(pods[node.index]!.ns, ['ip', 'route', 'add', 'default', 'via', `10.40.${i}.1`]);
    }
    const keys = [];
    for (let k = 0; k < 2; k++) {
      const priv = (await lab.exec(lab.nodes[0]!.ns, ['wg', 'genkey'])).stdout.trim();
      const pub = (await lab.exec(lab.nodes[0]!.ns, ['wg', 'pubkey'], { input: `${priv}\n` })).stdout.trim();
      keys.push({ priv, pub });
    }
    const ifName = (n: LabNode) => `${lab.prefix}-wg${n.index + 1}`;
    const procs: LabProcess[] = [];
    for (const node of lab.nodes) {
      const dev = ifName(node);
      const sock = `/var/run/wireguard/${dev}.sock`;
      if (existsSync(sock)) throw new Error(`wireguard-go: ${sock} exists already (another lab with prefix ${lab.prefix}?)`);
      sockets.push(sock);
      const env = { ...process.env, LOG_LEVEL: 'error', WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' };
      const p = lab.spawn(node.ns, [wg.binary, '-f', dev], { env });
      procs.push(p);
      await waitForSocket(p, sock, 10_000);
    }
    for (const node of lab.nodes) {
      const other = lab.nodes.find((n) => n !== node)!;
      const dev = ifName(node);
      const peerNet = `10.40.${other.index + 1}.0/24`;
      const keyFile = join(keyDir, `${node.name}.key`);
      writeFileSync(keyFile, `${keys[node.index]!.priv}\n`, { mode: 0o600 });
      const peerArgs = ['peer', keys[other.index]!.pub, 'endpoint', `${other.address}:${PORT}`, 'allowed-ips', peerNet];
      await lab.exec(node.ns, ['wg', 'set', dev, 'private-key', keyFile, 'listen-port', String(PORT), ...peerArgs]);
      await lab.exec(node.ns, ['ip', 'link', 'set', dev, 'mtu', '1420', 'up']);
      await lab.exec(node.ns, ['ip', 'route', 'add', peerNet, 'dev', dev]);
    }
    const offloads: Record<string, string>[] = [];
    for (const node of lab.nodes) {
      const r = await lab.exec(node.ns, ['ethtool', '-k', ifName(node)]);
      offloads.push(parseEthtoolFeatures(r.stdout, WG_OFFLOADS));
    }
    const onSleeve = async (): Promise<void> => {
      // The routes leave no other way, but say so from wireguard-go's own counters.
      for (const node of lab.nodes) {
        const r = await lab.exec(node.ns, ['wg', 'show', ifName(node), 'transfer']);
        const [, rx, tx] = r.stdout.trim().split(/\s+/);
        if (!(Number(rx) > 0 && Number(tx) > 0)) throw new Error(`wireguard-go on ${node.name} carried nothing: wg show transfer "${r.stdout.trim()}"`);
      }
    };
    return { lab, client: pods[0]!, server: pods[1]!, pids: procs.map((p) => p.pid), offloads, onSleeve, destroy: () => lab.destroy() };
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}

async function waitForSocket(p: LabProcess, sock: string, timeoutMs: number): Promise<void> {
  let exited = false;
  void p.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(sock)) {
    if (exited) throw new Error(`wireguard-go in ${p.ns} exited before it made ${sock}: ${p.stderrText().trim() || p.stdoutText().trim()}`);
    if (Date.now() > deadline) throw new Error(`wireguard-go in ${p.ns} made no ${sock} within ${timeoutMs} ms`);
    await delay(50);
  }
}
