/**
 * The floor row of the sleeve suite: bench/floor/tap-udp-forward.c, the least a userspace program
 * can do to carry a pod's frames (TAP read → UDP send, UDP receive → TAP write, one frame per
 * system call, no crypto, no batching, no offloads), on the same lab as the other variants:
 *
 *   <p>-n1p1 10.40.1.2/16 ─ weft bridge ─ ftap0 ⇄ tap-udp-forward ⇄ UDP 7000 ⇄ ... @ <p>-n2 ─ 10.40.2.2/16
 *
 * It says what any userspace tunnel pays here before doing its own work: its added ping is the
 * wakeups and user-space crossings of this machine (four per round trip), not a tunnel's code.
 * Compiled with the system's C compiler at run time (node-gyp needs one anyway); when there is
 * none the suite goes on without the row and says why.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type LabPod, type LabProcess } from '../../lab/index.js';
import { packageRoot } from '../../src/core/paths.js';
import type { Bed } from './sleeve-bed.js';

const PORT = 7000;
const TAP = 'ftap0';
/** 1400 + 14 bytes of Ethernet + 28 of IPv4 and UDP fit the underlay's 1500 without fragments. */
const POD_MTU = 1400;

export interface FloorForwarder {
  binary: string;
  /** Removes the binary's directory. */
  remove(): void;
}

/** Compiles the forwarder into a fresh temporary directory, or says why it cannot. */
export function buildFloorForwarder(source = join(packageRoot(import.meta.url), 'bench', 'floor', 'tap-udp-forward.c')): { found: FloorForwarder } | { why: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-floor-'));
  const binary = join(dir, 'tap-udp-forward');
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', binary, source], { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined || r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { why: `cc could not build ${source}: ${r.error?.message ?? r.stderr.trim()}` };
  }
  return { found: { binary, remove: () => rmSync(dir, { recursive: true, force: true }) } };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitReady(p: LabProcess, timeoutMs: number): Promise<void> {
  let exited = false;
  void p.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (!p.stdoutText().includes('ready')) {
    if (exited) throw new Error(`tap-udp-forward in ${p.ns} exited: ${p.stderrText().trim()}`);
    if (Date.now() > deadline) throw new Error(`tap-udp-forward in ${p.ns} was not ready within ${timeoutMs} ms`);
    await delay(20);
  }
}

export async function floorBed(o: { brNetfilter: boolean }, fwd: FloorForwarder): Promise<Bed> {
  const lab = await Lab.create({ nodes: 2, brNetfilter: o.brNetfilter });
  try {
    const pods: LabPod[] = [];
    const procs: LabProcess[] = [];
    for (const node of lab.nodes) {
      pods.push(await lab.addPod(node, { ipv4: `10.40.${node.index + 1}.2/16`, mtu: POD_MTU }));
      const peer = lab.nodes.find((n) => n !== node)!;
      const p = lab.spawn(node.ns, [fwd.binary, TAP, node.address, peer.address, String(PORT)]);
      procs.push(p);
      await waitReady(p, 10_000);
      await lab.exec(node.ns, ['ip', 'link', 'set', TAP, 'mtu', String(POD_MTU), 'master', lab.bridgeName, 'up']);
    }
    const onSleeve = async (): Promise<void> => {
      // The bridge has no other way out; say so from the TAP's own counters.
      for (const node of lab.nodes) {
        const r = await lab.exec(node.ns, ['cat', `/sys/class/net/${TAP}/statistics/rx_packets`, `/sys/class/net/${TAP}/statistics/tx_packets`]);
        const [rx, tx] = r.stdout.trim().split(/\s+/).map(Number);
        if (!(rx! > 0 && tx! > 0)) throw new Error(`tap-udp-forward on ${node.name} carried nothing: ${TAP} rx ${rx}, tx ${tx}`);
      }
    };
    return { lab, client: pods[0]!, server: pods[1]!, pids: procs.map((p) => p.pid), onSleeve, destroy: () => lab.destroy() };
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}
