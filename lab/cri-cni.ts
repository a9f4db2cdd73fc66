/**
 * CNI material for a lab runtime: the reference plugins of Debian's containernetworking-plugins
 * (copied into a node's bin dir, which is also the CNI_PATH the runtime gives plugins) and a
 * conflist for them, so the harness can be proven independently of weft's own plugin.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.js';

/** Where distributions install the reference plugins (Debian first). */
export const REFERENCE_PLUGIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni'] as const;

/** bridge + host-local for pod networking, loopback (the runtime always runs it for lo), portmap for hostPorts. */
export const REFERENCE_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'] as const;

export function referencePluginDir(): string {
  const dir = REFERENCE_PLUGIN_DIRS.find((d) => existsSync(join(d, 'bridge')));
  if (dir === undefined) throw new LabError(`no CNI reference plugins in ${REFERENCE_PLUGIN_DIRS.join(', ')}: install containernetworking-plugins (scripts/prereqs.sh)`);
  return dir;
}

/** Copies reference plugins (default: REFERENCE_PLUGINS) into `binDir`. */
export async function installReferencePlugins(binDir: string, names: readonly string[] = REFERENCE_PLUGINS): Promise<void> {
  const from = referencePluginDir();
  await mkdir(binDir, { recursive: true });
  for (const n of names) await copyFile(join(from, n), join(binDir, n));
}

export interface BridgeConflistInit {
  /** Network name; default 'lab'. */
  name?: string;
  /** Linux bridge in the node namespace; default 'cni0'. */
  bridge?: string;
  /** host-local range, e.g. '10.88.0.0/24'. */
  subnet: string;
  /** host-local's state directory: give one per node (the default, /var/lib/cni/networks, is shared by the whole machine). */
  dataDir: string;
  /** Default '1.0.0' (what containerd 1.6's libcni speaks). */
  cniVersion?: string;
  /** Append portmap (with the portMappings capability); default true. */
  portmap?: boolean;
}

/** A conflist of bridge (gateway, no masquerade) + host-local (a default route via the bridge), then portmap. */
export function bridgeConflist(init: BridgeConflistInit): Record<string, unknown> {
  const plugins: Record<string, unknown>[] = [
    {
      type: 'bridge',
      bridge: init.bridge ?? 'cni0',
      isGateway: true,
      ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: init.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: init.dataDir },
    },
  ];
  if (init.portmap ?? true) plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  return { cniVersion: init.cniVersion ?? '1.0.0', name: init.name ?? 'lab', plugins };
}

/**
 * Writes `conflist` into `confDir` as `fileName` (default '10-lab.conflist'). containerd uses only
 * the first conflist by file name and reloads the directory when it changes.
 */
export async function writeConflist(confDir: string, conflist: Record<string, unknown> | string, fileName = '10-lab.conflist'): Promise<string> {
  await mkdir(confDir, { recursive: true });
  const path = join(confDir, fileName);
  await writeFile(path, typeof conflist === 'string' ? conflist : `${JSON.stringify(conflist, null, 2)}\n`);
  return path;
}
